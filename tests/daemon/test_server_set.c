/* Server sets (daemon/server_set.h): literal upstreams and resolved names in one set,
 * deduplicated by address, server state carried by address from the previous set (and so
 * across reloads), a reload's carry of a name's addresses before it is looked up again, SRV
 * weights, and the walk of a connection holding its set while a new one is published. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <evproxy/config.h>

#include "gen.h"
#include "resolver.h"
#include "server_set.h"
#include "upstream.h"

static struct cfg *load(const char *upstreams)
{
        char text[1024];
        struct cfg *c = NULL;

        snprintf(text, sizeof(text),
                 "routes = ({ name = \"r\"; listen = [\"127.0.0.1:1\"]; upstreams = ( %s ); });",
                 upstreams);
        assert_int_equal(cfg_load_string(text, NULL, &c, NULL), 0);
        return c;
}

/* A resolver_addrset of "a.b.c.d" IPv4 addresses with port, SRV priority/weight. */
static struct resolver_addrset *addrs(size_t n, const char *const *ips, uint16_t port,
                                      uint16_t weight)
{
        struct resolver_addrset *s = calloc(1, sizeof(*s) + n * sizeof(s->addrs[0]));

        atomic_init(&s->refs, 1);
        s->generation = 1;
        s->len = n;
        for (size_t i = 0; i < n; i++) {
                struct sockaddr_in *in = (struct sockaddr_in *)&s->addrs[i].addr;

                in->sin_family = AF_INET;
                in->sin_port = htons(port);
                inet_pton(AF_INET, ips[i], &in->sin_addr);
                s->addrs[i].len = sizeof(*in);
                s->addrs[i].weight = weight;
        }
        return s;
}

static void test_literals_and_names(void **state)
{
        struct cfg *c = load("\"10.0.0.1:80\", { address = \"db:80\"; weight = 7; "
                             "max_connections = 3; }, \"10.0.0.2:80\"");
        const char *ips[] = {"10.0.0.9", "10.0.0.1"}; /* .1:80 is also a literal: deduplicated */
        struct resolver_addrset *named[3] = {NULL, addrs(2, ips, 80, 0), NULL};
        struct server_set *s = NULL;

        assert_int_equal(server_set_build(&c->routes[0], named, NULL, &s), 0);
        assert_int_equal(s->n, 3);
        assert_string_equal(s->e[0].addr.text, "10.0.0.1:80");
        assert_string_equal(s->e[0].name, "");
        assert_string_equal(s->e[1].addr.text, "10.0.0.9:80");
        assert_string_equal(s->e[1].name, "db:80");
        assert_int_equal(s->e[1].weight, 7);
        assert_int_equal(s->e[1].max_connections, 3);
        assert_int_equal(s->e[1].upstream, 1);
        assert_string_equal(s->e[2].addr.text, "10.0.0.2:80");
        assert_int_equal(server_set_find_text(s, "10.0.0.9:80"), 1);
        assert_int_equal(server_set_find_text(s, "10.0.0.3:80"), -1);
        server_set_unref(s);
        resolver_addrset_unref(named[1]);
        cfg_free(c);
}

static void test_state_follows_address(void **state)
{
        struct cfg *c = load("\"db:80\"");
        const char *a[] = {"10.0.0.1", "10.0.0.2"}, *b[] = {"10.0.0.2", "10.0.0.3"};
        struct resolver_addrset *n1[1] = {addrs(2, a, 80, 0)}, *n2[1] = {addrs(2, b, 80, 0)};
        struct server_set *s1 = NULL, *s2 = NULL;

        assert_int_equal(server_set_build(&c->routes[0], n1, NULL, &s1), 0);
        atomic_store(&s1->e[1].srv->admin, 2); /* 10.0.0.2: maint */
        atomic_store(&s1->e[1].srv->connects, 41);
        assert_int_equal(server_set_build(&c->routes[0], n2, s1, &s2), 0);
        assert_int_equal(s2->n, 2);
        assert_ptr_equal(s2->e[0].srv, s1->e[1].srv); /* 10.0.0.2 stayed: same state */
        assert_int_equal(atomic_load(&s2->e[0].srv->connects), 41);
        assert_ptr_not_equal(s2->e[1].srv, s1->e[0].srv);
        assert_int_equal(atomic_load(&s2->e[1].srv->admin), 0); /* 10.0.0.3: new, ready */
        server_set_unref(s1); /* 10.0.0.2's state lives on in s2 */
        assert_int_equal(atomic_load(&s2->e[0].srv->connects), 41);
        server_set_unref(s2);
        resolver_addrset_unref(n1[0]);
        resolver_addrset_unref(n2[0]);
        cfg_free(c);
}

static void test_carry_before_lookup(void **state)
{
        struct cfg *c = load("\"db:80\", \"10.0.0.5:80\""), *c2 = load("\"db:80\"");
        const char *a[] = {"10.0.0.1"};
        struct resolver_addrset *n[2] = {addrs(1, a, 80, 0), NULL};
        struct server_set *s1 = NULL, *s2 = NULL;

        assert_int_equal(server_set_build(&c->routes[0], n, NULL, &s1), 0);
        assert_int_equal(s1->n, 2);
        /* The new configuration's route, before its names are looked up (NULL): the addresses
         * the previous set had for the same name stay, with their state; the literal that left
         * the configuration is gone. */
        assert_int_equal(server_set_build(&c2->routes[0], NULL, s1, &s2), 0);
        assert_int_equal(s2->n, 1);
        assert_string_equal(s2->e[0].addr.text, "10.0.0.1:80");
        assert_ptr_equal(s2->e[0].srv, s1->e[0].srv);
        server_set_unref(s1);
        server_set_unref(s2);
        resolver_addrset_unref(n[0]);
        cfg_free(c);
        cfg_free(c2);
}

static void test_srv_weight(void **state)
{
        struct cfg *c = load("\"srv:_a._tcp.x.test\"");
        const char *a[] = {"10.0.0.1"}, *b[] = {"10.0.0.2"};
        struct resolver_addrset *n0[1] = {addrs(1, a, 81, 0)}, *n1[1] = {addrs(1, b, 82, 60000)};
        struct server_set *s = NULL;

        assert_int_equal(server_set_build(&c->routes[0], n0, NULL, &s), 0);
        assert_int_equal(s->e[0].weight, 1); /* SRV weight 0: the smallest share */
        server_set_unref(s);
        assert_int_equal(server_set_build(&c->routes[0], n1, NULL, &s), 0);
        assert_int_equal(s->e[0].weight, CFG_MAX_WEIGHT);
        assert_string_equal(s->e[0].addr.text, "10.0.0.2:82");
        server_set_unref(s);
        resolver_addrset_unref(n0[0]);
        resolver_addrset_unref(n1[0]);
        cfg_free(c);
}

/* A connection's walk keeps the set it began with: a new set published meanwhile (its server
 * gone) changes nothing for it, and the old set goes when the walk ends. */
static void test_walk_holds_set(void **state)
{
        struct cfg *c = load("\"db:80\"");
        const char *a[] = {"10.0.0.1"}, *b[] = {"10.0.0.2"};
        struct resolver_addrset *n1[1] = {addrs(1, a, 80, 0)}, *n2[1] = {addrs(1, b, 80, 0)};
        struct server_set *s = NULL;
        struct upstream_pick p, q;
        struct gen *g = NULL;
        const struct cfg_addr *ad;

        assert_int_equal(gen_new(c, NULL, &g), 0); /* g owns c */
        upstream_begin(&g->routes[0], &p);
        assert_null(upstream_next(&g->routes[0], &p)); /* no address yet */
        assert_true(upstream_no_server(&g->routes[0], &p, "test"));
        upstream_end(&g->routes[0], &p);
        assert_int_equal(server_set_build(g->routes[0].cfg, n1, g->routes[0].set, &s), 0);
        route_set_publish(&g->routes[0], s);
        upstream_begin(&g->routes[0], &p);
        ad = upstream_next(&g->routes[0], &p);
        assert_string_equal(ad->text, "10.0.0.1:80");
        assert_int_equal(server_set_build(g->routes[0].cfg, n2, g->routes[0].set, &s), 0);
        route_set_publish(&g->routes[0], s);
        assert_string_equal(upstream_current(&p)->addr.text, "10.0.0.1:80"); /* still there */
        assert_int_equal(atomic_load(&upstream_current(&p)->srv->active), 1);
        upstream_begin(&g->routes[0], &q);
        assert_string_equal(upstream_next(&g->routes[0], &q)->text, "10.0.0.2:80");
        upstream_end(&g->routes[0], &q);
        upstream_end(&g->routes[0], &p); /* frees the old set (ASan: no leak, no reuse) */
        assert_null(p.set);
        gen_unref(g);
        resolver_addrset_unref(n1[0]);
        resolver_addrset_unref(n2[0]);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_literals_and_names),
            cmocka_unit_test(test_state_follows_address),
            cmocka_unit_test(test_carry_before_lookup),
            cmocka_unit_test(test_srv_weight),
            cmocka_unit_test(test_walk_holds_set),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
