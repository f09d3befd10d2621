/* Config tests of the traffic policy keys (config/src/policy.c): defaults, what a route inherits
 * from the top level and what it keeps for itself, size suffixes, and one row per invalid input
 * with its exact line, setting and message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_config.h"

#define ROUTE_WITH(extra)                                                                          \
        "routes = (\n  { name = \"web\"; listen = [ \"127.0.0.1:8080\" ]; upstreams = [ "          \
        "\"127.0.0.1:8081\" ];\n    " extra "\n  }\n);\n"

static void test_defaults(void **state)
{
        struct cfg *c = test_load_ok(ONE_ROUTE);
        const struct cfg_policy *p = &c->routes[0].policy;

        assert_int_equal(c->client_table_size, 65536);
        assert_int_equal(c->policy.max_per_client, 0);
        assert_int_equal(c->policy.client_rate, 0);
        assert_int_equal(p->client_prefix6, 64);
        assert_false(p->client_keepalive.enabled);
        assert_false(p->upstream_keepalive.enabled);
        assert_int_equal(p->client_user_timeout_ms, 0);
        assert_int_equal(p->rate.upload, 0);
        assert_int_equal(p->route_rate.download, 0);
        cfg_free(c);
}

static void test_inherit_and_override(void **state)
{
        struct cfg *c = test_load_ok(
            "max_connections_per_client = 100;\nclient_rate = { per_second = 5; };\n"
            "client_prefix6 = 48;\nclient_keepalive = { idle = 30; interval = 5; count = 3; };\n"
            "upstream_user_timeout = 2.5;\nrate = { upload = \"1M\"; download = 2000; };\n"
            "client_table_size = 1000;\n"
            "routes = (\n  { name = \"a\"; listen = [ \"127.0.0.1:1\" ]; upstreams = [ "
            "\"127.0.0.1:9\" ]; },\n  { name = \"b\"; listen = [ \"127.0.0.1:2\" ]; upstreams "
            "= [ \"127.0.0.1:9\" ]; max_connections_per_client = 5; client_prefix6 = 56;\n"
            "    upstream_keepalive = { idle = 1.5; }; rate = { download = \"10K\"; };\n"
            "    route_rate = { upload = \"4M\"; }; }\n);\n");
        const struct cfg_policy *a = &c->routes[0].policy, *b = &c->routes[1].policy;

        assert_int_equal(c->client_table_size, 1000);
        assert_int_equal(c->policy.max_per_client, 100);
        assert_int_equal(c->policy.client_rate, 5);
        assert_int_equal(c->policy.client_burst, 5); /* burst defaults to per_second */
        /* Client limits are per scope: a route does not inherit them. */
        assert_int_equal(a->max_per_client, 0);
        assert_int_equal(b->max_per_client, 5);
        assert_int_equal(a->client_prefix6, 48);
        assert_int_equal(b->client_prefix6, 56);
        assert_true(a->client_keepalive.enabled);
        assert_int_equal(a->client_keepalive.idle_ms, 30000);
        assert_int_equal(a->client_keepalive.interval_ms, 5000);
        assert_int_equal(a->client_keepalive.count, 3);
        assert_true(b->client_keepalive.enabled);
        assert_false(a->upstream_keepalive.enabled);
        assert_true(b->upstream_keepalive.enabled);
        assert_int_equal(b->upstream_keepalive.idle_ms, 1500);
        assert_int_equal(b->upstream_keepalive.interval_ms, 10000); /* group defaults */
        assert_int_equal(b->upstream_keepalive.count, 5);
        assert_int_equal(a->upstream_user_timeout_ms, 2500);
        assert_int_equal(b->upstream_user_timeout_ms, 2500);
        assert_int_equal(a->rate.upload, 1 << 20);
        assert_int_equal(a->rate.download, 2000);
        assert_int_equal(b->rate.upload, 0); /* a route's rate group replaces the top one */
        assert_int_equal(b->rate.download, 10 << 10);
        assert_int_equal(b->route_rate.upload, 4 << 20);
        assert_int_equal(a->route_rate.upload, 0);
        cfg_free(c);
}

struct bad {
        const char *text;
        int line;
        const char *setting;
        const char *message;
};

static const struct bad cases[] = {
    {"client_rate = { per_second = 10; burst = 0; };\n" ONE_ROUTE, 1, "client_rate.burst",
     "0 is out of range (1..1000000)"},
    {"client_rate = { burst = 3; };\n" ONE_ROUTE, 1, "client_rate.per_second",
     "missing (this setting is required)"},
    {"client_rate = 5;\n" ONE_ROUTE, 1, "client_rate",
     "expected a group { ... }, found an integer"},
    {"client_prefix6 = 0;\n" ONE_ROUTE, 1, "client_prefix6", "0 is out of range (1..128)"},
    {ROUTE_WITH("client_prefix6 = 129;"), 3, "routes[0].client_prefix6",
     "129 is out of range (1..128)"},
    {ROUTE_WITH("max_connections_per_client = -1;"), 3, "routes[0].max_connections_per_client",
     "-1 is out of range (0..1000000)"},
    {"client_table_size = 10;\n" ONE_ROUTE, 1, "client_table_size",
     "10 is out of range (64..16777216)"},
    {ROUTE_WITH("client_table_size = 100;"), 3, "routes[0].client_table_size", "unknown setting"},
    {"route_rate = { upload = 1; };\n" ONE_ROUTE, 1, "route_rate", "unknown setting"},
    {ROUTE_WITH("client_keepalive = { idle = 0; };"), 3, "routes[0].client_keepalive.idle",
     "0 seconds is out of range (1..32767)"},
    {"upstream_keepalive = { count = 128; };\n" ONE_ROUTE, 1, "upstream_keepalive.count",
     "128 is out of range (1..127)"},
    {"upstream_keepalive = { idel = 1; };\n" ONE_ROUTE, 1, "upstream_keepalive.idel",
     "unknown setting"},
    {ROUTE_WITH("client_user_timeout = -1;"), 3, "routes[0].client_user_timeout",
     "-1 seconds is out of range (0..86400)"},
    {ROUTE_WITH("rate = { upload = \"10X\"; };"), 3, "routes[0].rate.upload",
     "\"10X\": expected a number of bytes, optionally followed by K, M or G (e.g. \"256M\")"},
    {ROUTE_WITH("route_rate = { down = 1; };"), 3, "routes[0].route_rate.down", "unknown setting"},
};

static void test_errors(void **state)
{
        size_t failures = 0;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                if (!test_error_is(cases[i].text, cases[i].line, cases[i].setting,
                                   cases[i].message)) {
                        print_error("^^^ case %zu failed\n", i);
                        failures++;
                }
        }
        assert_int_equal(failures, 0);
}

const struct CMUnitTest policy_tests[] = {
    cmocka_unit_test(test_defaults),
    cmocka_unit_test(test_inherit_and_override),
    cmocka_unit_test(test_errors),
};
const size_t n_policy_tests = sizeof(policy_tests) / sizeof(policy_tests[0]);
