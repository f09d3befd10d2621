/* Config tests, part 6: the handover group (handover = { socket; fdstore; }, issue 18): absent,
 * every key, the "unix:" spelling, and each mistake with its line, setting and message; the
 * packaged file turns it on. */
#include <string.h>

#include "test_config.h"

#define HANDOVER(body) "handover = { " body " };\n" ONE_ROUTE

static void test_handover_absent(void **state)
{
        struct cfg *c = test_load_ok(ONE_ROUTE);

        assert_string_equal(c->handover.socket, "");
        assert_false(c->handover.fdstore);
        cfg_free(c);
}

static void test_handover_every_key(void **state)
{
        struct cfg *c = test_load_ok(HANDOVER("socket = \"/run/evproxy/h.sock\"; fdstore = true;"));

        assert_string_equal(c->handover.socket, "/run/evproxy/h.sock");
        assert_true(c->handover.fdstore);
        cfg_free(c);
        c = test_load_ok(HANDOVER("socket = \"unix:/tmp/h.sock\";"));
        assert_string_equal(c->handover.socket, "/tmp/h.sock");
        assert_false(c->handover.fdstore);
        cfg_free(c);
}

static void test_handover_packaged(void **state)
{
        struct cfg *c = NULL;
        struct cfg_error err = {0};

        assert_int_equal(cfg_load(EVPROXY_EXAMPLE_CONF, &c, &err), 0);
        assert_true(c->handover.fdstore);
        assert_string_equal(c->handover.socket, "/run/evproxy/handover.sock");
        cfg_free(c);
}

static void test_handover_errors(void **state)
{
        static const struct {
                const char *text, *setting, *message;
        } cases[] = {
            {"handover = 1;\n" ONE_ROUTE, "handover", "expected a group { ... }, found an integer"},
            {HANDOVER("socket = \"relative.sock\";"), "handover.socket",
             "expected an absolute unix socket path of at most 107 bytes"},
            {HANDOVER("fdstore = 1;"), "handover.fdstore",
             "expected true or false, found an integer"},
            {HANDOVER("sockett = \"/x\";"), "handover.sockett", "unknown setting"},
        };
        bool ok = true;

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                if (!test_error_is(cases[i].text, 1, cases[i].setting, cases[i].message))
                        ok = false;
        assert_true(ok);
}

const struct CMUnitTest handover_tests[] = {
    cmocka_unit_test(test_handover_absent),
    cmocka_unit_test(test_handover_every_key),
    cmocka_unit_test(test_handover_packaged),
    cmocka_unit_test(test_handover_errors),
};
const size_t n_handover_tests = sizeof(handover_tests) / sizeof(handover_tests[0]);
