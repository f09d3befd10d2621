/* A route at run time: its counters and its upstream servers' state. Both are shared by every
 * configuration generation that has a route of the same name (and, for a server, the same
 * address), so health, failure counts, limits and active connections stay exact across reloads. */
#ifndef EVPROXYD_ROUTE_H
#define EVPROXYD_ROUTE_H

#include <stdatomic.h>
#include <stddef.h>

#include <evproxy/config.h>

#include "balance.h"

struct upstream_server;

/* Counters of a route, shared by every worker and by every configuration generation that has
 * a route of this name: a reload hands them on, so limits and metrics stay exact while
 * connections accepted under the old configuration finish. Put new per-route counters here. */
struct route_stats {
        char name[CFG_ROUTE_NAME_MAX + 1];
        atomic_uint refs;
        atomic_uint active;  /* open client connections */
        atomic_uint rr_next; /* round-robin cursor */
        atomic_uint_least64_t accepted;
        atomic_uint_least64_t refused_limit;
        atomic_uint_least64_t connect_failures;
        atomic_uint_least64_t refused_acl;      /* closed by allow/deny (end=denied) */
        atomic_uint_least64_t bad_proxy_header; /* end=bad_proxy_header or proxy_timeout */
        atomic_uint_least64_t bytes_in;         /* client -> upstream, forwarded */
        atomic_uint_least64_t bytes_out;        /* upstream -> client */
        atomic_uint queued;                     /* clients waiting for a server (conn_queue.h) */
        atomic_uint_least64_t queue_timeouts;   /* waited queue_timeout for nothing */
        atomic_uint_least64_t queue_full;       /* could not wait: queue_size reached */
};

/* A route of one configuration generation (see gen.h). */
struct route {
        const struct cfg_route *cfg;
        struct route_stats *st;
        struct upstream_server **servers; /* like cfg->upstreams; shared by generations (route.h) */
        struct balance_state bal;         /* this generation's balancing state (balance.h) */
};

/* Give r (its cfg set) one server state per upstream: the one of the same address in the
 * route of the same name among prev[0..n_prev) (a reference), or a new one (up, idle).
 * 0 or -ENOMEM (then r holds nothing). */
int route_servers_init(struct route *r, const struct route *prev, size_t n_prev);
/* Drop r's references. Accepts a route whose servers were never set up. */
void route_servers_free(struct route *r);

#endif
