/* Config tests, part 6: match = { sni; alpn; protocol }, the inspect settings, and the rules
 * for a listen address several routes share (config/src/match.c, match_validate.c), with the
 * listener diff that treats a shared address as one listener. */
#include <errno.h>
#include <string.h>

#include "test_config.h"

/* Routes on lines 2, 3, ... each "{ name = ...; listen = [ ... ]; upstreams = ...; EXTRA }". */
#define R1(name, listen, extra)                                                                    \
        "  { name = \"" name "\"; listen = [ " listen                                              \
        " ]; upstreams = [ \"127.0.0.1:9\" ]; " extra " }"
#define R(name, listen, extra) ",\n" R1(name, listen, extra)
#define ROUTES(...)            "routes = (\n" __VA_ARGS__ "\n);\n"
#define A443                   "\"127.0.0.1:443\""

#define OPTS "inspect_timeout = 0.25; inspect_max = \"8K\"; on_bad_hello = \"close\";"

static void test_match_parsed(void **state)
{
        struct cfg *c = test_load_ok(ROUTES(
            R1("api", A443, OPTS "match = { sni = [ \"API.Example.COM.\", \"*.Example.org\" ]; };")
                R("h2", A443 ", \"127.0.0.1:444\"", OPTS "match = { alpn = [ \"h2\" ]; };")
                    R("ssh", A443, OPTS "match = { protocol = \"ssh\"; };")
                        R("dflt", A443 ", \"127.0.0.1:444\"", OPTS)));
        const struct cfg_route *r = c->routes;

        assert_non_null(r[0].match);
        assert_int_equal(r[0].match->n_sni, 2);
        assert_string_equal(r[0].match->sni[0], "api.example.com");
        assert_string_equal(r[0].match->sni[1], "*.example.org");
        assert_int_equal(r[0].match->protocol, CFG_PROTO_TLS);
        assert_int_equal(r[1].match->n_alpn, 1);
        assert_string_equal(r[1].match->alpn[0], "h2");
        assert_int_equal(r[2].match->protocol, CFG_PROTO_SSH);
        assert_null(r[3].match);
        assert_int_equal(r[3].inspect_timeout_ms, 250);
        assert_int_equal(r[3].inspect_max, 8192);
        assert_true(r[3].bad_hello_close);
        cfg_free(c);
        c = test_load_ok(ROUTES(R1("any", A443, "match = { protocol = \"any\"; };")));
        assert_int_equal(c->routes[0].match->protocol, CFG_PROTO_ANY);
        assert_int_equal(c->routes[0].inspect_timeout_ms, 5000);
        assert_int_equal(c->routes[0].inspect_max, 16384);
        assert_false(c->routes[0].bad_hello_close);
        cfg_free(c);
}

struct bad {
        const char *text;
        int line;
        const char *setting, *message;
};

static const struct bad cases[] = {
    {ROUTES(R1("a", A443, "match = { sni = [ \"a b\" ]; };") R("d", A443, "")), 2,
     "routes[0].match.sni[0]", "\"a b\": a host name may only use A-Z a-z 0-9 - _ and dots"},
    {ROUTES(R1("a", A443, "match = { sni = [ \"a.*.org\" ]; };") R("d", A443, "")), 2,
     "routes[0].match.sni[0]", "\"a.*.org\": '*' may only start a name, as \"*.example.org\""},
    {ROUTES(R1("a", A443, "match = { sni = [ \"a..org\" ]; };") R("d", A443, "")), 2,
     "routes[0].match.sni[0]", "\"a..org\": empty label in a host name"},
    {ROUTES(R1("a", A443, "match = { };") R("d", A443, "")), 2, "routes[0].match",
     "a match needs sni, alpn or protocol"},
    {ROUTES(R1("a", A443, "match = { sni = [ \"x.org\" ]; protocol = \"ssh\"; };")
                R("d", A443, "")),
     2, "routes[0].match.protocol",
     "sni and alpn are read from a TLS ClientHello: protocol must be \"tls\" (or left out) "
     "with them"},
    {ROUTES(R1("a", A443, "match = { alpn = [ \"\" ]; };") R("d", A443, "")), 2,
     "routes[0].match.alpn[0]", "\"\": an ALPN protocol has 1 to 255 bytes"},
    {ROUTES(R1("a", A443, "match = { protocol = \"smtp\"; };") R("d", A443, "")), 2,
     "routes[0].match.protocol",
     "\"smtp\": unknown value; expected \"tls\", \"ssh\", \"http\" or \"any\""},
    {ROUTES(R1("a", A443, "on_bad_hello = \"drop\";")), 2, "routes[0].on_bad_hello",
     "\"drop\": unknown value; expected \"default\" or \"close\""},
    {ROUTES(R1("a", A443, "inspect_max = 100;")), 2, "routes[0].inspect_max",
     "100 is out of range (512..65536)"},
    /* two routes claim a name, exactly or as the same wildcard */
    {ROUTES(R1("a", A443, "match = { sni = [ \"x.org\", \"*.y.org\" ]; };")
                R("b", A443, "match = { sni = [ \"X.org.\" ]; };") R("d", A443, "")),
     3, "routes[1].match.sni[0]",
     "\"x.org\": also claimed by routes[0] (line 2) on \"127.0.0.1:443\""},
    {ROUTES(R1("a", A443, "match = { sni = [ \"x.org\", \"*.y.org\" ]; };")
                R("b", A443, "match = { sni = [ \"*.Y.org\" ]; };") R("d", A443, "")),
     3, "routes[1].match.sni[0]",
     "\"*.y.org\": also claimed by routes[0] (line 2) on \"127.0.0.1:443\""},
    /* two defaults on a shared address */
    {ROUTES(R1("a", A443, "match = { protocol = \"ssh\"; };") R("d", A443, "") R("e", A443, "")), 4,
     "routes[2].listen[0]",
     "\"127.0.0.1:443\": already used by routes[1].listen[0] (line 3), also without a match: "
     "of the routes sharing a listen address one at most goes without (the default)"},
    /* one route lists the shared address twice */
    {ROUTES(R1("a", A443 ", \"127.0.0.1:443\"", "match = { protocol = \"ssh\"; };")
                R("d", A443, "")),
     2, "routes[0].listen[1]", "\"127.0.0.1:443\": already used by routes[0].listen[0] (line 2)"},
    /* listener options differ */
    {ROUTES(R1("a", A443, "match = { protocol = \"ssh\"; };") R("d", A443, OPTS)), 3,
     "routes[1].listen[0]",
     "\"127.0.0.1:443\": shared with routes[0].listen[0] (line 2), whose inspect_timeout "
     "differs: routes sharing a listen address must agree on it"},
    {ROUTES(R1("a", A443, "match = { protocol = \"ssh\"; };")
                R("d", A443, "accept_proxy_protocol = true;")),
     3, "routes[1].listen[0]",
     "\"127.0.0.1:443\": shared with routes[0].listen[0] (line 2), whose accept_proxy_protocol "
     "differs: routes sharing a listen address must agree on it"},
    {ROUTES(R1("a", "\"unix:/run/x.sock\"", "match = { protocol = \"ssh\"; };")
                R("d", "\"unix:/run/x.sock\"", "unix_mode = \"0600\";")),
     3, "routes[1].listen[0]",
     "\"unix:/run/x.sock\": shared with routes[0].listen[0] (line 2), whose unix_mode "
     "differs: routes sharing a listen address must agree on it"},
    /* nowhere to go for what matches no rule */
    {ROUTES(R1("a", A443, "match = { sni = [ \"x.org\" ]; };")
                R("b", A443, "match = { protocol = \"ssh\"; };")),
     2, "routes[0].listen[0]",
     "\"127.0.0.1:443\": no route here takes a connection that matches no rule: add a route "
     "without match (the default) or one with protocol = \"any\""},
    /* a wildcard still overlaps its unspecified twin, shared or not */
    {ROUTES(R1("a", "\"*:443\"", "match = { protocol = \"any\"; };") R("d", "\"0.0.0.0:443\"", "")),
     3, "routes[1].listen[0]",
     "\"0.0.0.0:443\": overlaps \"*:443\" in routes[0].listen[0] (line 2)"},
};

static void test_match_errors(void **state)
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

/* Allowed: no default when protocol "any" takes the rest; one route alone with a match. */
static void test_match_allowed(void **state)
{
        cfg_free(test_load_ok(ROUTES(R1("a", A443, "match = { sni = [ \"x.org\" ]; };")
                                         R("b", A443, "match = { protocol = \"any\"; };"))));
        cfg_free(test_load_ok(ROUTES(R1("a", A443, "match = { protocol = \"any\"; };"))));
        /* Two routes without a match on one address stay "already used" (validate.c). */
        assert_true(test_error_is(ROUTES(R1("a", A443, "") R("b", A443, "")), 3,
                                  "routes[1].listen[0]",
                                  "\"127.0.0.1:443\": already used by routes[0].listen[0] "
                                  "(line 2)"));
}

static void test_diff_shared_is_one_listener(void **state)
{
        struct cfg_error err;
        struct cfg *a = NULL, *b = NULL;
        struct cfg_diff d;

        assert_int_equal(cfg_load_string(ROUTES(R1("x", A443, "match = { sni = [ \"x.org\" ]; };")
                                                    R("d", A443 ", \"127.0.0.1:80\"", "")),
                                         NULL, &a, &err),
                         0);
        assert_int_equal(cfg_load_string(ROUTES(R1("d", A443, "")), NULL, &b, &err), 0);
        assert_int_equal(cfg_diff_listeners(a, b, &d), 0);
        assert_int_equal(d.n_kept, 1);
        assert_string_equal(d.kept_old[0].route->name, "x"); /* its first route in the file */
        assert_string_equal(d.kept_new[0].route->name, "d");
        assert_int_equal(d.n_removed, 1);
        assert_string_equal(d.removed[0].addr->text, "127.0.0.1:80");
        assert_int_equal(d.n_added, 0);
        cfg_diff_free(&d);
        assert_int_equal(cfg_diff_listeners(NULL, a, &d), 0);
        assert_int_equal(d.n_added, 2);
        cfg_diff_free(&d);
        cfg_free(a);
        cfg_free(b);
}

const struct CMUnitTest match_tests[] = {
    cmocka_unit_test(test_match_parsed),
    cmocka_unit_test(test_match_errors),
    cmocka_unit_test(test_match_allowed),
    cmocka_unit_test(test_diff_shared_is_one_listener),
};
const size_t n_match_tests = sizeof(match_tests) / sizeof(match_tests[0]);
