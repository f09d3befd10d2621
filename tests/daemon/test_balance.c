/* Balancing and health over a real route (config text -> generation): round-robin spreads
 * evenly, least-conn picks the least loaded, random with two choices stays balanced, a walk
 * hands each server out once, down servers are skipped until their back-off is over (one
 * probe, back-off doubling to its cap), tried last when everything is down, and come back on a
 * successful connect or health check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <evproxy/config.h>
#include <evproxy/timer.h>

#include "gen.h"
#include "health.h"
#include "server_set.h"
#include "upstream.h"

static struct gen *make(const char *opts)
{
        char text[1024];
        struct cfg *c = NULL;
        struct gen *g = NULL;

        snprintf(text, sizeof(text),
                 "routes = ({ name = \"r\"; listen = [\"127.0.0.1:1\"]; upstreams = "
                 "[\"127.0.0.1:11\", \"127.0.0.1:12\", \"127.0.0.1:13\"]; %s });",
                 opts);
        assert_int_equal(cfg_load_string(text, NULL, &c, NULL), 0);
        assert_int_equal(gen_new(c, NULL, &g), 0);
        return g;
}

/* First server of a fresh walk, held (as a connection would: upstream_end() it later), or
 * ended at once if !keep. */
static int first(struct route *r, struct upstream_pick *p, bool keep)
{
        int i;

        upstream_begin(r, p);
        assert_non_null(upstream_next(r, p));
        i = p->current;
        if (!keep)
                upstream_end(r, p);
        return i;
}

static void test_round_robin(void **state)
{
        struct gen *g = make("");
        struct upstream_pick p;
        int counts[3] = {0};

        for (int i = 0; i < 30; i++)
                counts[first(&g->routes[0], &p, false)]++;
        assert_int_equal(counts[0], 10);
        assert_int_equal(counts[1], 10);
        assert_int_equal(counts[2], 10);
        gen_unref(g);
}

static void test_walk_once_each(void **state)
{
        struct gen *g = make("");
        struct route *r = &g->routes[0];
        struct upstream_pick p;
        int seen[3] = {0};

        upstream_begin(r, &p);
        for (int i = 0; i < 3; i++) {
                assert_non_null(upstream_next(r, &p));
                seen[p.current]++;
                upstream_report(r, &p, -ECONNREFUSED);
        }
        assert_null(upstream_next(r, &p));
        upstream_end(r, &p);
        assert_int_equal(seen[0] + seen[1] + seen[2], 3);
        assert_true(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
        for (int i = 0; i < 3; i++)
                assert_int_equal(atomic_load(&r->set->e[i].srv->active), 0);
        gen_unref(g);
}

static void test_least_conn(void **state)
{
        struct gen *g = make("balance = \"least-conn\";");
        struct route *r = &g->routes[0];
        struct upstream_pick held[9];
        int counts[3] = {0};

        for (int i = 0; i < 9; i++)
                counts[first(r, &held[i], true)]++;
        assert_true(counts[0] == 3 && counts[1] == 3 && counts[2] == 3);
        for (int i = 0; i < 9; i++) { /* free server 1 */
                if (held[i].current == 1)
                        upstream_release(r, &held[i]);
        }
        struct upstream_pick more[3];
        for (int i = 0; i < 3; i++)
                assert_int_equal(first(r, &more[i], true), 1);
        for (int i = 0; i < 3; i++)
                upstream_end(r, &more[i]);
        for (int i = 0; i < 9; i++)
                upstream_end(r, &held[i]); /* the walk holds its server set until then */
        gen_unref(g);
}

static void test_random_two_choices(void **state)
{
        struct gen *g = make("balance = \"random\";");
        struct route *r = &g->routes[0];
        static struct upstream_pick held[300];
        struct upstream_pick p;
        int counts[3] = {0};

        for (int i = 0; i < 3000; i++)
                counts[first(r, &p, false)]++;
        for (int i = 0; i < 3; i++)
                assert_true(counts[i] > 800 && counts[i] < 1200);
        memset(counts, 0, sizeof(counts));
        for (int i = 0; i < 300; i++) /* held: the less loaded of two wins */
                counts[first(r, &held[i], true)]++;
        for (int i = 0; i < 3; i++)
                assert_true(counts[i] >= 95 && counts[i] <= 105);
        for (int i = 0; i < 300; i++)
                upstream_end(r, &held[i]);
        gen_unref(g);
}

static void fail_server(struct route *r, int idx)
{
        struct upstream_pick p;

        for (int k = 0; k < 3; k++) {
                upstream_begin(r, &p);
                while (upstream_next(r, &p)) {
                        if (p.current == idx) {
                                upstream_report(r, &p, -ECONNREFUSED);
                                upstream_end(r, &p);
                                return;
                        }
                        upstream_release(r, &p);
                }
                upstream_end(r, &p);
        }
        fail();
}

static void test_passive_backoff(void **state)
{
        struct gen *g = make("health = { fails = 2; backoff = 0.2; backoff_max = 0.35; };");
        struct route *r = &g->routes[0];
        struct upstream_pick p;
        uint64_t now = evio_now_ms();

        fail_server(r, 0);
        assert_true(health_is_up(&r->set->e[0]));
        fail_server(r, 0);
        assert_false(health_is_up(&r->set->e[0]));
        for (int i = 0; i < 30; i++) /* skipped while in back-off */
                assert_int_not_equal(first(r, &p, false), 0);
        /* Back-off over: exactly one probe. */
        assert_int_equal(health_claim(&r->set->e[0], now + 250), HEALTH_PROBE);
        assert_int_equal(health_claim(&r->set->e[0], now + 250), HEALTH_SKIP);
        health_report(r, &r->set->e[0], -ECONNREFUSED, true, now + 250);
        assert_int_equal(atomic_load(&r->set->e[0].srv->backoff_ms), 350); /* doubled, capped */
        assert_int_equal(health_claim(&r->set->e[0], now + 500), HEALTH_SKIP);
        assert_int_equal(health_claim(&r->set->e[0], now + 600), HEALTH_PROBE);
        health_report(r, &r->set->e[0], 0, true, now + 600);
        assert_true(health_is_up(&r->set->e[0]));
        assert_int_equal(health_claim(&r->set->e[0], now + 600), HEALTH_UP);
        gen_unref(g);
}

static void test_all_down_still_tried(void **state)
{
        struct gen *g = make("health = { fails = 1; backoff = 600; };");
        struct route *r = &g->routes[0];
        struct upstream_pick p;
        int n = 0;

        for (int i = 0; i < 3; i++)
                fail_server(r, i);
        for (int i = 0; i < 3; i++)
                assert_false(health_is_up(&r->set->e[i]));
        upstream_begin(r, &p);
        while (upstream_next(r, &p)) {
                n++;
                upstream_report(r, &p, -ECONNREFUSED);
        }
        assert_int_equal(n, 3);
        upstream_end(r, &p);
        /* One server is back: the last-resort pass finds it and it is up again. */
        upstream_begin(r, &p);
        while (upstream_next(r, &p) && p.current != 2)
                upstream_report(r, &p, -ECONNREFUSED);
        assert_int_equal(p.current, 2);
        upstream_report(r, &p, 0);
        assert_true(health_is_up(&r->set->e[2]));
        upstream_end(r, &p);
        gen_unref(g);
}

/* A route may have CFG_MAX_UPSTREAMS servers: the last-resort pass must reach the ones past the
 * 64th that pass 0 skipped as down, each once. */
static void test_all_down_many_servers(void **state)
{
        enum { N = 200 };
        static char text[N * 24 + 512];
        struct cfg *c = NULL;
        struct gen *g = NULL;
        struct upstream_pick p;
        int seen[N] = {0}, n = 0;
        size_t len;

        len = (size_t)snprintf(text, sizeof(text),
                               "routes = ({ name = \"r\"; listen = [\"127.0.0.1:1\"]; "
                               "health = { fails = 1; backoff = 600; }; upstreams = [");
        for (int i = 0; i < N; i++)
                len += (size_t)snprintf(text + len, sizeof(text) - len, "%s\"127.0.0.1:%d\"",
                                        i ? ", " : "", 1000 + i);
        snprintf(text + len, sizeof(text) - len, "]; });");
        assert_int_equal(cfg_load_string(text, NULL, &c, NULL), 0);
        assert_int_equal(gen_new(c, NULL, &g), 0);
        for (int i = 0; i < N; i += 2) /* every other server down: both passes matter */
                fail_server(&g->routes[0], i);
        upstream_begin(&g->routes[0], &p);
        while (upstream_next(&g->routes[0], &p)) {
                seen[p.current]++;
                n++;
                upstream_report(&g->routes[0], &p, -ECONNREFUSED);
        }
        upstream_end(&g->routes[0], &p);
        assert_int_equal(n, N);
        for (int i = 0; i < N; i++)
                assert_int_equal(seen[i], 1);
        gen_unref(g);
}

static void test_active_check(void **state)
{
        struct gen *g = make("health = { fails = 2; backoff = 600; };");
        struct route *r = &g->routes[0];
        uint64_t now = evio_now_ms();

        health_report_check(r, &r->set->e[1], -ECONNREFUSED, now);
        health_report_check(r, &r->set->e[1], -ECONNREFUSED, now);
        assert_false(health_is_up(&r->set->e[1]));
        health_report_check(r, &r->set->e[1], -ECONNREFUSED,
                            now); /* down stays down, no doubling */
        assert_int_equal(atomic_load(&r->set->e[1].srv->backoff_ms), 600000);
        health_report_check(r, &r->set->e[1], 0, now);
        assert_true(health_is_up(&r->set->e[1]));
        gen_unref(g);
}

static void test_fails_zero_never_down(void **state)
{
        struct gen *g = make("health = { fails = 0; };");
        struct route *r = &g->routes[0];

        for (int i = 0; i < 10; i++)
                fail_server(r, 0);
        assert_true(health_is_up(&r->set->e[0]));
        assert_int_equal(atomic_load(&r->set->e[0].srv->connect_failures), 10);
        assert_int_equal(atomic_load(&r->st->connect_failures), 10);
        gen_unref(g);
}

static void test_reload_shares_servers(void **state)
{
        struct gen *g = make("health = { fails = 1; backoff = 600; };"), *g2 = NULL;
        struct cfg *c = NULL;

        fail_server(&g->routes[0], 1);
        assert_int_equal(cfg_load_string("routes = ({ name = \"r\"; listen = [\"127.0.0.1:1\"]; "
                                         "upstreams = [\"127.0.0.1:13\", \"127.0.0.1:12\", "
                                         "\"127.0.0.1:99\"]; });",
                                         NULL, &c, NULL),
                         0);
        assert_int_equal(gen_new(c, g, &g2), 0);
        assert_ptr_equal(g2->routes[0].set->e[1].srv, g->routes[0].set->e[1].srv);
        assert_ptr_equal(g2->routes[0].set->e[0].srv, g->routes[0].set->e[2].srv);
        assert_false(health_is_up(&g2->routes[0].set->e[1]));
        assert_true(health_is_up(&g2->routes[0].set->e[2]));
        gen_unref(g);
        assert_false(health_is_up(&g2->routes[0].set->e[1])); /* still there after the old one */
        gen_unref(g2);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_round_robin),
            cmocka_unit_test(test_walk_once_each),
            cmocka_unit_test(test_least_conn),
            cmocka_unit_test(test_random_two_choices),
            cmocka_unit_test(test_passive_backoff),
            cmocka_unit_test(test_all_down_still_tried),
            cmocka_unit_test(test_all_down_many_servers),
            cmocka_unit_test(test_active_check),
            cmocka_unit_test(test_fails_zero_never_down),
            cmocka_unit_test(test_reload_shares_servers),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
