/* Config tests, part 5: the admin group (admin = { listen; mode; group; state_file; }): its
 * defaults, every key, and each mistake with its exact line, setting and message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_config.h"

#define ADMIN(body) "admin = { " body " };\n" ONE_ROUTE

static void test_admin_absent(void **state)
{
        struct cfg *c = test_load_ok(ONE_ROUTE);

        assert_false(c->admin.enabled);
        assert_null(c->admin.state_file);
        cfg_free(c);
}

static void test_admin_defaults(void **state)
{
        struct cfg *c = test_load_ok(ADMIN("listen = \"unix:/run/evproxy/admin.sock\";"));

        assert_true(c->admin.enabled);
        assert_int_equal(c->admin.listen.kind, CFG_ADDR_UNIX);
        assert_string_equal(c->admin.listen.text, "unix:/run/evproxy/admin.sock");
        assert_int_equal(c->admin.mode, 0660);
        assert_null(c->admin.group);
        assert_string_equal(c->admin.state_file, "/var/lib/evproxy/state");
        cfg_free(c);
}

static void test_admin_every_key(void **state)
{
        struct cfg *c = test_load_ok(ADMIN("listen = \"unix:/tmp/a.sock\"; mode = \"0600\"; "
                                           "group = \"adm\"; state_file = \"/tmp/st\";"));

        assert_true(c->admin.enabled);
        assert_int_equal(c->admin.mode, 0600);
        assert_string_equal(c->admin.group, "adm");
        assert_string_equal(c->admin.state_file, "/tmp/st");
        cfg_free(c);
}

struct bad {
        const char *text;
        const char *setting;
        const char *message;
};

static void test_admin_errors(void **state)
{
        static const struct bad cases[] = {
            {ADMIN(""), "admin.listen", "missing (this setting is required)"},
            {"admin = 1;\n" ONE_ROUTE, "admin", "expected a group { ... }, found an integer"},
            {ADMIN("listen = \"127.0.0.1:9000\";"), "admin.listen",
             "\"127.0.0.1:9000\": the admin socket must be a unix socket path "
             "(\"unix:/run/evproxy/admin.sock\")"},
            {ADMIN("listen = \"unix:@admin\";"), "admin.listen",
             "\"unix:@admin\": the admin socket must be a unix socket path "
             "(\"unix:/run/evproxy/admin.sock\")"},
            {ADMIN("listen = \"unix:/a\"; mode = \"0999\";"), "admin.mode",
             "expected an octal mode as a string, e.g. \"0660\""},
            {ADMIN("listen = \"unix:/a\"; group = \"-x\";"), "admin.group",
             "not a valid group name"},
            {ADMIN("listen = \"unix:/a\"; state_file = \"rel/state\";"), "admin.state_file",
             "expected an absolute file path"},
            {ADMIN("listen = \"unix:/a\"; lisen = 1;"), "admin.lisen", "unknown setting"},
            {"metrics = { listen = \"unix:/tmp/m.sock\"; };\n"
             "admin = { listen = \"unix:/tmp/m.sock\"; };\n" ONE_ROUTE,
             "admin.listen", "\"unix:/tmp/m.sock\": also used by the metrics endpoint"},
            {"admin = { listen = \"unix:/tmp/l.sock\"; };\n"
             "routes = ( { name = \"web\"; listen = [ \"unix:/tmp/l.sock\" ]; upstreams = [ "
             "\"127.0.0.1:8081\" ]; } );\n",
             "admin.listen", "\"unix:/tmp/l.sock\": also a listener of route web"},
        };
        bool ok = true;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int line = strncmp(cases[i].text, "metrics", 7) == 0 ? 2 : 1;

                if (!test_error_is(cases[i].text, line, cases[i].setting, cases[i].message))
                        ok = false;
        }
        assert_true(ok);
}

const struct CMUnitTest admin_tests[] = {
    cmocka_unit_test(test_admin_absent),
    cmocka_unit_test(test_admin_defaults),
    cmocka_unit_test(test_admin_every_key),
    cmocka_unit_test(test_admin_errors),
};
const size_t n_admin_tests = sizeof(admin_tests) / sizeof(admin_tests[0]);
