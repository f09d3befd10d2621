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

#ifndef EVPROXY_VERSION
#define EVPROXY_VERSION "0.0.0"
#endif

struct listener;
struct worker;

/* Runtime state of one route; counters are shared by every worker. */
struct route {
        const struct cfg_route *cfg;
        atomic_uint active;  /* open client connections */
        atomic_uint rr_next; /* round-robin cursor */
        atomic_uint_least64_t accepted;
        atomic_uint_least64_t refused_limit;
        atomic_uint_least64_t connect_failures;
};

enum daemon_phase {
        DAEMON_RUNNING,
        DAEMON_DRAINING,
        DAEMON_STOPPING,
};

struct daemon {
        struct cfg *cfg;
        struct route *routes;
        size_t n_routes;
        struct listener *listeners;
        size_t n_listeners;
        struct worker **workers;
        unsigned n_workers;
        struct driver *drv; /* main thread: signals, worker exit notices */
        enum daemon_phase phase;
        atomic_uint active; /* open client connections, all routes */
        atomic_uint_least64_t refused_limit;
        atomic_uint workers_exited;
};

/* Run the daemon on the configuration file at path; returns the process exit status. */
int daemon_run(const char *config_path);

/* SIGHUP (reload.c). Issue 6 implements it; for now it says so and keeps the configuration. */
int daemon_reload(struct daemon *d);

/* Called by a worker thread as it exits, to wake the main loop. */
void daemon_worker_exited(struct daemon *d);

#endif
