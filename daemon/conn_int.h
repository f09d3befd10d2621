/* The connection's insides, shared by conn.c (its life from accept to the access line) and
 * conn_handover.c (a connection leaving as a handover record, or arriving as one). Nothing
 * else includes this: the rest of the daemon sees conn.h only. */
#ifndef EVPROXYD_CONN_INT_H
#define EVPROXYD_CONN_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "client_limit.h"
#include "conn.h"
#include "conn_inspect.h"
#include "conn_queue.h"
#include "pump.h"
#include "shaper.h"
#include "upstream.h"

enum conn_state {
        CONN_CONNECTING,
        CONN_FORWARDING,
        CONN_PROXY_HEADER,
        CONN_INSPECT, /* shared listen address: choosing the route (conn_inspect.c) */
        CONN_QUEUED,  /* no server could take it yet: waiting (conn_queue.c) */
};

#define NO_EOF 0xff

struct conn {
        struct evio_deferred run;
        TAILQ_ENTRY(conn) link;
        struct conn_env *env;
        struct listener *l;
        struct evio_registration creg, ureg; /* client and upstream sockets */
        struct evio_timer timer;
        uint64_t start_ms, last_ms;
        struct pump up;   /* client -> upstream */
        struct pump down; /* upstream -> client */
        struct upstream_pick pick;
        uint8_t state;
        uint8_t first_eof; /* END_CLIENT_CLOSED, END_UPSTREAM_CLOSED or NO_EOF */
        bool timer_fired;
        bool pp_pending;                  /* our PROXY header is not all sent yet */
        uint8_t pp_sent;                  /* bytes of it sent */
        struct addr_slot client;          /* as the PROXY header said, if there was one */
        struct addr_slot local;           /* what the client connected to (idem); 0 len = unknown */
        uint64_t counted_in, counted_out; /* bytes already added to the route's counters */
        uint64_t id;                      /* evproxyctl conns/kill (conn_snapshot) */
        struct client_ticket ticket;      /* per-client limits held (client_limit.h) */
        struct shaper shape;              /* rate, route_rate (shaper.h) */
        struct conn_inspect *ins;         /* accepted on a shared address: what chose the route */
        struct cq_entry qe;               /* while it waits for a server (CONN_QUEUED) */
};

/* A new connection on client socket fd under l, in env's list, nothing registered yet
 * (started now, no upstream, copying), or NULL without memory (fd untouched). */
struct conn *conn_new(struct conn_env *env, struct listener *l, int fd);
/* Stop its timer, shaper and pending run. */
void conn_quiet(struct conn *c);
/* Give back what it holds (pumps, server, queue place, limits, client ticket) and unlink it;
 * its sockets are the caller's business (closed, or handed over). */
void conn_release(struct conn *c);
/* Free it (after conn_release). */
void conn_free(struct conn *c);
/* Close a side, with a reset (SO_LINGER 0) when reset. */
void conn_close_side(struct evio_registration *r, bool reset);
void conn_close(struct conn *c, enum conn_end end, bool reset_client, bool reset_upstream);
const struct cfg_route *conn_route(const struct conn *c);
int conn_register(struct conn *c, struct evio_registration *r);
void conn_wait_header(struct conn *c);
void conn_begin_connect(struct conn *c);
/* Choose a server (after accept, a PROXY header, inspection, or a queued client's retry) and
 * connect. */
void conn_walk(struct conn *c);

/* conn_queued.c: the walk found no server. Queued (CONN_QUEUED, its retry timer armed) or
 * closed with end=no_server: true; false when the route has no queue. */
bool conn_queue_wait(struct conn *c);
/* A connection of route st ended: its oldest queued client of this worker retries now. */
void conn_queue_kick(struct conn_env *env, struct route_stats *st);
/* A queued connection's run: its retry timer fired (or it was kicked). */
void conn_run_queued(struct conn *c);

#endif
