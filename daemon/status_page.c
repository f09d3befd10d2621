/* The status page's answers (status_page.h): the embedded files as they are, and status.json
 * built with jansson from the current generation through status_data.c, the same objects the
 * admin socket's status and servers commands answer with. */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "daemon.h"
#include "gen.h"
#include "route.h"
#include "status_assets.h"
#include "server_set.h"
#include "status_data.h"
#include "status_page.h"

/* Add o's counters to totals (refused: every refusal reason). 0 or -ENOMEM. */
static int add_totals(json_t *totals, const json_t *o)
{
        static const struct {
                const char *total, *from;
        } sums[] = {
            {"accepted", "accepted"},
            {"connect_failures", "connect_failures"},
            {"bytes_in", "bytes_in"},
            {"bytes_out", "bytes_out"},
            {"refused", "refused_acl"},
            {"refused", "refused_limit"},
            {"refused", "bad_proxy_header"},
            {"refused", "refused_client_limit"},
            {"refused", "rate_limited"},
            {"no_server", "no_server"},
            {"queued", "queued"},
        };

        for (size_t i = 0; i < sizeof(sums) / sizeof(sums[0]); i++) {
                json_int_t v = json_integer_value(json_object_get(totals, sums[i].total)) +
                               json_integer_value(json_object_get(o, sums[i].from));

                if (json_object_set_new(totals, sums[i].total, json_integer(v)) != 0)
                        return -ENOMEM;
        }
        return 0;
}

/* A route's object with its servers under "upstreams"; its counters are added to totals. */
static json_t *route_with_servers(const struct route *r, json_t *totals)
{
        json_t *o = status_route_json(r), *list = json_array();
        struct server_set *set = route_set_get(r);
        bool failed = false;

        for (size_t i = 0; !failed && o && list && i < set->n; i++)
                failed = json_array_append_new(list, status_server_json(r, &set->e[i])) != 0;
        server_set_unref(set);
        if (!o || !list || failed)
                goto err;
        if (json_object_set(o, "upstreams", list) != 0 || add_totals(totals, o) < 0)
                goto err;
        json_decref(list);
        return o;
err:
        json_decref(list);
        json_decref(o);
        return NULL;
}

json_t *status_json(struct daemon *d, uint64_t uptime_ms)
{
        const struct gen *g = d->gen;
        json_t *routes = json_array(), *totals, *root;

        totals = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "active",
                           (json_int_t)atomic_load(&d->shared.active), "accepted", (json_int_t)0,
                           "refused", (json_int_t)0, "connect_failures", (json_int_t)0, "bytes_in",
                           (json_int_t)0, "bytes_out", (json_int_t)0);
        for (size_t i = 0; routes && totals && g && i < g->n_routes; i++) {
                if (json_array_append_new(routes, route_with_servers(&g->routes[i], totals)) != 0)
                        goto err;
        }
        if (!routes || !totals)
                goto err;
        root = json_pack("{s:s, s:s, s:i, s:I, s:o, s:o}", "version", EVPROXY_VERSION, "phase",
                         status_phase_name(d->phase), "workers", (int)d->n_workers, "uptime_ms",
                         (json_int_t)uptime_ms, "totals", totals, "routes", routes);
        return root; /* "o" consumed totals and routes, even on failure */
err:
        json_decref(routes);
        json_decref(totals);
        return NULL;
}

static void append_asset(struct mbuf *body, const unsigned char *data, size_t len)
{
        mbuf_printf(body, "%.*s", (int)len, (const char *)data);
}

int status_page_body(struct daemon *d, enum mhttp_target t, uint64_t uptime_ms, struct mbuf *body,
                     const char **type)
{
        json_t *root;
        char *text;

        switch (t) {
        case MHTTP_STATUS_HTML:
                *type = "text/html; charset=utf-8";
                append_asset(body, status_asset_html, status_asset_html_len);
                break;
        case MHTTP_STATUS_JS:
                *type = "text/javascript; charset=utf-8";
                append_asset(body, status_asset_js, status_asset_js_len);
                break;
        case MHTTP_STATUS_CSS:
                *type = "text/css; charset=utf-8";
                append_asset(body, status_asset_css, status_asset_css_len);
                break;
        case MHTTP_METRICS: /* metrics_server.c answers it */
                return -EINVAL;
        case MHTTP_STATUS_JSON:
                *type = "application/json";
                root = status_json(d, uptime_ms);
                text = root ? json_dumps(root, JSON_COMPACT) : NULL;
                json_decref(root);
                if (!text)
                        return -ENOMEM;
                mbuf_printf(body, "%s\n", text);
                free(text);
                break;
        }
        return body->failed ? -ENOMEM : 0;
}
