/* A worker: one thread with its own driver, accepting on its share of the listeners and running
 * the connections it accepted. Readiness wakers and timers only queue work (the driver's
 * deferred queue); the work runs in the turn's deferred pass, after dispatch, so no callback
 * frees what the driver still walks.
 *   RUNNING --drain task--> DRAINING (listeners let go) --no connections, or deadline--> EXIT
 *   any --stop task--> close every connection (end=shutdown) --> EXIT */
#ifndef EVPROXYD_WORKER_H
#define EVPROXYD_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <evproxy/driver.h>

#include "conn.h"
#include "handover_wire.h"
#include "pool.h"
#include "util.h"

struct gen;
struct listener;

/* What the workers share with the daemon, and all they know of it: the limits and counters
 * every worker updates, the answers to the daemon's requests (reload applied, watchdog ping,
 * exit), and the main thread's handle to wake it with them. The daemon embeds one (daemon.h). */
struct worker_shared {
        atomic_uint active; /* open client connections, all routes */
        atomic_uint_least64_t refused_limit;
        atomic_uint reload_acks;        /* workers that applied the last reload */
        atomic_uint reload_errors;      /* workers that could not register some listener of it */
        atomic_uint watchdog_acks;      /* pings the workers answered */
        atomic_uint workers_exited;     /* worker threads that returned */
        struct pipe_budget pipe_budget; /* pipe_memory: every worker's splice pipes (pool.h) */
        struct evio_handle *main;       /* unparked when a worker answers or exits */
        struct client_table *clients;   /* per-client limits (client_limit.h); NULL = none */
        atomic_uint handover_acks;      /* workers that quiesced or resumed (handover.c) */
        atomic_uint_least64_t handover_resumed;       /* connections taken over at start */
        atomic_uint_least64_t handover_resumed_bytes; /* ... their bytes in flight */
        struct worker **workers; /* all of them, once created (queue kicks between workers) */
        unsigned n_workers;
};

struct worker {
        unsigned id;
        struct worker_shared *sh;
        struct conn_env env; /* driver, pools, connections, the generation it accepts for */
        pthread_t thread;
        bool started;
        struct wlistener *ls;
        size_t n_ls;
        bool draining, drain_expired, exit;
        bool accept_paused; /* out of fds: no accept until pause_timer fires */
        struct evio_timer drain_timer, pause_timer;
        struct evio_driver_task drain_task, stop_task, ping_task;
        struct evio_driver_task qkick_task; /* another worker freed a slot (conn_queue_claim) */
        _Atomic uint64_t accepted; /* connections this worker accepted (SO_REUSEPORT spread) */
        /* Handover (handover.c): quiesced, the worker neither accepts nor reads; its
         * connections left for ho (they come back from it if the handover fails). */
        bool ho_quiesced;
        int ho_err; /* what went wrong exporting, or 0 */
        struct ho_state ho;
        struct evio_driver_task ho_quiesce_task, ho_resume_task;
};

/* Create worker id accepting for g: its driver, pools, and registrations on every listener.
 * Main thread. */
int worker_new(struct worker_shared *sh, struct gen *g, unsigned id, struct worker **out);
int worker_start(struct worker *w);
void worker_join(struct worker *w);
/* Accepts NULL; the thread must have been joined. */
void worker_free(struct worker *w);
/* From any thread: stop accepting and let connections finish within the drain timeout. */
void worker_drain(struct worker *w);
/* A reload of one worker to generation g, prepared on the main thread (everything it needs is
 * allocated here, so it cannot fail half-way through the workers) and then posted: from its
 * next turn on the worker accepts for g and counts itself in d->reload_acks (and in
 * d->reload_errors if it could not register some listener, which it then does not hold).
 * An unposted reload is freed with worker_reload_free() (accepts NULL). */
struct worker_reload;
int worker_reload_new(struct worker *w, struct gen *g, struct worker_reload **out);
void worker_reload_post(struct worker_reload *rt);
void worker_reload_free(struct worker_reload *rt);
/* From any thread: close every connection now. Call at most once, after worker_drain. */
void worker_stop(struct worker *w);
/* From any thread: ask w to count itself in sh->watchdog_acks from its next turn (a worker whose
 * loop is stuck never does: notify.c then stops feeding systemd's watchdog). */
void worker_ping(struct worker *w);
/* From any thread: run task on w's thread during its next turn. */
int worker_post(struct worker *w, struct evio_driver_task *task);
/* From any thread: connections w accepted, on every listener, since it started. */
uint64_t worker_accepted(struct worker *w);
/* Handover, from the main thread; each counts itself in sh->handover_acks when done.
 * Quiesce: stop accepting (listeners deregistered, sockets kept) and export every connection
 * into w->ho. Resume: register the listeners again and import what w->ho holds then (the main
 * thread put the records there), which w->ho then no longer holds. */
void worker_handover_quiesce(struct worker *w);
void worker_handover_resume(struct worker *w);
/* Import one record into w: on w's thread, or before w started; under listener l, or (l NULL)
 * the first of its route in w's generation. h's fds pass to the new connection; on failure
 * (logged) they are closed. */
int worker_handover_import(struct worker *w, struct ho_conn *h, struct listener *l);

/* From any thread: w's driver counters. */
void worker_driver_metrics(struct worker *w, struct evio_driver_metrics *out);

#endif
