/* Config tests, part 6: upstreams given by name ("host:port", "srv:_svc._proto.name"), the
 * global resolver group and a route's resolver override: parsing, defaults, inheritance and
 * each mistake with its exact line, setting and message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_config.h"

#define ROUTE_UP(up, extra)                                                                        \
        "routes = (\n  {\n    name = \"web\";\n    listen = [ \"127.0.0.1:8080\" ];\n"             \
        "    upstreams = [ " up " ];\n    " extra "\n  }\n);\n"

static void parse_ok(const char *text, enum cfg_upstream_kind kind, const char *host, uint16_t port)
{
        struct cfg_upstream u;
        char msg[200] = "";

        memset(&u, 0, sizeof(u));
        if (cfg_upstream_parse(text, &u, msg, sizeof(msg)) != 0) {
                print_error("%s: %s\n", text, msg);
                fail();
        }
        assert_int_equal(u.kind, kind);
        assert_string_equal(u.host, host);
        assert_int_equal(u.port, port);
        assert_string_equal(u.addr.text, text);
}

static void parse_bad(const char *text, const char *want)
{
        struct cfg_upstream u;
        char msg[200] = "";

        memset(&u, 0, sizeof(u));
        assert_int_equal(cfg_upstream_parse(text, &u, msg, sizeof(msg)), -22);
        assert_string_equal(msg, want);
        assert_int_equal(u.kind, CFG_UPSTREAM_ADDR);
}

/* Loading text fails at line in setting (the message is someone else's test). */
static bool err_at(const char *text, int line, const char *setting)
{
        struct cfg_error err;
        struct cfg *c = NULL;

        memset(&err, 0, sizeof(err));
        if (cfg_load_string(text, "t.conf", &c, &err) == -22 && err.line == line &&
            strcmp(err.setting, setting) == 0)
                return true;
        print_error("--- text:\n%s--- expected line %d [%s], got %d [%s] [%s]\n", text, line,
                    setting, err.line, err.setting, err.message);
        cfg_free(c);
        return false;
}

static void test_upstream_kinds(void **state)
{
        char long_label[80], long_name[300];

        parse_ok("db.internal:5432", CFG_UPSTREAM_NAME, "db.internal", 5432);
        parse_ok("web:80", CFG_UPSTREAM_NAME, "web", 80);
        parse_ok("my_service-1:8080", CFG_UPSTREAM_NAME, "my_service-1", 8080);
        parse_ok("db.example.:1", CFG_UPSTREAM_NAME, "db.example.", 1);
        parse_ok("srv:_pg._tcp.db.service.consul", CFG_UPSTREAM_SRV, "_pg._tcp.db.service.consul",
                 0);
        /* Literals stay literals, localhost included (no lookup for it). */
        parse_ok("10.0.0.7:5432", CFG_UPSTREAM_ADDR, "", 0);
        parse_ok("localhost:80", CFG_UPSTREAM_ADDR, "", 0);
        parse_ok("[::1]:80", CFG_UPSTREAM_ADDR, "", 0);
        parse_ok("unix:/run/app.sock", CFG_UPSTREAM_ADDR, "", 0);
        parse_bad("256.0.0.1:80",
                  "not an IPv4 address (host names are not resolved; only \"localhost\" is "
                  "known)");
        parse_bad("db:0", "port out of range");
        parse_bad("db:", "missing port after ':'");
        parse_bad("db:http", "port is not a number");
        parse_bad("-db:80", "a host name label starts with '-'");
        parse_bad("db-.x:80", "a host name label ends with '-'");
        parse_bad("a..b:80", "empty label in host name");
        parse_bad("a/b:80", "host names have only letters, digits, '-', '_' and '.'");
        parse_bad("srv:_pg._tcp.x:5432", "an SRV name has no port (the records give it)");
        parse_bad("srv:pg.tcp.x", "expected \"srv:_service._proto.name\"");
        parse_bad("srv:_pg._tcp", "expected \"srv:_service._proto.name\"");
        parse_bad("srv:", "empty host name");
        memset(long_label, 'a', 64);
        strcpy(long_label + 64, ".x:80");
        parse_bad(long_label, "host name label too long (at most 63)");
        for (int i = 0; i < 60; i++)
                memcpy(long_name + i * 4, "abc.", 4);
        strcpy(long_name + 240, "abcdefghijklmn:80");
        parse_bad(long_name, "address too long (at most 127 characters)");
}

static void test_route_with_names(void **state)
{
        struct cfg *c = test_load_ok(
            ROUTE_UP("\"db.internal:5432\", \"10.0.0.7:5432\", \"srv:_pg._tcp.db.consul\"", ""));
        const struct cfg_route *r = &c->routes[0];

        assert_int_equal(r->n_upstreams, 3);
        assert_int_equal(r->n_named, 2);
        assert_int_equal(r->upstreams[0].kind, CFG_UPSTREAM_NAME);
        assert_int_equal(r->upstreams[1].kind, CFG_UPSTREAM_ADDR);
        assert_int_equal(r->upstreams[2].kind, CFG_UPSTREAM_SRV);
        /* Global defaults reach the route. */
        assert_int_equal(r->dns.family, CFG_FAMILY_ANY);
        assert_int_equal(r->dns.refresh_min_ms, 1000);
        assert_int_equal(r->dns.refresh_max_ms, 300000);
        assert_int_equal(r->dns.nxdomain_hold_ms, 60000);
        assert_int_equal(c->resolver.n_nameservers, 0);
        assert_null(c->resolver.resolv_conf);
        cfg_free(c);
}

static void test_group_with_name(void **state)
{
        struct cfg *c = test_load_ok(
            "routes = ( { name = \"web\"; listen = [ \"127.0.0.1:8080\" ]; upstreams = ( {\n"
            "  address = \"app:80\"; weight = 5; max_connections = 9; } ); } );\n");

        assert_int_equal(c->routes[0].upstreams[0].kind, CFG_UPSTREAM_NAME);
        assert_string_equal(c->routes[0].upstreams[0].host, "app");
        assert_int_equal(c->routes[0].upstreams[0].weight, 5);
        assert_int_equal(c->routes[0].upstreams[0].max_connections, 9);
        cfg_free(c);
}

static void test_resolver_global_and_route(void **state)
{
        struct cfg *c = test_load_ok(
            "resolver = { nameservers = [ \"127.0.0.1:5353\", \"10.0.0.1\", \"[::1]:53\" ];\n"
            "  timeout = 0.5; attempts = 3; resolv_conf = \"/tmp/r.conf\"; family = \"ipv4\";\n"
            "  refresh = { min = 2; max = 60; }; nxdomain_hold = 5; };\n" ROUTE_UP(
                "\"db:1\"", "resolver = { family = \"ipv6\"; refresh = { max = 30; }; };") "\n");
        const struct cfg_resolver *g = &c->resolver;
        const struct cfg_dns_policy *p = &c->routes[0].dns;

        assert_int_equal(g->n_nameservers, 3);
        assert_string_equal(g->nameservers[0], "127.0.0.1:5353");
        assert_string_equal(g->nameservers[1], "10.0.0.1");
        assert_string_equal(g->nameservers[2], "[::1]:53");
        assert_int_equal(g->timeout_ms, 500);
        assert_int_equal(g->attempts, 3);
        assert_string_equal(g->resolv_conf, "/tmp/r.conf");
        assert_int_equal(g->policy.family, CFG_FAMILY_IPV4);
        assert_int_equal(p->family, CFG_FAMILY_IPV6); /* the route's own */
        assert_int_equal(p->refresh_min_ms, 2000);    /* the global one */
        assert_int_equal(p->refresh_max_ms, 30000);   /* the route's own */
        assert_int_equal(p->nxdomain_hold_ms, 5000);  /* the global one */
        cfg_free(c);
}

static void test_resolver_errors(void **state)
{
        assert_true(test_error_is("resolver = { nameservers = [ \"dns.example\" ]; };\n" ONE_ROUTE,
                                  1, "resolver.nameservers[0]",
                                  "\"dns.example\": not an IP address (with an optional port)"));
        assert_true(err_at("resolver = { timeout = 0; };\n" ONE_ROUTE, 1, "resolver.timeout"));
        assert_true(err_at("resolver = { family = \"ipx\"; };\n" ONE_ROUTE, 1, "resolver.family"));
        assert_true(test_error_is("resolver = { resolv_conf = \"etc/r\"; };\n" ONE_ROUTE, 1,
                                  "resolver.resolv_conf", "must be an absolute path"));
        assert_true(test_error_is("resolver = { refresh = { min = 10; max = 5; }; };\n" ONE_ROUTE,
                                  1, "resolver.refresh", "min (10s) is above max (5s)"));
        assert_true(err_at("resolver = { bogus = 1; };\n" ONE_ROUTE, 1, "resolver.bogus"));
        assert_true(err_at(ROUTE_UP("\"db:1\"", "resolver = { nameservers = [ ]; };"), 6,
                           "routes[0].resolver.nameservers"));
        assert_true(test_error_is(ROUTE_UP("\"db:1\"", "resolver = { refresh = { min = 400; }; };"),
                                  6, "routes[0].resolver.refresh",
                                  "min (400s) is above max (300s)"));
        assert_true(test_error_is(ROUTE_UP("\"db:1\", \"bad name:1\"", ""), 5,
                                  "routes[0].upstreams[1]",
                                  "\"bad name:1\": host names have only letters, digits, '-', "
                                  "'_' and '.'"));
}

/* A name may equal a listener's text: the loop check is for literal addresses only. */
static void test_loop_check_literal_only(void **state)
{
        struct cfg *c = test_load_ok(ROUTE_UP("\"self.example:8080\"", ""));

        cfg_free(c);
        assert_true(err_at(ROUTE_UP("\"127.0.0.1:8080\"", ""), 5, "routes[0].upstreams[0]"));
}

const struct CMUnitTest name_tests[] = {
    cmocka_unit_test(test_upstream_kinds),  cmocka_unit_test(test_route_with_names),
    cmocka_unit_test(test_group_with_name), cmocka_unit_test(test_resolver_global_and_route),
    cmocka_unit_test(test_resolver_errors), cmocka_unit_test(test_loop_check_literal_only),
};
const size_t n_name_tests = sizeof(name_tests) / sizeof(name_tests[0]);
