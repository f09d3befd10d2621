/* A route at run time: its counters and its upstream servers' state. Both are shared by every
 * configuration generation that has a route of the same name (and, for a server, the same
 * address), so health, failure counts, limits and active connections stay exact across reloads. */
#ifndef EVPROXYD_ROUTE_H
#define EVPROXYD_ROUTE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <evproxy/config.h>

#include "ratelimit.h"
#include "balance.h"

struct upstream_server;
struct server_set;
struct evio_driver_task;
struct evio_handle;

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
        atomic_bool dns_refresh;                /* a worker asks: look the names up again */
        atomic_uint_least64_t no_server;        /* clients ended with end=no_server */
        /* Per-client limits (client_limit.h): end=client_limit, end=rate_limited. */
        atomic_uint_least64_t refused_client_limit;
        atomic_uint_least64_t rate_limited;
        /* route_rate (shaper.c): the route's shared buckets, and times a direction waited. */
        struct rl_bucket shape_up, shape_down;
        atomic_uint_least64_t throttled;
        atomic_uint_least64_t matched; /* taken on a shared address (match) */
        atomic_uint queued;            /* clients waiting for a server (conn_queue.h) */
        atomic_uint kicks; /* slots freed on a worker with none of them queued: the first queued
                              client of another worker to claim one retries now */
        atomic_uint_least64_t queue_timeouts; /* waited queue_timeout for nothing */
        atomic_uint_least64_t queue_full;     /* could not wait: queue_size reached */
};

/* How a worker asks the main thread to look a route's names up again (dns.c): set the route's
 * st->dns_refresh, then post task to main. Lives as long as the daemon. */
struct route_dns_poke {
        struct evio_handle *main;
        struct evio_driver_task *task;
};

/* A route of one configuration generation (see gen.h). Its servers are a published server set
 * (server_set.h): read with route_set_get(), replaced with route_set_publish(). */
struct route {
        const struct cfg_route *cfg;
        struct route_stats *st;
        pthread_mutex_t set_lock; /* guards set: taking a reference and swapping */
        bool set_lock_ready;
        struct server_set *set;                    /* never NULL once set up */
        const struct route_dns_poke *_Atomic poke; /* NULL: no resolver */
        struct balance_state bal; /* this generation's balancing state (balance.h) */
};

/* Give r (its cfg set) its first server set: the literal upstreams and, for names, the
 * addresses the route of the same name among prev[0..n_prev) has for them; each server's
 * state is the one of the same address there (a reference), or a new one (up, idle).
 * 0 or -ENOMEM (then r holds nothing). */
int route_servers_init(struct route *r, const struct route *prev, size_t n_prev);
/* Drop r's references. Accepts a route whose servers were never set up. */
void route_servers_free(struct route *r);
/* The current set, with a reference for the caller (server_set_unref). Any thread. */
struct server_set *route_set_get(const struct route *r);
/* Make s (whose reference passes to r) the current set; the old one is released. */
void route_set_publish(struct route *r, struct server_set *s);

#endif
