/* Listener groups (daemon/lgroup.c): routes sharing a listen address become one listener with
 * a stand-in route, and the choice among them follows the documented precedence: exact SNI,
 * longest "*." suffix, ALPN, protocol, protocol "any", then the default (none: NULL). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include <evproxy/config.h>

#include "gen.h"
#include "lgroup.h"

#define UP "upstreams = [ \"127.0.0.1:9\" ];"
#define A  "listen = [ \"127.0.0.1:443\" ]; " UP
#define B  "listen = [ \"127.0.0.1:444\" ]; " UP

static const char *conf =
    "routes = (\n"
    "{ name = \"exact\"; " A " match = { sni = [ \"api.example.com\" ]; }; },\n"
    "{ name = \"org\"; " A " match = { sni = [ \"*.example.org\" ]; }; },\n"
    "{ name = \"deep\"; " A " match = { sni = [ \"*.deep.example.org\" ]; }; },\n"
    "{ name = \"h2\"; " A " match = { alpn = [ \"h2\" ]; }; },\n"
    "{ name = \"ssh\"; " A " match = { protocol = \"ssh\"; }; },\n"
    "{ name = \"http\"; " A " match = { protocol = \"http\"; }; },\n"
    "{ name = \"both\"; " A " match = { sni = [ \"x.test\" ]; alpn = [ \"h2\" ]; }; },\n"
    "{ name = \"dflt\"; " A " },\n"
    "{ name = \"any\"; " B " match = { protocol = \"any\"; }; },\n"
    "{ name = \"tls\"; " B " match = { protocol = \"tls\"; }; }\n"
    ");\n";

static struct gen *g;
static struct lsockset set_a, set_b; /* only compared by address here */

static int setup(void **state)
{
        struct cfg_error err;
        struct cfg *c = NULL;

        if (cfg_load_string(conf, NULL, &c, &err) < 0 || gen_new(c, NULL, &g) < 0)
                return -1;
        for (size_t i = 0; i < g->n_routes; i++)
                if (gen_add_listener(g, i, &c->routes[i].listen[0], i < 8 ? &set_a : &set_b) < 0)
                        return -1;
        return 0;
}

static int teardown(void **state)
{
        gen_unref(g);
        return 0;
}

static struct inspect_result tls(const char *sni, const char *alpn)
{
        struct inspect_result r = {.kind = INSPECT_TLS};

        snprintf(r.sni, sizeof(r.sni), "%s", sni);
        if (alpn) {
                r.alpn[0] = (uint8_t)strlen(alpn);
                memcpy(r.alpn + 1, alpn, strlen(alpn));
                r.alpn_len = 1 + strlen(alpn);
        }
        return r;
}

static const char *pick(int group, const struct inspect_result *res, char *rule, size_t n)
{
        struct lgroup_rule why;
        const struct listener *l = lgroup_choose(g->listeners[group].group, res, &why);

        snprintf(rule, n, "%s:%s", why.kind, why.value);
        return l ? l->route->cfg->name : "(none)";
}

static void expect(int group, struct inspect_result res, const char *route, const char *rule)
{
        char why[300];

        assert_string_equal(pick(group, &res, why, sizeof(why)), route);
        assert_string_equal(why, rule);
}

static void test_one_listener_per_address(void **state)
{
        assert_int_equal(g->n_listeners, 2);
        assert_non_null(g->listeners[0].group);
        assert_int_equal(g->listeners[0].group->n_members, 8);
        assert_int_equal(g->listeners[1].group->n_members, 2);
        assert_string_equal(g->listeners[0].route->cfg->name, "-");
        assert_int_equal(g->listeners[0].route->cfg->n_allow, 0);
        assert_null(g->listeners[0].group->members[7].group);
}

static void test_precedence(void **state)
{
        struct inspect_result other = {.kind = INSPECT_OTHER};

        expect(0, tls("api.example.com", "h2"), "exact", "sni:api.example.com");
        expect(0, tls("b.example.org", NULL), "org", "sni:*.example.org");
        expect(0, tls("a.deep.example.org", NULL), "deep", "sni:*.deep.example.org");
        expect(0, tls("a.b.deep.example.org", "h2"), "deep", "sni:*.deep.example.org");
        expect(0, tls("example.org", NULL), "dflt", "default:");
        expect(0, tls("", "h2"), "h2", "alpn:h2");
        expect(0, tls("x.test", "h2"), "both", "sni:x.test");
        expect(0, tls("x.test", "http/1.1"), "dflt", "default:");
        expect(0, tls("unknown.test", "h2"), "h2", "alpn:h2");
        expect(0, (struct inspect_result){.kind = INSPECT_SSH}, "ssh", "protocol:ssh");
        expect(0, (struct inspect_result){.kind = INSPECT_HTTP}, "http", "protocol:http");
        expect(0, other, "dflt", "default:");
        expect(0, (struct inspect_result){.kind = INSPECT_BAD}, "dflt", "default:");
}

static void test_any_and_no_default(void **state)
{
        char why[300];

        expect(1, tls("", NULL), "tls", "protocol:tls");
        expect(1, (struct inspect_result){.kind = INSPECT_SSH}, "any", "protocol:any");
        assert_string_equal(pick(1, NULL, why, sizeof(why)), "(none)"); /* silence */
        assert_string_equal(pick(0, NULL, why, sizeof(why)), "dflt");
        expect(1, (struct inspect_result){.kind = INSPECT_BAD}, "(none)", "-:");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_one_listener_per_address),
            cmocka_unit_test(test_precedence),
            cmocka_unit_test(test_any_and_no_default),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
