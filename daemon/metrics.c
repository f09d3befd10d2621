/* The exposition. Every family is written whole (HELP, TYPE, then its samples), as the text
 * format requires. Names: evproxy_driver_{registered_fds,deregistered_fds,ready_events}_total,
 * evproxy_connections_active, evproxy_route_connections_{accepted_total,active},
 * evproxy_route_connections_refused_total{reason="acl|limit|proxy_header"},
 * evproxy_route_upstream_connect_failures_total, evproxy_route_{received,sent}_bytes_total,
 * evproxy_upstream_{up,connections_active,connect_failures_total},
 * evproxy_pipe_memory_{limit_bytes,bytes{state="in_use|pooled"}}, evproxy_pipes{state=...},
 * evproxy_pipe_fallbacks_total{reason="budget|error"}, evproxy_pipes_shrunk_total.
 * evproxy_upstream_admin_state{state="ready|drain|maint"},
 * evproxy_handover_resumed_{connections,bytes}_total. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <evproxy/driver.h>

#include "admin_proto.h"
#include "conn_inspect.h"
#include "daemon.h"
#include "dns.h"
#include "gen.h"
#include "metrics.h"
#include "server_set.h"
#include "upstream.h"
#include "worker.h"

#define MBUF_MAX (64u << 20) /* the exposition of a sane configuration is far below this */

void mbuf_printf(struct mbuf *b, const char *fmt, ...)
{
        va_list ap;
        int n;

        for (int tries = 0; tries < 2 && !b->failed; tries++) {
                size_t room = b->cap - b->len;

                va_start(ap, fmt);
                n = vsnprintf(b->data ? b->data + b->len : NULL, room, fmt, ap);
                va_end(ap);
                if (n < 0) {
                        b->failed = true;
                        return;
                }
                if ((size_t)n < room) {
                        b->len += (size_t)n;
                        return;
                }
                size_t cap = b->cap ? b->cap : 4096;
                while (cap < b->len + (size_t)n + 1)
                        cap *= 2;
                char *p = cap > MBUF_MAX ? NULL : realloc(b->data, cap);
                if (!p) {
                        b->failed = true;
                        return;
                }
                b->data = p;
                b->cap = cap;
        }
}

void mbuf_free(struct mbuf *b)
{
        free(b->data);
        *b = (struct mbuf){0};
}

void metrics_label_value(struct mbuf *b, const char *v)
{
        for (; *v; v++) {
                if (*v == '\\' || *v == '"')
                        mbuf_printf(b, "\\%c", *v);
                else if (*v == '\n')
                        mbuf_printf(b, "\\n");
                else
                        mbuf_printf(b, "%c", *v);
        }
}

static void family(struct mbuf *b, const char *name, const char *type, const char *help)
{
        mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void driver_families(struct daemon *d, struct mbuf *b)
{
        struct evio_driver_metrics sum = {0}, m;

        evio_handle_metrics(evio_driver_handle(d->drv), &sum);
        for (unsigned i = 0; d->workers && i < d->n_workers; i++) {
                if (!d->workers[i])
                        continue;
                worker_driver_metrics(d->workers[i], &m);
                sum.registered_count += m.registered_count;
                sum.deregistered_count += m.deregistered_count;
                sum.ready_count += m.ready_count;
        }
        family(b, "evproxy_driver_registered_fds_total", "counter",
               "File descriptors ever registered with the I/O drivers (all threads).");
        mbuf_printf(b, "evproxy_driver_registered_fds_total %llu\n",
                    (unsigned long long)sum.registered_count);
        family(b, "evproxy_driver_deregistered_fds_total", "counter",
               "File descriptors ever deregistered from the I/O drivers (all threads).");
        mbuf_printf(b, "evproxy_driver_deregistered_fds_total %llu\n",
                    (unsigned long long)sum.deregistered_count);
        family(b, "evproxy_driver_ready_events_total", "counter",
               "Readiness events the I/O drivers delivered (all threads).");
        mbuf_printf(b, "evproxy_driver_ready_events_total %llu\n",
                    (unsigned long long)sum.ready_count);
        family(b, "evproxy_connections_active", "gauge", "Open client connections, all routes.");
        mbuf_printf(b, "evproxy_connections_active %u\n", atomic_load(&d->shared.active));
}

/* Per worker: how evenly SO_REUSEPORT spreads new connections over the workers. */
static void worker_families(struct daemon *d, struct mbuf *b)
{
        if (!d->workers || d->n_workers == 0)
                return; /* a family is written with its samples or not at all */
        family(b, "evproxy_worker_accepted_total", "counter",
               "Client connections each worker accepted, all routes.");
        for (unsigned i = 0; d->workers && i < d->n_workers; i++)
                if (d->workers[i])
                        mbuf_printf(b, "evproxy_worker_accepted_total{worker=\"%u\"} %llu\n", i,
                                    (unsigned long long)worker_accepted(d->workers[i]));
}

static void gauge_states(struct mbuf *b, const char *name, unsigned long long total,
                         unsigned long long in_use)
{
        /* Two atomics read one after the other: clamp what a race may skew. */
        if (in_use > total)
                in_use = total;
        mbuf_printf(b, "%s{state=\"in_use\"} %llu\n%s{state=\"pooled\"} %llu\n", name, in_use, name,
                    total - in_use);
}

/* The daemon-wide pipe budget (pool.h): pipe_memory and what the workers' pipes take of it. */
static void pipe_families(struct daemon *d, struct mbuf *b)
{
        struct pipe_budget *pb = &d->shared.pipe_budget;

        family(b, "evproxy_pipe_memory_limit_bytes", "gauge",
               "The pipe_memory budget: bytes all splice pipes together may hold.");
        mbuf_printf(b, "evproxy_pipe_memory_limit_bytes %zu\n", atomic_load(&pb->limit));
        family(b, "evproxy_pipe_memory_bytes", "gauge",
               "Capacity of the open splice pipes, held by connections (in_use) or kept by the "
               "workers for reuse (pooled); counted against pipe_memory.");
        gauge_states(b, "evproxy_pipe_memory_bytes", atomic_load(&pb->bytes),
                     atomic_load(&pb->bytes_in_use));
        family(b, "evproxy_pipes", "gauge", "Open splice pipes (pairs of fds).");
        gauge_states(b, "evproxy_pipes", atomic_load(&pb->pipes), atomic_load(&pb->pipes_in_use));
        family(b, "evproxy_pipe_fallbacks_total", "counter",
               "Times a direction that wanted a pipe copied instead: pipe_memory spent (budget), "
               "or no pipe could be made (error).");
        mbuf_printf(b, "evproxy_pipe_fallbacks_total{reason=\"budget\"} %llu\n",
                    (unsigned long long)atomic_load(&pb->refused));
        mbuf_printf(b, "evproxy_pipe_fallbacks_total{reason=\"error\"} %llu\n",
                    (unsigned long long)atomic_load(&pb->failed));
        family(
            b, "evproxy_pipes_shrunk_total", "counter",
            "Pipes the kernel made smaller than asked (per-user pipe limits); used as they are.");
        mbuf_printf(b, "evproxy_pipes_shrunk_total %llu\n",
                    (unsigned long long)atomic_load(&pb->shrunk));
}

/* What this process took over at start (issue 18, handover.h). */
static void handover_families(struct daemon *d, struct mbuf *b)
{
        family(b, "evproxy_handover_resumed_connections_total", "counter",
               "Connections this process took over from its predecessor and resumed.");
        mbuf_printf(b, "evproxy_handover_resumed_connections_total %llu\n",
                    (unsigned long long)atomic_load(&d->shared.handover_resumed));
        family(b, "evproxy_handover_resumed_bytes_total", "counter",
               "Bytes in flight in the connections this process took over.");
        mbuf_printf(b, "evproxy_handover_resumed_bytes_total %llu\n",
                    (unsigned long long)atomic_load(&d->shared.handover_resumed_bytes));
}

enum route_field { RF_ACCEPTED, RF_ACTIVE, RF_ACL, RF_LIMIT, RF_PROXY, RF_FAILURES, RF_IN, RF_OUT };

static unsigned long long route_value(const struct route_stats *st, enum route_field f)
{
        switch (f) {
        case RF_ACCEPTED:
                return atomic_load(&st->accepted);
        case RF_ACTIVE:
                return atomic_load(&st->active);
        case RF_ACL:
                return atomic_load(&st->refused_acl);
        case RF_LIMIT:
                return atomic_load(&st->refused_limit);
        case RF_PROXY:
                return atomic_load(&st->bad_proxy_header);
        case RF_FAILURES:
                return atomic_load(&st->connect_failures);
        case RF_IN:
                return atomic_load(&st->bytes_in);
        case RF_OUT:
                return atomic_load(&st->bytes_out);
        }
        return 0;
}

/* One sample per route; extra is more labels (",reason=\"acl\"") or "". */
static void route_samples(struct mbuf *b, const struct gen *g, const char *name, const char *extra,
                          enum route_field f)
{
        for (size_t i = 0; i < g->n_routes; i++) {
                mbuf_printf(b, "%s{route=\"", name);
                metrics_label_value(b, g->routes[i].cfg->name);
                mbuf_printf(b, "\"%s} %llu\n", extra, route_value(g->routes[i].st, f));
        }
}

static void route_families(struct mbuf *b, const struct gen *g)
{
        const char *refused = "evproxy_route_connections_refused_total";

        family(b, "evproxy_route_connections_accepted_total", "counter",
               "Client connections accepted on the route's listeners.");
        route_samples(b, g, "evproxy_route_connections_accepted_total", "", RF_ACCEPTED);
        family(b, "evproxy_route_connections_active", "gauge", "Open client connections.");
        route_samples(b, g, "evproxy_route_connections_active", "", RF_ACTIVE);
        family(b, refused, "counter",
               "Client connections closed before reaching an upstream: denied by allow/deny "
               "(acl), over a connection limit (limit), bad or late PROXY header "
               "(proxy_header).");
        route_samples(b, g, refused, ",reason=\"acl\"", RF_ACL);
        route_samples(b, g, refused, ",reason=\"limit\"", RF_LIMIT);
        route_samples(b, g, refused, ",reason=\"proxy_header\"", RF_PROXY);
        family(b, "evproxy_route_upstream_connect_failures_total", "counter",
               "Failed or timed-out connects to the route's upstream servers.");
        route_samples(b, g, "evproxy_route_upstream_connect_failures_total", "", RF_FAILURES);
        family(b, "evproxy_route_received_bytes_total", "counter",
               "Bytes received from clients and forwarded upstream.");
        route_samples(b, g, "evproxy_route_received_bytes_total", "", RF_IN);
        family(b, "evproxy_route_sent_bytes_total", "counter",
               "Bytes received from upstream servers and sent to clients.");
        route_samples(b, g, "evproxy_route_sent_bytes_total", "", RF_OUT);
}

enum server_field { SF_UP, SF_ACTIVE, SF_FAILURES };

static void server_samples(struct mbuf *b, const struct gen *g, const char *name,
                           enum server_field f)
{
        for (size_t i = 0; i < g->n_routes; i++) {
                const struct route *r = &g->routes[i];

                struct server_set *set = route_set_get(r);

                for (size_t j = 0; j < set->n; j++) {
                        const struct upstream_server *s = set->e[j].srv;
                        unsigned long long v = f == SF_UP       ? !atomic_load(&s->down)
                                               : f == SF_ACTIVE ? atomic_load(&s->active)
                                                                : atomic_load(&s->connect_failures);

                        mbuf_printf(b, "%s{route=\"", name);
                        metrics_label_value(b, r->cfg->name);
                        mbuf_printf(b, "\",upstream=\"");
                        metrics_label_value(b, set->e[j].addr.text);
                        mbuf_printf(b, "\"} %llu\n", v);
                }
                server_set_unref(set);
        }
}

/* One sample per server and admin state: 1 for the state it is in (evproxyctl drain/maint). */
static void admin_state_samples(struct mbuf *b, const struct gen *g)
{
        static const char *const name = "evproxy_upstream_admin_state";

        family(b, name, "gauge",
               "1 for the upstream server's admin state (ready, drain or maint), 0 for the "
               "others.");
        for (size_t i = 0; i < g->n_routes; i++) {
                const struct route *r = &g->routes[i];

                struct server_set *set = route_set_get(r);

                for (size_t j = 0; j < set->n; j++) {
                        unsigned st = atomic_load(&set->e[j].srv->admin);

                        for (unsigned k = ADMIN_STATE_READY; k <= ADMIN_STATE_MAINT; k++) {
                                mbuf_printf(b, "%s{route=\"", name);
                                metrics_label_value(b, r->cfg->name);
                                mbuf_printf(b, "\",upstream=\"");
                                metrics_label_value(b, set->e[j].addr.text);
                                mbuf_printf(b, "\",state=\"%s\"} %d\n",
                                            admin_state_name((enum admin_state)k), st == k);
                        }
                }
                server_set_unref(set);
        }
}

int metrics_format(struct daemon *d, struct mbuf *out)
{
        const struct gen *g = d->gen;

        driver_families(d, out);
        worker_families(d, out);
        pipe_families(d, out);
        handover_families(d, out);
        if (g) {
                route_families(out, g);
                family(out, "evproxy_upstream_up", "gauge",
                       "1 if the upstream server is in use, 0 while health skips it.");
                server_samples(out, g, "evproxy_upstream_up", SF_UP);
                family(out, "evproxy_upstream_connections_active", "gauge",
                       "Client connections assigned to the upstream server (connecting or "
                       "open).");
                server_samples(out, g, "evproxy_upstream_connections_active", SF_ACTIVE);
                family(out, "evproxy_upstream_connect_failures_total", "counter",
                       "Failed or timed-out connects to the upstream server.");
                server_samples(out, g, "evproxy_upstream_connect_failures_total", SF_FAILURES);
                admin_state_samples(out, g);
                metrics_queue_families(out, g);
        }
        dns_metrics(d, out);             /* issue 14: evproxy_resolver_* */
        metrics_policy_families(d, out); /* issue 16: metrics_policy.c */
        conn_inspect_metrics(out, g);
        return out->failed ? -ENOMEM : 0;
}
