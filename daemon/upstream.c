/* Upstream choice and the non-blocking connect. The balancing policy (balance.h: smooth
 * weighted round-robin, weighted least-conn, weighted random with two choices, or rendezvous
 * hashing of the client address) picks the first server of a connection's walk; on failure the
 * walk goes on in ring order, skipping servers that are down (health.c) until nothing else is
 * left, and never handing out one that is drained or at its max_connections. TCP
 * upstreams get TCP_NODELAY: the proxy must not add Nagle delays on top of the client's own.
 * The connect itself is sock.c's, shared with health checks. */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include <evproxy/driver.h>
#include <evproxy/timer.h>

#include "admin_proto.h"
#include "balance.h"
#include "health.h"
#include "log.h"
#include "route.h"
#include "server_set.h"
#include "sock.h"
#include "upstream.h"

static _Thread_local uint64_t rng_state;

uint32_t upstream_random(void)
{
        uint64_t x = rng_state;

        if (x == 0) {
                if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != sizeof(x))
                        x = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&rng_state;
                x |= 1;
        }
        /* xorshift64*: plenty for spreading load, and no lock. */
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        rng_state = x;
        return (uint32_t)((x * UINT64_C(2685821657736338717)) >> 32);
}

static struct upstream_server *server(const struct upstream_pick *p, unsigned i)
{
        assert(p->set && i < p->set->n);
        return p->set->e[i].srv;
}

static bool upstream_admin_ready(const struct upstream_pick *p, unsigned i)
{
        return atomic_load_explicit(&server(p, i)->admin, memory_order_relaxed) ==
               ADMIN_STATE_READY;
}

static unsigned load(const struct upstream_pick *p, unsigned i)
{
        return atomic_load_explicit(&server(p, i)->active, memory_order_relaxed);
}

const struct server_entry *upstream_current(const struct upstream_pick *p)
{
        return p->current >= 0 && p->set ? &p->set->e[p->current] : NULL;
}

/* A walk's server set as the balancing policies see it (balance.h). */
struct set_view {
        const struct upstream_pick *p;
        uint64_t now;
        unsigned priority; /* the best (lowest) SRV priority among usable servers */
};

static unsigned view_weight(const void *ctx, unsigned i)
{
        return ((const struct set_view *)ctx)->p->set->e[i].weight;
}

static unsigned view_active(const void *ctx, unsigned i)
{
        return load(((const struct set_view *)ctx)->p, i);
}

static bool at_max(const struct upstream_pick *p, unsigned i)
{
        unsigned max = p->set->e[i].max_connections;

        return max && load(p, i) >= max;
}

static bool usable(const struct upstream_pick *p, unsigned i, uint64_t now)
{
        return health_available(&p->set->e[i], now) && !at_max(p, i);
}

/* SRV priority: the policy chooses among the usable servers of the best priority only (RFC
 * 2782); the others are the walk's fallbacks. Literal and A/AAAA servers have priority 0. */
static bool view_usable(const void *ctx, unsigned i)
{
        const struct set_view *sv = ctx;

        return sv->p->set->e[i].priority == sv->priority && usable(sv->p, i, sv->now);
}

static unsigned best_priority(const struct upstream_pick *p, uint64_t now)
{
        unsigned best = ~0u;

        for (size_t i = 0; i < p->set->n; i++)
                if (p->set->e[i].priority < best && usable(p, (unsigned)i, now))
                        best = p->set->e[i].priority;
        return best;
}

static const char *view_id(const void *ctx, unsigned i)
{
        return ((const struct set_view *)ctx)->p->set->e[i].addr.text;
}

static int policy_pick(struct route *r, const struct upstream_pick *p,
                       const struct sockaddr *client, uint64_t now)
{
        struct set_view sv = {.p = p, .now = now, .priority = best_priority(p, now)};
        struct balance_view v = {.n = (unsigned)p->set->n,
                                 .ctx = &sv,
                                 .weight = view_weight,
                                 .active = view_active,
                                 .usable = view_usable,
                                 .id = view_id,
                                 .serial = p->set->serial};
        uint64_t key;

        switch (r->cfg->balance) {
        case CFG_BALANCE_LEAST_CONN:
                return balance_least_conn(&r->bal, &v);
        case CFG_BALANCE_RANDOM:
                return balance_random_two(&v, upstream_random);
        case CFG_BALANCE_HASH:
                /* IPv6 clients hash by their client_prefix6 prefix (the route's traffic
                 * policy). Clients without an IP address are spread round-robin. */
                if (balance_client_key(client, r->cfg->policy.client_prefix6, &key))
                        return balance_hash(&v, key);
                return balance_swrr(&r->bal, &v);
        default:
                return balance_swrr(&r->bal, &v);
        }
}

/* For /metrics: each connection counts once against every server that is full as it begins. */
static void count_full(const struct upstream_pick *p, unsigned n)
{
        for (unsigned i = 0; i < n; i++) {
                if (at_max(p, i))
                        atomic_fetch_add_explicit(&server(p, i)->refused_max, 1,
                                                  memory_order_relaxed);
        }
}

void upstream_begin_for(struct route *r, struct upstream_pick *p, const struct sockaddr *client)
{
        struct server_set *set = route_set_get(r);
        unsigned n = (unsigned)set->n;
        int i;

        *p = (struct upstream_pick){.current = -1, .set = set};
        if (n == 0) {
                p->pass = 2;
                return;
        }
        count_full(p, n);
        i = policy_pick(r, p, client, evio_now_ms());
        /* None usable: the walk still goes round (down servers are tried last), from a
         * rotating start so that no one server takes every last resort. */
        if (i < 0)
                i = (int)(atomic_fetch_add_explicit(&r->st->rr_next, 1, memory_order_relaxed) % n);
        p->start = (unsigned)i;
}

void upstream_begin(struct route *r, struct upstream_pick *p)
{
        upstream_begin_for(r, p, NULL);
}

/* Take one unit of server i's active count, unless that would pass its max_connections (a
 * compare-and-swap: workers race for the last slot). */
static bool take_slot(const struct upstream_pick *p, unsigned i)
{
        unsigned max = p->set->e[i].max_connections;
        atomic_uint *active = &server(p, i)->active;
        unsigned cur;

        if (!max) {
                atomic_fetch_add_explicit(active, 1, memory_order_relaxed);
                return true;
        }
        cur = atomic_load_explicit(active, memory_order_relaxed);
        do {
                if (cur >= max)
                        return false;
        } while (!atomic_compare_exchange_weak_explicit(active, &cur, cur + 1, memory_order_relaxed,
                                                        memory_order_relaxed));
        return true;
}

/* p holds the slot take_slot() took on server i. */
static void hold(struct upstream_pick *p, unsigned i, bool probe)
{
        p->current = (int)i;
        p->tried++;
        p->probe = probe;
        p->held = true;
}

static void mark_skipped(struct upstream_pick *p, unsigned i, unsigned n)
{
        if (i < 64) {
                p->skipped |= UINT64_C(1) << i;
                return;
        }
        if (!p->skipped_more && !p->more_lost) {
                p->skipped_more = calloc((n - 64 + 63) / 64, sizeof(uint64_t));
                p->more_lost = !p->skipped_more;
        }
        if (p->skipped_more)
                p->skipped_more[(i - 64) / 64] |= UINT64_C(1) << ((i - 64) % 64);
}

static bool was_skipped(const struct upstream_pick *p, unsigned i)
{
        if (i < 64)
                return p->skipped & (UINT64_C(1) << i);
        if (p->more_lost)
                return true;
        return p->skipped_more &&
               (p->skipped_more[(i - 64) / 64] & (UINT64_C(1) << ((i - 64) % 64)));
}

const struct cfg_addr *upstream_next(struct route *r, struct upstream_pick *p)
{
        unsigned n = p->set ? (unsigned)p->set->n : 0;
        uint64_t now = evio_now_ms();

        upstream_release(r, p);
        while (p->pass < 2) {
                for (; p->step < n; p->step++) {
                        unsigned i = (p->start + p->step) % n;
                        enum health_claim hc;

                        if (p->pass == 1) {
                                if (!was_skipped(p, i))
                                        continue;
                                if (take_slot(p, i)) {
                                        p->step++;
                                        hold(p, i, false);
                                        return &p->set->e[i].addr;
                                }
                                p->full = true;
                                continue;
                        }
                        if (!upstream_admin_ready(p, i))
                                continue; /* drain, maint: not even as a last resort */
                        if (!take_slot(p, i)) {
                                p->full = true; /* at max_connections: likewise */
                                continue;
                        }
                        hc = health_claim(&p->set->e[i], now);
                        if (hc == HEALTH_SKIP) {
                                atomic_fetch_sub_explicit(&server(p, i)->active, 1,
                                                          memory_order_relaxed);
                                mark_skipped(p, i, n);
                                continue;
                        }
                        p->step++;
                        hold(p, i, hc == HEALTH_PROBE);
                        return &p->set->e[i].addr;
                }
                p->pass++;
                p->step = 0;
        }
        return NULL;
}

/* Every address of e's name failed `fails` connects in a row (at least one): ask the main
 * thread to look the name up again (dns.c; the resolver rate-limits it). */
static void maybe_ask_refresh(struct route *r, const struct upstream_pick *p,
                              const struct server_entry *e)
{
        const struct route_dns_poke *poke = atomic_load(&r->poke);
        unsigned need = r->cfg->health.fails ? r->cfg->health.fails : 1;

        if (!e->name[0] || !poke)
                return;
        for (size_t k = 0; k < p->set->n; k++) {
                const struct server_entry *o = &p->set->e[k];

                if (o->upstream == e->upstream &&
                    atomic_load_explicit(&o->srv->fails, memory_order_relaxed) < need)
                        return;
        }
        if (!atomic_exchange(&r->st->dns_refresh, true))
                evio_handle_post(poke->main, poke->task);
}

void upstream_report(struct route *r, struct upstream_pick *p, int result)
{
        const struct server_entry *e = upstream_current(p);
        struct upstream_server *s;

        if (!e)
                return;
        s = e->srv;
        if (result < 0) {
                atomic_fetch_add_explicit(&r->st->connect_failures, 1, memory_order_relaxed);
                atomic_fetch_add_explicit(&s->connect_failures, 1, memory_order_relaxed);
                upstream_release(r, p);
                if (upstream_error_is_local(result))
                        return; /* our shortage says nothing about the server */
                atomic_store_explicit(&s->last_error_at, (uint64_t)time(NULL),
                                      memory_order_relaxed);
                atomic_store_explicit(&s->last_error, result, memory_order_relaxed);
        } else {
                atomic_fetch_add_explicit(&s->connects, 1, memory_order_relaxed);
        }
        health_report(r, e, result, p->probe, evio_now_ms());
        if (result < 0)
                maybe_ask_refresh(r, p, e);
}

bool upstream_no_server(struct route *r, const struct upstream_pick *p, const char *client)
{
        char names[512] = "";
        size_t len = 0;

        if (!p->set || p->set->n > 0)
                return false;
        for (size_t i = 0; i < r->cfg->n_upstreams && len < sizeof(names); i++) {
                if (r->cfg->upstreams[i].kind == CFG_UPSTREAM_ADDR)
                        continue;
                len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s", len ? ", " : "",
                                        r->cfg->upstreams[i].addr.text);
        }
        log_warning("route %s: client %s: no server: %s %s no address (not resolved yet, or "
                    "gone from DNS)",
                    r->cfg->name, client, names, r->cfg->n_named > 1 ? "have" : "has");
        return true;
}

void upstream_adopt(struct route *r, struct upstream_pick *p, const char *text)
{
        struct server_set *set = route_set_get(r);
        long i = server_set_find_text(set, text);

        *p = (struct upstream_pick){.current = -1, .set = set, .pass = 2};
        if (i < 0)
                return;
        /* It exists already: it counts even past the server's max_connections. */
        atomic_fetch_add_explicit(&server(p, (unsigned)i)->active, 1, memory_order_relaxed);
        hold(p, (unsigned)i, false);
}

void upstream_release(struct route *r, struct upstream_pick *p)
{
        if (!p->held)
                return;
        p->held = false;
        atomic_fetch_sub_explicit(&server(p, (unsigned)p->current)->active, 1,
                                  memory_order_relaxed);
}

void upstream_end(struct route *r, struct upstream_pick *p)
{
        upstream_release(r, p);
        free(p->skipped_more);
        p->skipped_more = NULL;
        server_set_unref(p->set);
        p->set = NULL;
        p->current = -1;
}

bool upstream_error_is_local(int r)
{
        return r == -EMFILE || r == -ENFILE || r == -ENOMEM || r == -ENOBUFS;
}

int upstream_connect(const struct cfg_addr *a, int *fd_out)
{
        return sock_connect(a, SOCKF_NODELAY, fd_out);
}

int upstream_connect_result(int fd)
{
        return sock_connect_result(fd);
}
