/* The balancing policies of daemon/balance.h over a fake view of servers (arrays), and their
 * use by the walk (upstream.c) on a real route: smooth weighted round-robin gives nginx's
 * sequence, every policy's shares follow the weights, rendezvous hashing moves only the keys
 * of a server that goes away (and brings them back), unusable servers are skipped, and a
 * server at its max_connections is handed out by neither pass of a walk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <evproxy/config.h>

#include "admin_proto.h"
#include "balance.h"
#include "gen.h"
#include "health.h"
#include "resolver.h"
#include "route.h"
#include "server_set.h"
#include "upstream.h"

#define MAXS 16

struct fake {
        unsigned weight[MAXS], active[MAXS];
        bool down[MAXS];
        char id[MAXS][32];
};

static unsigned f_weight(const void *ctx, unsigned i)
{
        return ((const struct fake *)ctx)->weight[i];
}

static unsigned f_active(const void *ctx, unsigned i)
{
        return ((const struct fake *)ctx)->active[i];
}

static bool f_usable(const void *ctx, unsigned i)
{
        return !((const struct fake *)ctx)->down[i];
}

static const char *f_id(const void *ctx, unsigned i)
{
        return ((const struct fake *)ctx)->id[i];
}

/* n servers "10.0.0.<first+i>:80" with the given weights (NULL: all 1). */
static struct balance_view view(struct fake *f, unsigned n, const unsigned *w, unsigned first)
{
        memset(f, 0, sizeof(*f));
        for (unsigned i = 0; i < n; i++) {
                f->weight[i] = w ? w[i] : 1;
                snprintf(f->id[i], sizeof(f->id[i]), "10.0.0.%u:80", first + i);
        }
        return (struct balance_view){.n = n,
                                     .ctx = f,
                                     .weight = f_weight,
                                     .active = f_active,
                                     .usable = f_usable,
                                     .id = f_id};
}

static uint64_t rng = 88172645463325252ull;

static uint32_t test_rnd(void)
{
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return (uint32_t)(rng >> 32);
}

static void test_swrr_nginx_sequence(void **state)
{
        static const unsigned w[] = {5, 1, 1};
        struct balance_state st;
        struct fake f;
        struct balance_view v = view(&f, 3, w, 1);
        char seq[15] = {0};

        assert_int_equal(balance_state_init(&st), 0);
        for (int k = 0; k < 14; k++)
                seq[k] = (char)('a' + balance_swrr(&st, &v));
        assert_string_equal(seq, "aabacaaaabacaa");
        balance_state_destroy(&st);
}

/* A server that was left out and comes back starts even: over the next cycle every server gets
 * its share, the returning one included (it does not pay for the pick it had before). */
static void test_swrr_comes_back_even(void **state)
{
        struct balance_state st;
        struct fake f;
        struct balance_view v = view(&f, 3, NULL, 1);
        int seen[3] = {0};

        assert_int_equal(balance_state_init(&st), 0);
        assert_int_equal(balance_swrr(&st, &v), 0);
        f.down[0] = true;
        assert_int_not_equal(balance_swrr(&st, &v), 0);
        f.down[0] = false;
        for (int k = 0; k < 9; k++)
                seen[balance_swrr(&st, &v)]++;
        assert_int_equal(seen[0], 3);
        assert_int_equal(seen[1], 3);
        assert_int_equal(seen[2], 3);
        balance_state_destroy(&st);
}

/* Each policy's shares over 10,000 picks are the weights' within 2 %. */
static void check_shares(const unsigned *counts, const unsigned *w, unsigned n, unsigned picks)
{
        unsigned total = 0;

        for (unsigned i = 0; i < n; i++)
                total += w[i];
        for (unsigned i = 0; i < n; i++) {
                double want = (double)w[i] / total, got = (double)counts[i] / picks;

                if (got < want - 0.02 || got > want + 0.02)
                        fail_msg("server %u: share %.4f, weight share %.4f", i, got, want);
        }
}

static void test_weighted_shares(void **state)
{
        static const unsigned w[] = {1, 2, 3, 4};
        enum { PICKS = 10000 };
        struct balance_state st;
        struct fake f;
        struct balance_view v = view(&f, 4, w, 1);
        unsigned counts[4] = {0};

        assert_int_equal(balance_state_init(&st), 0);
        for (int k = 0; k < PICKS; k++)
                counts[balance_swrr(&st, &v)]++;
        check_shares(counts, w, 4, PICKS);
        assert_int_equal(counts[3], PICKS * 4 / 10); /* SWRR is exact over whole cycles */
        memset(counts, 0, sizeof(counts));
        for (int k = 0; k < PICKS; k++) /* idle servers: the first draw (by weight) wins */
                counts[balance_random_two(&v, test_rnd)]++;
        check_shares(counts, w, 4, PICKS);
        memset(counts, 0, sizeof(counts));
        for (int k = 0; k < PICKS; k++) { /* held: fewer active per weight wins */
                int i = balance_random_two(&v, test_rnd);

                counts[i]++;
                f.active[i]++;
        }
        check_shares(counts, w, 4, PICKS);
        memset(counts, 0, sizeof(counts));
        memset(f.active, 0, sizeof(f.active));
        for (int k = 0; k < PICKS; k++) {
                int i = balance_least_conn(&st, &v);

                counts[i]++;
                f.active[i]++;
        }
        check_shares(counts, w, 4, PICKS);
        memset(counts, 0, sizeof(counts));
        for (uint64_t key = 0; key < PICKS; key++)
                counts[balance_hash(&v, key * 0x9e3779b97f4a7c15ull)]++;
        check_shares(counts, w, 4, PICKS);
        balance_state_destroy(&st);
}

struct swrr_thread {
        struct balance_state *st;
        const struct balance_view *v;
        atomic_uint *counts;
};

static void *swrr_picker(void *arg)
{
        struct swrr_thread *t = arg;

        for (int k = 0; k < 10000; k++)
                atomic_fetch_add(&t->counts[balance_swrr(t->st, t->v)], 1);
        return NULL;
}

/* One sequence for the whole daemon: 4 threads picking at once share one SWRR state, and the
 * 40,000 picks (4,000 whole cycles of 1+2+3+4) split exactly by weight. */
static void test_swrr_threads(void **state)
{
        static const unsigned w[] = {1, 2, 3, 4};
        struct balance_state st;
        struct fake f;
        struct balance_view v = view(&f, 4, w, 1);
        atomic_uint counts[4];
        struct swrr_thread t = {.st = &st, .v = &v, .counts = counts};
        pthread_t th[4];

        for (int i = 0; i < 4; i++)
                atomic_init(&counts[i], 0);
        assert_int_equal(balance_state_init(&st), 0);
        for (int i = 0; i < 4; i++)
                assert_int_equal(pthread_create(&th[i], NULL, swrr_picker, &t), 0);
        for (int i = 0; i < 4; i++)
                pthread_join(th[i], NULL);
        for (int i = 0; i < 4; i++)
                assert_int_equal(atomic_load(&counts[i]), 4000 * w[i]);
        balance_state_destroy(&st);
}

static void test_least_conn_per_weight(void **state)
{
        static const unsigned w[] = {1, 3};
        struct balance_state st;
        struct fake f;
        struct balance_view v = view(&f, 2, w, 1);

        assert_int_equal(balance_state_init(&st), 0);
        f.active[0] = 2;
        f.active[1] = 5; /* 5/3 < 2/1 */
        assert_int_equal(balance_least_conn(&st, &v), 1);
        f.active[1] = 7; /* 7/3 > 2/1 */
        assert_int_equal(balance_least_conn(&st, &v), 0);
        balance_state_destroy(&st);
}

/* Rendezvous hashing over 10 servers and 10,000 keys: removing one moves at most 1/10 + 2 % of
 * the keys, and only keys it had; it keeps its keys' ids after index shifts (ids, not indices,
 * are hashed). Marking it unusable does the same, and its keys come back when it is usable. */
static void test_hash_consistent(void **state)
{
        enum { N = 10, KEYS = 10000, GONE = 4 };
        static int before[KEYS];
        struct fake f, f9;
        struct balance_view v = view(&f, N, NULL, 1), v9;
        unsigned moved = 0, had = 0;

        v9 = view(&f9, N - 1, NULL, 1);
        for (unsigned i = GONE; i < N - 1; i++) /* the set without 10.0.0.5: indices shift */
                snprintf(f9.id[i], sizeof(f9.id[i]), "10.0.0.%u:80", i + 2);
        for (int k = 0; k < KEYS; k++) {
                uint64_t key;
                struct sockaddr_in sa = {.sin_family = AF_INET};

                sa.sin_addr.s_addr = htonl(0x0a000000u + (uint32_t)k * 7919u);
                assert_true(balance_client_key((struct sockaddr *)&sa, 64, &key));
                before[k] = balance_hash(&v, key);
                had += before[k] == GONE;
                int after = balance_hash(&v9, key);
                const char *now_id = f9.id[after];

                if (strcmp(now_id, f.id[before[k]]) != 0) {
                        moved++;
                        assert_int_equal(before[k], GONE);
                }
                f.down[GONE] = true;
                assert_string_equal(f.id[balance_hash(&v, key)], now_id);
                f.down[GONE] = false;
                assert_int_equal(balance_hash(&v, key), before[k]); /* back */
        }
        assert_int_equal(moved, had);
        assert_true(moved <= KEYS / 10 + KEYS * 2 / 100);
        assert_true(moved > 0);
}

static void test_unusable_skipped(void **state)
{
        static const unsigned w[] = {5, 1, 1};
        struct balance_state st;
        struct fake f;
        struct balance_view v = view(&f, 3, w, 1);

        assert_int_equal(balance_state_init(&st), 0);
        f.down[0] = true;
        for (int k = 0; k < 50; k++) {
                assert_int_not_equal(balance_swrr(&st, &v), 0);
                assert_int_not_equal(balance_least_conn(&st, &v), 0);
                assert_int_not_equal(balance_random_two(&v, test_rnd), 0);
                assert_int_not_equal(balance_hash(&v, (uint64_t)k), 0);
        }
        f.down[1] = f.down[2] = true;
        assert_int_equal(balance_swrr(&st, &v), -1);
        assert_int_equal(balance_least_conn(&st, &v), -1);
        assert_int_equal(balance_random_two(&v, test_rnd), -1);
        assert_int_equal(balance_hash(&v, 7), -1);
        balance_state_destroy(&st);
}

static void test_client_key(void **state)
{
        struct sockaddr_in v4 = {.sin_family = AF_INET};
        struct sockaddr_in6 a = {.sin6_family = AF_INET6}, b = a;
        uint64_t k1, k2;

        inet_pton(AF_INET, "192.0.2.7", &v4.sin_addr);
        inet_pton(AF_INET6, "::ffff:192.0.2.7", &a.sin6_addr);
        assert_true(balance_client_key((struct sockaddr *)&v4, 64, &k1));
        assert_true(balance_client_key((struct sockaddr *)&a, 64, &k2));
        assert_true(k1 == k2); /* a v4 client on a dual-stack listener is the same client */
        inet_pton(AF_INET6, "2001:db8:1:2:aaaa::1", &a.sin6_addr);
        inet_pton(AF_INET6, "2001:db8:1:2:bbbb::9", &b.sin6_addr);
        assert_true(balance_client_key((struct sockaddr *)&a, 64, &k1));
        assert_true(balance_client_key((struct sockaddr *)&b, 64, &k2));
        assert_true(k1 == k2); /* one /64 */
        assert_true(balance_client_key((struct sockaddr *)&b, 128, &k2));
        assert_true(k1 != k2);
        inet_pton(AF_INET6, "2001:db8:1:3::1", &b.sin6_addr);
        assert_true(balance_client_key((struct sockaddr *)&b, 64, &k2));
        assert_true(k1 != k2);
        v4.sin_family = AF_UNIX;
        assert_false(balance_client_key((struct sockaddr *)&v4, 64, &k1));
}

static struct gen *make(const char *upstreams, const char *opts)
{
        char text[1024];
        struct cfg *c = NULL;
        struct gen *g = NULL;

        snprintf(text, sizeof(text),
                 "routes = ({ name = \"r\"; listen = [\"127.0.0.1:1\"]; upstreams = (%s); %s });",
                 upstreams, opts);
        assert_int_equal(cfg_load_string(text, NULL, &c, NULL), 0);
        assert_int_equal(gen_new(c, NULL, &g), 0);
        return g;
}

/* The walk honours weights through the policy: 1:3 round-robin over 400 connections. */
static void test_walk_weights(void **state)
{
        struct gen *g = make("{ address = \"127.0.0.1:11\"; weight = 1; }, "
                             "{ address = \"127.0.0.1:12\"; weight = 3; }",
                             "");
        struct route *r = &g->routes[0];
        struct upstream_pick p;
        int counts[2] = {0};

        for (int i = 0; i < 400; i++) {
                upstream_begin(r, &p);
                assert_non_null(upstream_next(r, &p));
                counts[p.current]++;
                upstream_end(r, &p);
        }
        assert_int_equal(counts[0], 100);
        assert_int_equal(counts[1], 300);
        gen_unref(g);
}

/* max_connections = 2 on server 0: never a third, in pass 0 or (as a down server) pass 1. */
static void test_walk_max_connections(void **state)
{
        struct gen *g = make("{ address = \"127.0.0.1:11\"; max_connections = 2; }, "
                             "\"127.0.0.1:12\"",
                             "health = { fails = 1; backoff = 600; };");
        struct route *r = &g->routes[0];
        struct upstream_pick held[6], p, q;
        int on0 = 0;

        for (int i = 0; i < 6; i++) {
                upstream_begin(r, &held[i]);
                assert_non_null(upstream_next(r, &held[i]));
                on0 += held[i].current == 0;
        }
        assert_int_equal(on0, 2);
        assert_int_equal(atomic_load(&r->set->e[0].srv->active), 2);
        assert_true(atomic_load(&r->set->e[0].srv->refused_max) > 0);
        /* Server 1 fails: a walk finds nothing (server 0 is full, not down). */
        upstream_begin(r, &p);
        assert_non_null(upstream_next(r, &p));
        assert_int_equal(p.current, 1);
        upstream_report(r, &p, -ECONNREFUSED);
        assert_null(upstream_next(r, &p));
        upstream_end(r, &p);
        /* Server 0 down and full: pass 1 does not hand it out either. */
        for (int i = 0; i < 6; i++) {
                if (held[i].current == 0) {
                        upstream_report(r, &held[i], -ECONNREFUSED);
                        break;
                }
        }
        assert_false(health_is_up(&r->set->e[0]));
        upstream_begin(r, &p); /* one slot free now: the last resort takes it */
        while (upstream_next(r, &p) && p.current != 0)
                ;
        assert_int_equal(p.current, 0);
        assert_int_equal(atomic_load(&r->set->e[0].srv->active), 2);
        upstream_begin(r, &q); /* full again: not even as a last resort */
        while (upstream_next(r, &q))
                assert_int_not_equal(q.current, 0);
        upstream_end(r, &q);
        assert_int_equal(atomic_load(&r->set->e[0].srv->active), 2);
        upstream_end(r, &p);
        for (int i = 0; i < 6; i++)
                upstream_end(r, &held[i]);
        assert_int_equal(atomic_load(&r->set->e[0].srv->active), 0);
        assert_int_equal(atomic_load(&r->set->e[1].srv->active), 0);
        gen_unref(g);
}

/* balance = "hash": the same client starts at the same server; a drained server's clients go
 * elsewhere and come back once it is ready again. */
static void test_walk_hash(void **state)
{
        struct gen *g =
            make("\"127.0.0.1:11\", \"127.0.0.1:12\", \"127.0.0.1:13\"", "balance = \"hash\";");
        struct route *r = &g->routes[0];
        struct upstream_pick p;
        int first[20];

        for (int k = 0; k < 20; k++) {
                struct sockaddr_in sa = {.sin_family = AF_INET};

                sa.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)k);
                for (int rep = 0; rep < 3; rep++) {
                        upstream_begin_for(r, &p, (struct sockaddr *)&sa);
                        if (rep == 0)
                                first[k] = (int)p.start;
                        assert_int_equal((int)p.start, first[k]);
                        upstream_end(r, &p);
                }
                atomic_store(&r->set->e[first[k]].srv->admin, ADMIN_STATE_DRAIN);
                upstream_begin_for(r, &p, (struct sockaddr *)&sa);
                assert_int_not_equal((int)p.start, first[k]);
                upstream_end(r, &p);
                atomic_store(&r->set->e[first[k]].srv->admin, ADMIN_STATE_READY);
                upstream_begin_for(r, &p, (struct sockaddr *)&sa);
                assert_int_equal((int)p.start, first[k]);
                upstream_end(r, &p);
        }
        gen_unref(g);
}

/* balance = "hash" with max_connections = 1: while a client's server is full its next
 * connection goes elsewhere, and once the slot is free it is back on its own server. */
static void test_walk_hash_full(void **state)
{
        struct gen *g = make("{ address = \"127.0.0.1:11\"; max_connections = 1; }, "
                             "{ address = \"127.0.0.1:12\"; max_connections = 1; }, "
                             "{ address = \"127.0.0.1:13\"; max_connections = 1; }",
                             "balance = \"hash\";");
        struct route *r = &g->routes[0];
        struct sockaddr_in sa = {.sin_family = AF_INET};
        struct upstream_pick held, p;
        unsigned own;

        sa.sin_addr.s_addr = htonl(0x7f00000au);
        upstream_begin_for(r, &held, (struct sockaddr *)&sa);
        own = held.start;
        assert_non_null(upstream_next(r, &held));
        assert_int_equal(held.current, (int)own);
        upstream_begin_for(r, &p, (struct sockaddr *)&sa);
        assert_int_not_equal(p.start, own);
        assert_non_null(upstream_next(r, &p));
        assert_int_not_equal(p.current, (int)own);
        upstream_end(r, &p);
        upstream_end(r, &held);
        upstream_begin_for(r, &p, (struct sockaddr *)&sa);
        assert_int_equal(p.start, own);
        upstream_end(r, &p);
        gen_unref(g);
}

/* balance = "hash" keys IPv6 clients by the route's client_prefix6: with 48, clients that
 * differ past their /48 (other /64s) always start at the same server. */
static void test_walk_hash_prefix6(void **state)
{
        struct gen *g = make("\"127.0.0.1:11\", \"127.0.0.1:12\", \"127.0.0.1:13\", "
                             "\"127.0.0.1:14\"",
                             "balance = \"hash\"; client_prefix6 = 48;");
        struct route *r = &g->routes[0];
        struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
        struct upstream_pick p;
        int first = -1;

        assert_int_equal(r->cfg->policy.client_prefix6, 48);
        for (unsigned k = 0; k < 32; k++) {
                char text[64];

                snprintf(text, sizeof(text), "2001:db8:7:%x::%x", k * 0x111, k + 1);
                assert_int_equal(inet_pton(AF_INET6, text, &sa.sin6_addr), 1);
                upstream_begin_for(r, &p, (struct sockaddr *)&sa);
                if (first < 0)
                        first = (int)p.start;
                assert_int_equal((int)p.start, first);
                upstream_end(r, &p);
        }
        gen_unref(g);
}

/* Another set of as many servers (a new serial) starts the SWRR sequence again: the current
 * weights left by the old set belong to the servers that were at those indexes then. */
static void test_swrr_new_serial(void **state)
{
        static const unsigned w1[] = {5, 1, 1}, w2[] = {1, 1, 5};
        struct balance_state st, fresh;
        struct fake f, g;
        struct balance_view v = view(&f, 3, w1, 1), v2 = view(&g, 3, w2, 4);
        char seq[8] = {0}, want[8] = {0};

        v.serial = 1;
        v2.serial = 2;
        assert_int_equal(balance_state_init(&st), 0);
        assert_int_equal(balance_state_init(&fresh), 0);
        assert_int_equal(balance_swrr(&st, &v), 0);
        assert_int_equal(balance_swrr(&st, &v), 0);
        for (int k = 0; k < 7; k++) {
                seq[k] = (char)('a' + balance_swrr(&st, &v2));
                want[k] = (char)('a' + balance_swrr(&fresh, &v2));
        }
        assert_string_equal(seq, want);
        balance_state_destroy(&st);
        balance_state_destroy(&fresh);
}

/* One IPv4 address ip:80 as a name's answer. */
static struct resolver_addrset *answer(const char *ip)
{
        struct resolver_addrset *s = calloc(1, sizeof(*s) + sizeof(s->addrs[0]));
        struct sockaddr_in *in = (struct sockaddr_in *)&s->addrs[0].addr;

        assert_non_null(s);
        atomic_init(&s->refs, 1);
        s->generation = 1;
        s->len = 1;
        in->sin_family = AF_INET;
        in->sin_port = htons(80);
        inet_pton(AF_INET, ip, &in->sin_addr);
        s->addrs[0].len = sizeof(*in);
        return s;
}

/* Publish r's set with names 0..2 answering ips[0..2] (NULL: no address). */
static void publish(struct route *r, const char *const ips[3])
{
        struct resolver_addrset *named[3];
        struct server_set *cur = route_set_get(r), *s = NULL;

        for (int k = 0; k < 3; k++) {
                named[k] = ips[k] ? answer(ips[k]) : calloc(1, sizeof(*named[k]));
                assert_non_null(named[k]);
        }
        assert_int_equal(server_set_build(r->cfg, named, cur, &s), 0);
        route_set_publish(r, s);
        server_set_unref(cur);
        for (int k = 0; k < 3; k++)
                free(named[k]); /* plain addresses, one reference: nothing else to drop */
}

/* A DNS change that keeps the count of servers but not the servers: names a (weight 5),
 * b (1), c (5); first b and c answer ([1, 5]), then a and b ([5, 1]). The new set's picks are
 * SWRR's from zero (a a a b a a), not the old current weights paid back (a a a a a b). */
static void test_walk_swrr_set_change(void **state)
{
        static const char *const first[3] = {NULL, "10.0.0.2", "10.0.0.3"}, *const second[3] = {
                                                                                "10.0.0.1",
                                                                                "10.0.0.2", NULL};
        struct gen *g = make("{ address = \"a.test:80\"; weight = 5; }, "
                             "{ address = \"b.test:80\"; weight = 1; }, "
                             "{ address = \"c.test:80\"; weight = 5; }",
                             "");
        struct route *r = &g->routes[0];
        struct upstream_pick p;
        char seq[7] = {0};

        publish(r, first);
        for (int k = 0; k < 2; k++) { /* leaves current weights (2, -2) */
                upstream_begin(r, &p);
                upstream_end(r, &p);
        }
        publish(r, second);
        assert_int_equal(r->set->n, 2);
        assert_string_equal(r->set->e[0].addr.text, "10.0.0.1:80");
        for (int k = 0; k < 6; k++) {
                upstream_begin(r, &p);
                seq[k] = (char)('a' + p.start);
                upstream_end(r, &p);
        }
        assert_string_equal(seq, "aaabaa");
        gen_unref(g);
}

/* SRV priority: walks start on the usable servers of the best (lowest) priority; when none of
 * those is usable, on the next priority's. */
static void test_walk_srv_priority(void **state)
{
        static const char *const all[3] = {"10.0.0.1", "10.0.0.2", "10.0.0.3"};
        struct gen *g = make("\"a.test:80\", \"b.test:80\", \"c.test:80\"", "");
        struct route *r = &g->routes[0];
        struct upstream_pick p;

        (void)state;
        publish(r, all);
        assert_int_equal(r->set->n, 3);
        r->set->e[0].priority = 10; /* a is the backup */
        for (int k = 0; k < 20; k++) {
                upstream_begin(r, &p);
                assert_true(p.start == 1 || p.start == 2);
                upstream_end(r, &p);
        }
        atomic_store(&r->set->e[1].srv->admin, ADMIN_STATE_DRAIN);
        atomic_store(&r->set->e[2].srv->admin, ADMIN_STATE_DRAIN);
        for (int k = 0; k < 5; k++) {
                upstream_begin(r, &p);
                assert_int_equal(p.start, 0);
                upstream_end(r, &p);
        }
        gen_unref(g);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_swrr_nginx_sequence),
            cmocka_unit_test(test_weighted_shares),
            cmocka_unit_test(test_swrr_threads),
            cmocka_unit_test(test_swrr_comes_back_even),
            cmocka_unit_test(test_least_conn_per_weight),
            cmocka_unit_test(test_hash_consistent),
            cmocka_unit_test(test_unusable_skipped),
            cmocka_unit_test(test_client_key),
            cmocka_unit_test(test_walk_weights),
            cmocka_unit_test(test_walk_max_connections),
            cmocka_unit_test(test_walk_srv_priority),
            cmocka_unit_test(test_walk_hash),
            cmocka_unit_test(test_walk_hash_full),
            cmocka_unit_test(test_walk_hash_prefix6),
            cmocka_unit_test(test_swrr_new_serial),
            cmocka_unit_test(test_walk_swrr_set_change),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
