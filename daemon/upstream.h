/* Choosing and connecting to a route's upstream servers. Every choice goes through
 * upstream_begin()/upstream_next() so balancing policies and server health (health.h) change
 * one place; upstream_report() feeds connect outcomes back, upstream_release() gives the
 * server's load unit back when the connection ends. */
#ifndef EVPROXYD_UPSTREAM_H
#define EVPROXYD_UPSTREAM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <evproxy/config.h>

struct route;
struct server_set;
struct server_entry;

/* Runtime state of one upstream server of a route, shared by every worker and by every
 * configuration generation that has it (route.h). Health fields are written by health.c only. */
struct upstream_server {
        atomic_uint refs;
        atomic_uint active;               /* connections assigned to it (connecting or open) */
        atomic_uint fails;                /* failed connects in a row */
        atomic_bool down;                 /* skipped until retry_ms, then probed */
        atomic_uint_least64_t retry_ms;   /* driver clock: when the next probe may go */
        atomic_uint_least64_t backoff_ms; /* current back-off, doubles up to backoff_max */
        atomic_uint_least64_t connect_failures;
        /* For the admin socket (admin_cmds.c), which alone writes `admin` (main thread). */
        atomic_uint admin;                   /* enum admin_state (admin_proto.h) */
        atomic_uint_least64_t connects;      /* successful connects, ever */
        atomic_int last_error;               /* -errno of the last failed connect, or 0 */
        atomic_uint_least64_t last_error_at; /* when (wall clock, seconds) */
        atomic_uint_least64_t refused_max;   /* connections that began with it full (metrics) */
};

/* One connection's walk over the servers of its route. Pass 0 hands out, in ring order from
 * the server the balancing policy chose, the servers that are up (or due for a probe); pass 1
 * the ones pass 0 skipped as down, so a route whose servers are all down still tries them.
 * A server the admin set to drain or maint, or at its max_connections, is never handed out,
 * in either pass.
 * Each server is handed out at most once per walk. The servers pass 0 skipped are kept as bits:
 * in place for the first 64, in a bitmap allocated on the first skip past them (routes may have
 * CFG_MAX_UPSTREAMS servers). Without memory for it, pass 1 hands out every server past the
 * 64th that it did not remember as tried, so none is left out (one may be tried twice). */
struct upstream_pick {
        struct server_set *set; /* the route's servers when the walk began (held to the end) */
        unsigned start;         /* first server of this walk */
        unsigned step;          /* ring positions visited in this pass */
        uint8_t pass;           /* 0 or 1; 2 = walk over */
        bool held;              /* current holds one unit of its server's active count */
        bool probe;             /* current is down and this walk probes it (health.h) */
        bool more_lost;         /* no memory for skipped_more: pass 1 retries all servers >= 64 */
        int current;            /* index of the last one handed out, -1 before the first */
        unsigned tried;         /* servers handed out so far */
        uint64_t skipped;       /* pass 0: servers skipped as down (bit i = server i, i < 64) */
        uint64_t *skipped_more; /* the same for servers 64.. (bit i-64), or NULL */
        bool full;              /* some server was passed over at its max_connections */
};

/* Take the route's current server set (held until upstream_end) and choose where to start. */
void upstream_begin(struct route *r, struct upstream_pick *p);
/* The same for a client at address client (may be NULL), which balance = "hash" hashes. */
void upstream_begin_for(struct route *r, struct upstream_pick *p, const struct sockaddr *client);
/* The entry handed out last (p->current), or NULL before the first. */
const struct server_entry *upstream_current(const struct upstream_pick *p);
/* The next server to try, or NULL when every server was tried. */
const struct cfg_addr *upstream_next(struct route *r, struct upstream_pick *p);
/* Outcome of a connect to p->current (0 or -errno): counts failures, feeds health. A failure
 * also releases the server's load unit. */
void upstream_report(struct route *r, struct upstream_pick *p, int result);
/* A connection that already has its upstream (handed over by another process, handover.h):
 * a finished walk that holds the server of the route's current set whose address is written
 * text, or none (current -1) when the set has no such address. */
void upstream_adopt(struct route *r, struct upstream_pick *p, const char *text);
/* Release what the walk holds on its current server. Idempotent. */
void upstream_release(struct route *r, struct upstream_pick *p);
/* True if the walk had no server at all (the route's names have no address): then counted
 * and logged for client (its text) with the names, and the caller ends it with end=no_server. */
bool upstream_no_server(struct route *r, const struct upstream_pick *p, const char *client);
/* The connection is over: release, and free what the walk allocated. Idempotent. */
void upstream_end(struct route *r, struct upstream_pick *p);

/* Start a non-blocking connect to an upstream server (sock_connect() with TCP_NODELAY): 0
 * connected, -EINPROGRESS pending (wait for writable, then upstream_connect_result()), or -errno.
 * *fd_out is set whenever a socket was made. */
int upstream_connect(const struct cfg_addr *a, int *fd_out);
/* Result of a pending connect once the socket is writable: 0 or -errno. */
int upstream_connect_result(int fd);

/* True for errors that say this machine is short of something, not that the server failed. */
bool upstream_error_is_local(int r);

/* A random number from a per-thread generator (seeded once per thread). */
uint32_t upstream_random(void);

#endif
