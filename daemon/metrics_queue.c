/* The metric families of server limits and client queues (metrics.h): per route
 * evproxy_route_queued (gauge), evproxy_route_queue_timeouts_total,
 * evproxy_route_queue_full_total and evproxy_route_no_server_total (counters); per server
 * evproxy_upstream_refused_max_total (connections whose choice of a server began while it was at
 * its max_connections). */
#include "gen.h"
#include "metrics.h"
#include "server_set.h"
#include "upstream.h"

static void head(struct mbuf *b, const char *name, const char *type, const char *help)
{
        mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void route_sample(struct mbuf *b, const char *name, const struct route *r,
                         unsigned long long v)
{
        mbuf_printf(b, "%s{route=\"", name);
        metrics_label_value(b, r->cfg->name);
        mbuf_printf(b, "\"} %llu\n", v);
}

void metrics_queue_families(struct mbuf *b, const struct gen *g)
{
        static const char *const queued = "evproxy_route_queued",
                                 *const timeouts = "evproxy_route_queue_timeouts_total",
                                 *const full = "evproxy_route_queue_full_total",
                                 *const no_server = "evproxy_route_no_server_total",
                                 *const refused = "evproxy_upstream_refused_max_total";

        head(b, queued, "gauge", "Clients waiting for a server (queue_timeout).");
        for (size_t i = 0; i < g->n_routes; i++)
                route_sample(b, queued, &g->routes[i], atomic_load(&g->routes[i].st->queued));
        head(b, timeouts, "counter",
             "Queued clients closed after queue_timeout with no server (end=no_server).");
        for (size_t i = 0; i < g->n_routes; i++)
                route_sample(b, timeouts, &g->routes[i],
                             atomic_load(&g->routes[i].st->queue_timeouts));
        head(b, full, "counter",
             "Clients with no server that could not wait: queue_size reached (end=no_server).");
        for (size_t i = 0; i < g->n_routes; i++)
                route_sample(b, full, &g->routes[i], atomic_load(&g->routes[i].st->queue_full));
        head(b, no_server, "counter",
             "Clients closed because no server could take them (end=no_server): the route's "
             "names had no address, or the queue was full or timed out.");
        for (size_t i = 0; i < g->n_routes; i++)
                route_sample(b, no_server, &g->routes[i], atomic_load(&g->routes[i].st->no_server));
        head(b, refused, "counter",
             "Connections that began choosing a server while this one was at its "
             "max_connections, so could not have it.");
        for (size_t i = 0; i < g->n_routes; i++) {
                const struct route *r = &g->routes[i];
                struct server_set *set = route_set_get(r);

                for (size_t j = 0; j < set->n; j++) {
                        mbuf_printf(b, "%s{route=\"", refused);
                        metrics_label_value(b, r->cfg->name);
                        mbuf_printf(b, "\",upstream=\"");
                        metrics_label_value(b, set->e[j].addr.text);
                        mbuf_printf(b, "\"} %llu\n",
                                    (unsigned long long)atomic_load(&set->e[j].srv->refused_max));
                }
                server_set_unref(set);
        }
}
