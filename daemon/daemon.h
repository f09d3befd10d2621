/* The daemon as a whole: the loaded configuration, per-route runtime state, the listeners and
 * the workers, plus the main thread's driver that receives signals. Lifecycle:
 *   RUNNING --SIGTERM/SIGINT--> DRAINING (listeners closed) --conns done or deadline--> exit
 *   DRAINING --second SIGTERM/SIGINT--> STOPPING (close everything now) --> exit */
#ifndef EVPROXYD_DAEMON_H
#define EVPROXYD_DAEMON_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <evproxy/config.h>
#include <evproxy/driver.h>

#include "worker.h"

#ifndef EVPROXY_VERSION
#define EVPROXY_VERSION "0.0.0"
#endif

struct listener;
struct metrics_server;
struct health_checker;
struct admin_server;
struct dns;

enum daemon_phase {
        DAEMON_RUNNING,
        DAEMON_DRAINING,
        DAEMON_STOPPING,
};

struct gen;
struct lsockset;
struct evsd_socket;
struct handover;

struct daemon {
        const char *config_path;
        struct gen *gen;            /* the current configuration generation (gen.h) */
        struct lsockset *sets;      /* every open socket set, in use or retiring */
        struct evsd_socket *passed; /* sockets passed by systemd, kept for the daemon's life */
        size_t n_passed;
        unsigned reload_seq; /* reloads posted to the workers */
        bool reloading, reload_pending;
        char reload_status[160]; /* last reload result, for STATUS= */
        struct evio_timer status_timer, watchdog_timer;
        uint64_t watchdog_usec;
        unsigned watchdog_seq;       /* ping rounds posted to the workers */
        struct worker_shared shared; /* counters and answers of the workers (worker.h) */
        struct worker **workers;
        unsigned n_workers;
        struct evio_driver *drv; /* main thread: signals, worker exit notices */
        enum daemon_phase phase;
        struct metrics_server *metrics; /* metrics.listen endpoint (metrics_server.c) */
        struct health_checker *checker; /* active health checks (health_check.c) */
        struct admin_server *admin;     /* admin.listen socket (admin.h) */
        struct dns *dns;                /* names of upstreams, resolved (dns.h) */
        unsigned sets_serial;           /* server sets published by dns.c (health checks) */
        struct handover *ho;            /* evproxyd -H: handover socket and exchange (handover.h) */
};

/* Run the daemon on the configuration file at path; returns the process exit status. */
int daemon_run(const char *config_path);

/* SIGHUP (reload.c): load and check the file; if it is good, open added listeners, hand the new
 * generation to every worker and retire removed listeners; if not, log why and keep running on
 * the current configuration. A reload asked for while one is under way runs after it. */
void daemon_reload(struct daemon *d);
/* Main thread, after each turn: finish a reload every worker has applied. */
void daemon_reload_progress(struct daemon *d);
/* Open the socket sets of every listener of g (reusing those of prev), appending them to g.
 * On failure, sets opened by this call are closed again and -errno is returned. */
int daemon_bind(struct daemon *d, struct gen *g, const struct gen *prev);
/* Free socket sets that no generation uses and no worker accepts on any more. */
void daemon_free_unused_sets(struct daemon *d, const struct gen *keep);

/* systemd STATUS=/WATCHDOG=/STOPPING= from the main loop (notify.c). _init at construction,
 * _start once ready; _stop is safe after _init whether _start ran or not. */
void daemon_status_init(struct daemon *d);
void daemon_status_start(struct daemon *d);
void daemon_status_stop(struct daemon *d);
void daemon_notify_stopping(struct daemon *d);

#endif
