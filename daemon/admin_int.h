/* Between the admin socket's files: the server object (admin_server.c), the commands that
 * answer requests (admin_cmds.c) and the state file (admin_state.c). Not for other modules:
 * they use admin.h. */
#ifndef EVPROXYD_ADMIN_INT_H
#define EVPROXYD_ADMIN_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>

#include <evproxy/config.h>
#include <evproxy/driver.h>

#include <evproxy/registration.h>

#include "admin_proto.h"
#include "sock.h"

struct daemon;
struct route;
struct upstream_server;
struct admin_conn;
struct conns_query;

struct admin_server {
        struct daemon *d;
        struct cfg_addr addr; /* copies: the configuration may be reloaded */
        mode_t mode;
        char *state_file;
        char *saved;     /* what the state file holds now (admin_state.c), or NULL */
        json_t *pending; /* file entries for addresses a route's names have not given yet */
        gid_t gid;       /* the socket file's group when it was made */
        struct evio_registration lreg; /* the listening socket */
        struct sock_file file;         /* its socket file, as we created it (sock.h) */
        struct evio_timer retry, reload_kick;
        TAILQ_HEAD(, admin_conn) conns;
        unsigned n_conns;
        TAILQ_HEAD(, conns_query) queries; /* posted to the workers (admin_conns.c) */
        bool reload_asked;                 /* a client asked: reload_kick runs daemon_reload() */
        time_t started;
        uint64_t started_ms;
        /* The last reload's outcome, for status. */
        bool reloaded, reload_ok;
        time_t reload_time;
        char reload_error[600];
};

/* admin_server.c: answer a client waiting for a query (resp consumed; NULL closes it). */
void admin_conn_answer(struct admin_conn *c, json_t *resp);

/* admin_conns.c: conns, kill ID, maint --kill (answer: the maint answer, owned by the query
 * from here on, even on failure, and completed with the number reset). Posts to every worker; the
 * last to finish has the main thread answer waiter. NULL on failure (why set). */
struct conns_query *admin_conns_start(struct admin_server *a, struct admin_conn *waiter,
                                      const struct admin_request *req, json_t *answer, char *why,
                                      size_t why_len);
/* The waiter went away: the query finishes unanswered. */
void admin_conns_forget(struct conns_query *q);
/* Free the queries still out (the workers are gone). */
void admin_conns_stop(struct admin_server *a);

/* admin_cmds.c: the answer to req, a JSON object with "ok" (NULL without memory). reload is
 * not answered here (admin_server.c waits for it). Main thread. */
json_t *admin_answer(struct admin_server *a, const struct admin_request *req);
/* {"ok": false, "error": why} */
json_t *admin_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* {"ok": true} with the reload's outcome, or the error. */
json_t *admin_reload_answer(struct admin_server *a);

/* admin_state.c. Apply the state file to d's current generation: 0 (also when there is no
 * file yet), or -errno with the reason logged (a file that cannot be read or understood stops
 * the start: it may hold maint states that must not be lost). */
int admin_state_load(struct admin_server *a);
/* Write every server's non-ready state, atomically (temp file, fsync, rename, fsync of the
 * directory). 0 or -errno; why is set to what failed. */
int admin_state_save(struct admin_server *a, char *why, size_t why_len);

/* Find a route of d's current generation by name, and a server of it by address: as written
 * in the configuration, or any spelling of the same address ("localhost:80"). NULL if none. */
struct server_set;
struct route *admin_find_route(struct daemon *d, const char *name);
/* Index in set of the server written as text (as listed, or an address equal to it), or -1. */
int admin_find_server(const struct server_set *set, const char *text);

#endif
