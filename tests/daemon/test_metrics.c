/* Metrics: the exposition of a real generation (families whole, HELP and TYPE before samples,
 * labels escaped, values from the counters) and the endpoint's HTTP request parser (complete,
 * partial, 404/405/400/505, bare LF, oversize). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <evproxy/config.h>
#include <evproxy/driver.h>

#include "daemon.h"
#include "gen.h"
#include "metrics.h"
#include "metrics_http.h"
#include "server_set.h"
#include "upstream.h"

static int parse(const char *s, struct mhttp_request *req)
{
        return mhttp_parse(s, strlen(s), req);
}

static void test_http_ok(void **state)
{
        struct mhttp_request req;
        const char *s = "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n";

        assert_int_equal(parse(s, &req), (int)strlen(s));
        assert_int_equal(req.status, 200);
        assert_int_equal(req.minor, 1);
        assert_int_equal(parse("GET /metrics?name[]=x HTTP/1.0\n\n", &req), 32);
        assert_int_equal(req.status, 200);
        assert_int_equal(req.minor, 0);
}

/* The status page's paths (status_page.h), with or without a query string. */
static void test_http_targets(void **state)
{
        struct mhttp_request req;
        static const struct {
                const char *req;
                enum mhttp_target target;
        } cases[] = {
            {"GET /metrics HTTP/1.1\r\n\r\n", MHTTP_METRICS},
            {"GET / HTTP/1.1\r\n\r\n", MHTTP_STATUS_HTML},
            {"GET /?refresh=1 HTTP/1.0\r\n\r\n", MHTTP_STATUS_HTML},
            {"GET /status.js HTTP/1.1\r\n\r\n", MHTTP_STATUS_JS},
            {"GET /status.css HTTP/1.1\r\n\r\n", MHTTP_STATUS_CSS},
            {"GET /status.json HTTP/1.1\r\n\r\n", MHTTP_STATUS_JSON},
            {"GET /status.json?t=12 HTTP/1.1\r\n\r\n", MHTTP_STATUS_JSON},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                req.target = (enum mhttp_target) - 1;
                assert_int_equal(parse(cases[i].req, &req), (int)strlen(cases[i].req));
                assert_int_equal(req.status, 200);
                assert_int_equal(req.target, cases[i].target);
        }
}

static void test_http_partial(void **state)
{
        struct mhttp_request req;
        const char *s = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";

        for (size_t n = 0; n < strlen(s); n++)
                assert_int_equal(mhttp_parse(s, n, &req), 0);
}

static void test_http_errors(void **state)
{
        struct mhttp_request req;
        static const struct {
                const char *req;
                int status;
        } cases[] = {
            {"GET /index.html HTTP/1.1\r\n\r\n", 404},
            {"GET /status HTTP/1.1\r\n\r\n", 404},
            {"GET /status.jsx HTTP/1.1\r\n\r\n", 404},
            {"GET //status.js HTTP/1.1\r\n\r\n", 404},
            {"HEAD / HTTP/1.1\r\n\r\n", 405},
            {"GET /metricsx HTTP/1.1\r\n\r\n", 404},
            {"GET /metric HTTP/1.1\r\n\r\n", 404},
            {"POST /metrics HTTP/1.1\r\n\r\n", 405},
            {"get /metrics HTTP/1.1\r\n\r\n", 405},
            {"GET /metrics HTTP/2.0\r\n\r\n", 505},
            {"GET /metrics HTTP/1.1 \r\n\r\n", 400},
            {"GET  /metrics HTTP/1.1\r\n\r\n", 400},
            {"GET /metrics\r\n\r\n", 400},
            {"\r\n\r\n", 400},
            {"GET /metrics FTP/1.1\r\n\r\n", 400},
            {"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n", 400},
            {"GET /metrics HTTP/1.1\r\n: empty name\r\n\r\n", 400},
            {"GET /metrics HTTP/1.1\r\nA: b\x01\r\n\r\n", 400},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int n = parse(cases[i].req, &req);
                assert_true(n > 0 && (size_t)n <= strlen(cases[i].req));
                assert_int_equal(req.status, cases[i].status);
        }
        /* A bad request line is answered without waiting for the rest. */
        assert_int_equal(parse("BLAH\r\n", &req), 6);
        assert_int_equal(req.status, 400);
}

static void test_http_oversize(void **state)
{
        struct mhttp_request req;
        size_t n = MHTTP_MAX_REQUEST + 10;
        char *big = malloc(n);

        assert_non_null(big);
        memset(big, 'a', n);
        memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
        assert_int_equal(mhttp_parse(big, MHTTP_MAX_REQUEST - 1, &req), 0);
        assert_int_equal(mhttp_parse(big, MHTTP_MAX_REQUEST, &req), -EMSGSIZE);
        assert_int_equal(mhttp_parse(big, n, &req), -EMSGSIZE);
        /* A head ending just past the limit is still too big. */
        memcpy(big + MHTTP_MAX_REQUEST - 2, "\r\n\r\n", 4);
        assert_int_equal(mhttp_parse(big, MHTTP_MAX_REQUEST + 2, &req), -EMSGSIZE);
        free(big);
}

static void test_label_escaping(void **state)
{
        struct mbuf b = {0};

        metrics_label_value(&b, "unix:/a\"b\\c\nd");
        assert_false(b.failed);
        assert_string_equal(b.data, "unix:/a\\\"b\\\\c\\nd");
        mbuf_free(&b);
}

static long value_of(const char *text, const char *sample)
{
        const char *p = strstr(text, sample);

        assert_non_null(p);
        return strtol(p + strlen(sample), NULL, 10);
}

static void test_exposition(void **state)
{
        struct daemon d;
        struct cfg *c = NULL;
        struct mbuf b = {0};
        struct route *r;

        memset(&d, 0, sizeof(d));
        assert_int_equal(cfg_load_string("routes = ({ name = \"web\"; listen = [\"127.0.0.1:1\"]; "
                                         "upstreams = [\"127.0.0.1:2\", \"unix:/run/a b\"]; });",
                                         NULL, &c, NULL),
                         0);
        assert_int_equal(gen_new(c, NULL, &d.gen), 0);
        assert_int_equal(evio_driver_new(&d.drv, NULL), 0);
        r = &d.gen->routes[0];
        atomic_store(&r->st->accepted, 7);
        atomic_store(&r->st->refused_acl, 2);
        atomic_store(&r->st->bytes_in, 12345678901ull);
        atomic_store(&r->set->e[1].srv->down, true);
        atomic_store(&r->set->e[0].srv->active, 3);
        assert_int_equal(metrics_format(&d, &b), 0);
        assert_non_null(b.data);
        b.data[b.len] = 0;
        assert_int_equal(
            value_of(b.data, "\nevproxy_route_connections_accepted_total{route=\"web\"} "), 7);
        assert_int_equal(value_of(b.data, "{route=\"web\",reason=\"acl\"} "), 2);
        assert_int_equal(value_of(b.data, "{route=\"web\",reason=\"limit\"} "), 0);
        assert_non_null(
            strstr(b.data, "evproxy_route_received_bytes_total{route=\"web\"} 12345678901\n"));
        assert_non_null(
            strstr(b.data, "evproxy_upstream_up{route=\"web\",upstream=\"127.0.0.1:2\"} 1\n"));
        assert_non_null(
            strstr(b.data, "evproxy_upstream_up{route=\"web\",upstream=\"unix:/run/a b\"} 0\n"));
        assert_non_null(strstr(
            b.data,
            "evproxy_upstream_connections_active{route=\"web\",upstream=\"127.0.0.1:2\"} 3\n"));
        assert_non_null(strstr(b.data, "# TYPE evproxy_driver_ready_events_total counter\n"));
        /* Each family: HELP then TYPE, once, before its first sample. */
        for (char *line = b.data; *line;) {
                char *nl = strchr(line, '\n');
                assert_non_null(nl);
                if (strncmp(line, "# TYPE ", 7) == 0) {
                        char name[128];
                        size_t n = (size_t)(strchr(line + 7, ' ') - (line + 7));
                        memcpy(name, line + 7, n);
                        name[n] = 0;
                        assert_true(strncmp(nl + 1, name, n) == 0);
                        assert_true(nl[1 + n] == ' ' || nl[1 + n] == '{');
                }
                line = nl + 1;
        }
        mbuf_free(&b);
        evio_driver_free(d.drv);
        gen_unref(d.gen);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_http_ok),       cmocka_unit_test(test_http_targets),
            cmocka_unit_test(test_http_partial),  cmocka_unit_test(test_http_errors),
            cmocka_unit_test(test_http_oversize), cmocka_unit_test(test_label_escaping),
            cmocka_unit_test(test_exposition),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
