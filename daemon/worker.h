/* A worker: one thread with its own driver, accepting on its share of the listeners and running
 * the connections it accepted. Readiness wakers and timers only queue work (the driver's
 * deferred queue); the work runs in the turn's deferred pass, after dispatch, so no callback
 * frees what the driver still walks.
 *   RUNNING --drain task--> DRAINING (listeners let go) --no connections, or deadline--> EXIT
 *   any --stop task--> close every connection (end=shutdown) --> EXIT */
#ifndef EVPROXYD_WORKER_H
#define EVPROXYD_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <evproxy/driver.h>

#include "pool.h"

struct daemon;
struct gen;
struct conn;
struct listener;

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

TAILQ_HEAD(conn_list, conn);

struct worker {
        unsigned id;
        struct daemon *dmn;
        struct gen *gen; /* the configuration this worker accepts for */
        struct evio_driver *drv;
        struct evio_handle *h;
        pthread_t thread;
        bool started;
        struct wlistener *ls;
        size_t n_ls;
        struct conn_list conns;
        size_t n_conns;
        struct pipe_pool pipes;
        struct buf_pool bufs;
        bool draining, drain_expired, exit;
        bool accept_paused;    /* out of fds: no accept until pause_timer fires */
        unsigned pause_streak; /* pauses since the last successful connection */
        struct evio_timer drain_timer, pause_timer;
        struct evio_driver_task drain_task, stop_task, ping_task;
};

/* Create worker id: its driver, pools, and registrations on every listener. Main thread. */
int worker_new(struct daemon *d, unsigned id, struct worker **out);
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

/* For the worker's own thread. */
/* Out of fds or memory (r): stop accepting on every listener for a moment. */
void worker_pause_accepting(struct worker *w, int r);
static inline void worker_schedule(struct worker *w, struct evio_deferred *r)
{
        evio_driver_defer(w->drv, r);
}

static inline void worker_unschedule(struct worker *w, struct evio_deferred *r)
{
        evio_driver_undefer(w->drv, r);
}

#endif
