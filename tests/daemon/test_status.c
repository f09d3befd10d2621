/* The status page's data and files (status_page.h): /status.json of a real generation (totals,
 * routes, servers with their admin state and health, counters), the embedded files served as
 * they are with their types, and the page written for the strict CSP (no inline script, style
 * or event handler, nothing loaded from elsewhere). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <evproxy/config.h>

#include "admin_proto.h"
#include "daemon.h"
#include "gen.h"
#include "route.h"
#include "server_set.h"
#include "status_assets.h"
#include "status_page.h"
#include "upstream.h"

static const char *conf = "routes = ({ name = \"web\"; listen = [\"127.0.0.1:1\"]; "
                          "upstreams = [\"127.0.0.1:2\", \"unix:/run/a b\"]; },"
                          "{ name = \"api\"; listen = [\"127.0.0.1:3\"]; "
                          "upstreams = [\"127.0.0.1:4\"]; });";

static void setup_daemon(struct daemon *d)
{
        struct cfg *c = NULL;

        memset(d, 0, sizeof(*d));
        assert_int_equal(cfg_load_string(conf, NULL, &c, NULL), 0);
        assert_int_equal(gen_new(c, NULL, &d->gen), 0);
        d->n_workers = 3;
}

static json_int_t int_at(json_t *o, const char *key)
{
        json_t *v = json_object_get(o, key);

        assert_non_null(v);
        assert_true(json_is_integer(v));
        return json_integer_value(v);
}

static const char *str_at(json_t *o, const char *key)
{
        json_t *v = json_object_get(o, key);

        assert_non_null(v);
        assert_true(json_is_string(v));
        return json_string_value(v);
}

/* Server i of r's current set (the set stays referenced by the route). */
static struct upstream_server *srv_of(const struct route *r, size_t i)
{
        struct server_set *set = route_set_get(r);
        struct upstream_server *u = set->e[i].srv;

        server_set_unref(set);
        return u;
}

static void test_json(void **state)
{
        struct daemon d;
        struct route *web, *api;
        json_t *root, *routes, *r0, *r1, *s0, *s1;

        setup_daemon(&d);
        web = &d.gen->routes[0];
        api = &d.gen->routes[1];
        atomic_store(&d.shared.active, 4);
        atomic_store(&web->st->accepted, 7);
        atomic_store(&web->st->active, 3);
        atomic_store(&web->st->refused_acl, 2);
        atomic_store(&web->st->refused_limit, 1);
        atomic_store(&web->st->bytes_in, 12345678901ull);
        atomic_store(&web->st->bytes_out, 5);
        atomic_store(&api->st->accepted, 2);
        atomic_store(&api->st->active, 1);
        atomic_store(&api->st->bad_proxy_header, 1);
        atomic_store(&api->st->connect_failures, 6);
        atomic_store(&api->st->bytes_in, 10);
        atomic_store(&srv_of(web, 0)->active, 3);
        atomic_store(&srv_of(web, 0)->connects, 9);
        atomic_store(&srv_of(web, 1)->admin, ADMIN_STATE_DRAIN);
        atomic_store(&srv_of(web, 1)->down, true);
        atomic_store(&srv_of(web, 1)->last_error, -ECONNREFUSED);
        atomic_store(&srv_of(web, 1)->last_error_at, 86400);

        root = status_json(&d, 61500);
        assert_non_null(root);
        assert_string_equal(str_at(root, "version"), EVPROXY_VERSION);
        assert_string_equal(str_at(root, "phase"), "running");
        assert_int_equal(int_at(root, "workers"), 3);
        assert_int_equal(int_at(root, "uptime_ms"), 61500);
        json_t *t = json_object_get(root, "totals");
        assert_int_equal(int_at(t, "active"), 4);
        assert_int_equal(int_at(t, "accepted"), 9);
        assert_int_equal(int_at(t, "refused"), 4);
        assert_int_equal(int_at(t, "connect_failures"), 6);
        assert_int_equal(int_at(t, "bytes_in"), 12345678911ll);
        assert_int_equal(int_at(t, "bytes_out"), 5);

        routes = json_object_get(root, "routes");
        assert_int_equal(json_array_size(routes), 2);
        r0 = json_array_get(routes, 0);
        r1 = json_array_get(routes, 1);
        assert_string_equal(str_at(r0, "name"), "web");
        assert_int_equal(int_at(r0, "accepted"), 7);
        assert_int_equal(int_at(r0, "active"), 3);
        assert_int_equal(int_at(r0, "refused_acl"), 2);
        assert_int_equal(int_at(r0, "bytes_in"), 12345678901ll);
        assert_string_equal(str_at(r1, "name"), "api");
        assert_int_equal(json_array_size(json_object_get(r0, "upstreams")), 2);
        assert_int_equal(json_array_size(json_object_get(r1, "upstreams")), 1);
        s0 = json_array_get(json_object_get(r0, "upstreams"), 0);
        s1 = json_array_get(json_object_get(r0, "upstreams"), 1);
        assert_string_equal(str_at(s0, "server"), "127.0.0.1:2");
        assert_string_equal(str_at(s0, "admin"), "ready");
        assert_string_equal(str_at(s0, "health"), "up");
        assert_int_equal(int_at(s0, "active"), 3);
        assert_int_equal(int_at(s0, "connects"), 9);
        assert_true(json_is_null(json_object_get(s0, "last_error")));
        assert_string_equal(str_at(s1, "server"), "unix:/run/a b");
        assert_string_equal(str_at(s1, "admin"), "drain");
        assert_string_equal(str_at(s1, "health"), "down");
        assert_string_equal(str_at(s1, "state"), "drain");
        assert_string_equal(str_at(s1, "last_error"), strerror(ECONNREFUSED));
        assert_string_equal(str_at(s1, "last_error_time"), "1970-01-02T00:00:00Z");
        json_decref(root);
        gen_unref(d.gen);
}

/* The body of GET target, NUL-terminated, and its type. */
static char *body_of(struct daemon *d, enum mhttp_target t, const char **type)
{
        struct mbuf b = {0};

        assert_int_equal(status_page_body(d, t, 1000, &b, type), 0);
        mbuf_printf(&b, "%s", "");
        assert_false(b.failed);
        return b.data;
}

static void test_bodies(void **state)
{
        struct daemon d;
        const char *type;
        struct mbuf b = {0};
        char *text;
        json_t *j;

        setup_daemon(&d);
        text = body_of(&d, MHTTP_STATUS_HTML, &type);
        assert_string_equal(type, "text/html; charset=utf-8");
        assert_int_equal(strlen(text), status_asset_html_len);
        assert_memory_equal(text, status_asset_html, status_asset_html_len);
        free(text);
        text = body_of(&d, MHTTP_STATUS_JS, &type);
        assert_string_equal(type, "text/javascript; charset=utf-8");
        assert_memory_equal(text, status_asset_js, status_asset_js_len);
        free(text);
        text = body_of(&d, MHTTP_STATUS_CSS, &type);
        assert_string_equal(type, "text/css; charset=utf-8");
        assert_memory_equal(text, status_asset_css, status_asset_css_len);
        free(text);
        text = body_of(&d, MHTTP_STATUS_JSON, &type);
        assert_string_equal(type, "application/json");
        j = json_loads(text, 0, NULL);
        assert_non_null(j);
        assert_int_equal(int_at(j, "uptime_ms"), 1000);
        json_decref(j);
        free(text);
        assert_int_equal(status_page_body(&d, MHTTP_METRICS, 0, &b, &type), -EINVAL);
        mbuf_free(&b);
        gen_unref(d.gen);
}

/* An attribute such as onload="...": inline script that the CSP blocks. */
static bool has_event_handler(const char *html)
{
        for (const char *p = strstr(html, " on"); p; p = strstr(p + 1, " on")) {
                size_t n = strspn(p + 3, "abcdefghijklmnopqrstuvwxyz");

                if (n > 0 && p[3 + n] == '=')
                        return true;
        }
        return false;
}

static void test_page_fits_csp(void **state)
{
        char *html = strndup((const char *)status_asset_html, status_asset_html_len);
        static const char *const forbidden[] = {
            "style=", "javascript:", "http:", "https:", "//", "<style", "data:", "<img", "<iframe",
        };
        const char *p;

        assert_non_null(html);
        for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++)
                if ((p = strstr(html, forbidden[i])))
                        fail_msg("status page has \"%s\": %.40s", forbidden[i], p);
        assert_false(has_event_handler(html));
        /* Every script is a file of the page's own origin. */
        for (p = strstr(html, "<script"); p; p = strstr(p + 1, "<script"))
                assert_true(strncmp(p, "<script src=\"status.js\"", 23) == 0);
        free(html);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_json),
            cmocka_unit_test(test_bodies),
            cmocka_unit_test(test_page_fits_csp),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
