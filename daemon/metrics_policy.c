/* The traffic policy's metrics (issue 16): per route, connections refused by the per-client
 * limits (evproxy_route_refused_client_limit_total, evproxy_route_rate_limited_total); daemon
 * wide, the per-client table (evproxy_client_table_{capacity,entries}, _full_total). */
#include <stdatomic.h>
#include <stddef.h>

#include "client_limit.h"
#include "daemon.h"
#include "gen.h"
#include "metrics.h"

static void family(struct mbuf *b, const char *name, const char *type, const char *help)
{
        mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void route_counter(struct mbuf *b, const struct gen *g, const char *name, size_t offset)
{
        for (size_t i = 0; i < g->n_routes; i++) {
                const atomic_uint_least64_t *v =
                    (const atomic_uint_least64_t *)((const char *)g->routes[i].st + offset);

                mbuf_printf(b, "%s{route=\"", name);
                metrics_label_value(b, g->routes[i].cfg->name);
                mbuf_printf(b, "\"} %llu\n", (unsigned long long)atomic_load(v));
        }
}

void metrics_policy_families(struct daemon *d, struct mbuf *b)
{
        struct client_table_stats st;
        const struct gen *g = d->gen;

        if (g) {
                family(b, "evproxy_route_refused_client_limit_total", "counter",
                       "Connections closed because their client had max_connections_per_client "
                       "open (end=client_limit).");
                route_counter(b, g, "evproxy_route_refused_client_limit_total",
                              offsetof(struct route_stats, refused_client_limit));
                family(b, "evproxy_route_rate_limited_total", "counter",
                       "Connections closed because their client exceeded client_rate "
                       "(end=rate_limited).");
                route_counter(b, g, "evproxy_route_rate_limited_total",
                              offsetof(struct route_stats, rate_limited));
                family(b, "evproxy_route_throttled_total", "counter",
                       "Times a direction of a connection waited for bandwidth tokens (rate, "
                       "route_rate).");
                route_counter(b, g, "evproxy_route_throttled_total",
                              offsetof(struct route_stats, throttled));
        }
        if (!d->shared.clients)
                return;
        client_table_stats(d->shared.clients, &st);
        family(b, "evproxy_client_table_capacity", "gauge",
               "Entries the per-client table can hold (client_table_size).");
        mbuf_printf(b, "evproxy_client_table_capacity %zu\n", st.capacity);
        family(b, "evproxy_client_table_entries", "gauge",
               "Clients in the per-client table (idle ones linger until their slot is reused).");
        mbuf_printf(b, "evproxy_client_table_entries %zu\n", st.entries);
        family(b, "evproxy_client_table_full_total", "counter",
               "New clients let through unlimited because the per-client table had no room.");
        mbuf_printf(b, "evproxy_client_table_full_total %llu\n", (unsigned long long)st.full);
}
