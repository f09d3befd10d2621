/* Client connections: from accept to the access-log line. See conn.c for the state machine. */
#ifndef EVPROXYD_CONN_H
#define EVPROXYD_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <evproxy/driver.h>

#include "conn_queue.h"
#include "pool.h"

struct listener;
struct conn;
struct cfg_addr;
struct client_table;

enum conn_end {
        END_CLIENT_CLOSED,
        END_UPSTREAM_CLOSED,
        END_IDLE_TIMEOUT,
        END_CONNECT_FAILED,
        END_RESET,
        END_LIMIT,
        END_SHUTDOWN,
        END_ERROR,
        END_DENIED,           /* allow/deny refused the client address */
        END_BAD_PROXY_HEADER, /* malformed or oversized PROXY header, or EOF inside it */
        END_PROXY_TIMEOUT,    /* no whole PROXY header within proxy_protocol_timeout */
        END_KILLED,           /* reset by the admin (evproxyctl kill, maint --kill) */
        END_NO_SERVER,        /* no server: its names have no address, or none could take it
                               * within queue_timeout, or the queue was full */
        END_CLIENT_LIMIT,     /* max_connections_per_client reached (client_limit.h) */
        END_RATE_LIMITED,     /* client_rate: the client's bucket is empty */
        END_PEER_TIMEOUT,     /* ETIMEDOUT: keepalive or user_timeout gave up on a peer */
        END_NO_MATCH,         /* shared listen address: no route took the first bytes */
        END_BAD_HELLO,        /* shared listen address: malformed, oversized, truncated hello */
};

const char *conn_end_name(enum conn_end end);

TAILQ_HEAD(conn_list, conn);

/* What the connections of one worker share, and all they know of it: the worker's driver and
 * pools, its list of connections, the daemon-wide count of open connections, and how to tell
 * the worker that accepting must pause. A worker (worker.c) embeds one; every function here
 * runs on that worker's thread. */
struct conn_env {
        struct evio_driver *drv;
        struct evio_handle *h;
        struct pipe_pool pipes;
        struct buf_pool bufs;
        struct conn_list conns;
        size_t n_conns;
        unsigned pause_streak; /* accept pauses since the last connection that got through */
        atomic_uint *active;   /* open client connections, all routes (the global limit) */
        /* Out of fds or memory (r): stop accepting on every listener for a moment. */
        void (*pause_accepting)(struct conn_env *env, int r);
        struct client_table *clients; /* per-client limits, shared by the workers; or NULL */
        struct conn_queue queue;      /* clients waiting for a server (conn_queue.h) */
        struct gen *gen; /* the generation the worker accepts for (its reference); queued
                          * clients retry under it */
        /* A slot of a route freed here while its queued clients wait on other workers: have
         * them claim it (conn_queue_claim on their threads). NULL: one worker. */
        void (*kick_others)(struct conn_env *env);
};

/* Take over an accepted client fd whose limit counters were already taken; on failure the fd
 * is closed and the counters released. */
int conn_start(struct conn_env *env, struct listener *l, int fd, const struct sockaddr *sa,
               socklen_t len);

/* Close every connection of env, logged with reason end. */
void conn_close_all(struct conn_env *env, enum conn_end end);

/* Access control right after accept: false if l's route denies the client sa, in which case
 * the fd is closed, counted and logged (end=denied). Takes no limit. */
bool conn_admit(struct conn_env *env, struct listener *l, int fd, const struct sockaddr *sa,
                socklen_t len);

/* After a reload: every queued client retries now, under env->gen (the servers it waits for
 * may be new). */
void conn_queue_retry_all(struct conn_env *env);
/* Another worker freed slots (route_stats.kicks): the oldest queued clients of those routes
 * here claim them and retry now. */
void conn_queue_claim(struct conn_env *env);

/* Release one connection's worth of the global and route limits. */
void conn_limits_release(struct conn_env *env, struct listener *l);

/* Format the client address of a connection accepted on l (unnamed unix clients print as the
 * listener's own address). */
char *conn_client_text(const struct listener *l, const struct sockaddr *sa, socklen_t len,
                       char *buf, size_t size);

/* For the admin socket (admin_conns.c), on the connection's worker thread. */
struct conn_snap {
        uint64_t id;                     /* unique in this process, never 0 */
        const struct cfg_addr *upstream; /* NULL until a server was chosen; valid while c is */
        const char *state;               /* proxy_header, connecting, forwarding */
        char route[64];                  /* copies: they outlive the connection */
        char upstream_text[128];         /* as in the configuration, or "-" */
        char client[160];                /* ADDR_STRLEN */
        uint64_t age_ms, idle_ms;
        uint64_t bytes_in, bytes_out; /* client -> upstream, upstream -> client */
};
/* Call fn on every connection of env until it returns false; fn may conn_kill() the one it is
 * given. */
void conn_foreach(struct conn_env *env, bool (*fn)(struct conn *c, void *arg), void *arg);
/* upstream points into c's configuration: use it on c's thread while c is open only. */
void conn_snapshot(const struct conn *c, struct conn_snap *out);
/* Reset both sides now, logged end=killed. */
void conn_kill(struct conn *c);

/* Handover (handover.h), on env's thread. Export: c leaves env as a new record of st (its
 * sockets deregistered, not closed: st owns them; bytes in flight copied into it) and is freed,
 * without a log line; -ENOMEM leaves c as it was. Import: a connection of route l made from h,
 * which gives up its fds (set to -1); on failure they are closed, the connection logged. */
struct ho_state;
struct ho_conn;
int conn_handover_export(struct conn *c, struct ho_state *st);
int conn_handover_import(struct conn_env *env, struct listener *l, struct ho_conn *h);

#endif
