/* Config tests, part 4: cfg_diff_listeners, which reload uses to keep listeners that stayed,
 * open new ones and close removed ones. Configs come from cfg_load_string. */
#include <errno.h>
#include <string.h>

#include "test_config.h"

static struct cfg *load(const char *text)
{
        struct cfg_error err;
        struct cfg *c = NULL;
        char msg[5000];
        int r = cfg_load_string(text, "diff.conf", &c, &err);

        if (r < 0) {
                cfg_error_format(&err, msg, sizeof(msg));
                print_error("%s\n", msg);
        }
        assert_int_equal(r, 0);
        return c;
}

static const struct cfg_listener_ref *find(const struct cfg_listener_ref *refs, size_t n,
                                           const char *text)
{
        size_t i;

        for (i = 0; i < n; i++)
                if (strcmp(refs[i].addr->text, text) == 0)
                        return &refs[i];
        return NULL;
}

static void test_diff(void **state)
{
        struct cfg *old_cfg = load("routes = (\n"
                                   " { name = \"a\"; listen = [ \"127.0.0.1:80\", \"unix:@gone\", "
                                   "\"systemd:s\" ]; upstreams = [ \"127.0.0.1:1\" ]; },\n"
                                   " { name = \"b\"; listen = [ \"[::1]:80\", \"*:90\" ]; "
                                   "upstreams = [ \"127.0.0.1:1\" ]; }\n);\n");
        struct cfg *new_cfg = load("routes = (\n"
                                   " { name = \"b\"; listen = [ \"[0::1]:80\", \"unix:/new\" ]; "
                                   "upstreams = [ \"127.0.0.1:2\" ]; },\n"
                                   " { name = \"c\"; listen = [ \"systemd:s\", \"[::]:90\", "
                                   "\"localhost:80\" ]; upstreams = [ \"127.0.0.1:1\" ]; }\n);\n");
        const struct cfg_listener_ref *o, *n;
        struct cfg_diff d;
        size_t i;

        assert_int_equal(cfg_diff_listeners(old_cfg, new_cfg, &d), 0);
        assert_int_equal(d.n_kept, 3);
        for (i = 0; i < d.n_kept; i++) {
                assert_true(cfg_addr_equal(d.kept_old[i].addr, d.kept_new[i].addr));
                assert_ptr_equal(
                    d.kept_old[i].addr,
                    &old_cfg->routes[d.kept_old[i].route_index].listen[d.kept_old[i].listen_index]);
                assert_ptr_equal(d.kept_new[i].route, &new_cfg->routes[d.kept_new[i].route_index]);
        }
        /* 127.0.0.1:80 moved from route a to route c under another spelling. */
        o = find(d.kept_old, d.n_kept, "127.0.0.1:80");
        assert_non_null(o);
        n = &d.kept_new[o - d.kept_old];
        assert_string_equal(n->addr->text, "localhost:80");
        assert_string_equal(n->route->name, "c");
        assert_int_equal(n->route_index, 1);
        assert_int_equal(n->listen_index, 2);
        assert_string_equal(o->route->name, "a");
        o = find(d.kept_old, d.n_kept, "[::1]:80");
        assert_non_null(o);
        assert_string_equal(d.kept_new[o - d.kept_old].addr->text, "[0::1]:80");
        assert_non_null(find(d.kept_old, d.n_kept, "systemd:s"));

        /* "*:90" and "[::]:90" differ in IPV6_V6ONLY, so the socket is replaced. */
        assert_int_equal(d.n_added, 2);
        assert_non_null(find(d.added, d.n_added, "unix:/new"));
        assert_non_null(find(d.added, d.n_added, "[::]:90"));
        assert_int_equal(d.n_removed, 2);
        assert_non_null(find(d.removed, d.n_removed, "unix:@gone"));
        n = find(d.removed, d.n_removed, "*:90");
        assert_non_null(n);
        assert_string_equal(n->route->name, "b");
        assert_int_equal(n->route_index, 1);
        assert_int_equal(n->listen_index, 1);
        cfg_diff_free(&d);
        assert_null(d.added);
        assert_int_equal(d.n_kept, 0);
        cfg_diff_free(&d);
        cfg_diff_free(NULL);

        /* Identity: everything kept. From nothing: everything added. */
        assert_int_equal(cfg_diff_listeners(new_cfg, new_cfg, &d), 0);
        assert_int_equal(d.n_kept, 5);
        assert_int_equal(d.n_added + d.n_removed, 0);
        cfg_diff_free(&d);
        assert_int_equal(cfg_diff_listeners(NULL, old_cfg, &d), 0);
        assert_int_equal(d.n_added, 5);
        assert_int_equal(d.n_kept + d.n_removed, 0);
        cfg_diff_free(&d);
        cfg_free(old_cfg);
        cfg_free(new_cfg);
}

const struct CMUnitTest diff_tests[] = {
    cmocka_unit_test(test_diff),
};
const size_t n_diff_tests = sizeof(diff_tests) / sizeof(diff_tests[0]);
