/* The I/O driver: one epoll instance, its registrations, a wake token (eventfd), a
 * signal-readiness token (signalfd), timers, a deferred-task queue and metrics.
 * Thread contract: evio_driver_*() and evio_timer_*() calls belong to the driver's thread (the
 * one that calls evio_driver_turn(); between turns, e.g. after that thread was joined, any one
 * thread may make them); every evio_handle_*() call is safe from any thread and means what it
 * says. Wakers, posted tasks, timers and deferred tasks run on the driver's thread only, inside
 * evio_driver_turn(). assert() catches the violations that would corrupt state: a turn re-entered
 * or run on two threads, timer, deferred-queue and signal calls off the driver's thread during a
 * turn. */
#ifndef EVPROXY_DRIVER_H
#define EVPROXY_DRIVER_H

#include "api.h"

#include <signal.h>
#include <stdint.h>

#include "ready.h"
#include "scheduled_io.h"
#include "timer.h"

struct evio_driver;
struct evio_handle;

struct evio_driver_config {
        unsigned event_capacity; /* events per epoll_wait; 0 = 1024 */
        unsigned release_batch;  /* pending releases that wake the driver; 0 = 16 */
};

struct evio_driver_metrics {
        uint64_t registered_count;   /* fds ever registered */
        uint64_t deregistered_count; /* fds ever deregistered */
        uint64_t ready_count;        /* readiness events delivered to resources */
};

/* A unit of work posted to the driver's thread from any thread (intrusive: no allocation).
 * Zero-initialise it (next and queued belong to the driver) and set fn. */
struct evio_driver_task {
        void (*fn)(struct evio_driver_task *task);
        struct evio_driver_task *next;
        bool queued; /* posted and not yet started; guarded by the handle's lock */
};

/* A unit of work deferred on the driver's thread (libuv's pending queue; intrusive). Zero-
 * initialise it (prev, next and queued belong to the driver) and set fn. */
struct evio_deferred {
        void (*fn)(struct evio_deferred *task);
        struct evio_deferred *prev, *next;
        bool queued;
};

/* Create and destroy. evio_driver_free() accepts NULL; it releases every record still registered
 * (without closing their fds, which belong to the caller). */
EVIO_API int evio_driver_new(struct evio_driver **out, const struct evio_driver_config *cfg);
EVIO_API void evio_driver_free(struct evio_driver *d);

/* The thread-safe side of this driver; valid as long as the driver is. */
EVIO_API struct evio_handle *evio_driver_handle(struct evio_driver *d);

/* One turn: free records released before this turn, wait up to timeout_ms (-1: no limit, but
 * never past the nearest timer, and not at all while deferred tasks are queued), dispatch
 * readiness to wakers, run posted tasks, fire due timers (each at most once per turn: one
 * re-armed in the past fires again next turn), run the deferred tasks queued before that pass
 * began. Returns the number of I/O events dispatched, or -ESHUTDOWN / another -errno. The turn
 * that first sees a shutdown calls every registered record's wakers once (EVIO_READY_ALL)
 * instead of dispatching further. Not re-entrant: a callback must not call it. */
EVIO_API int evio_driver_turn(struct evio_driver *d, int timeout_ms);

/* The epoll timeout evio_driver_turn() would use for a requested one: 0 with deferred tasks
 * queued, else min(requested, time to the nearest timer), never past that deadline. */
EVIO_API int evio_driver_next_timeout(struct evio_driver *d, int timeout_ms);

/* The driver's clock (evio_now_ms()) as read when the current or last turn's wait returned: the
 * "now" of the callbacks of a turn, read once per turn. Driver's thread. */
EVIO_API uint64_t evio_driver_now_ms(const struct evio_driver *d);

/* Queue task to run on this turn's deferred pass, or the next turn's when called from that pass
 * (driver's thread). Deferring a queued task is a no-op: it keeps its place. Undeferring takes
 * it out of the queue, or out of the pass in progress; a no-op when it is not queued. Tasks run
 * in the order they were deferred; task->fn may free the task or defer it again. */
EVIO_API void evio_driver_defer(struct evio_driver *d, struct evio_deferred *task);
EVIO_API void evio_driver_undefer(struct evio_driver *d, struct evio_deferred *task);

/* Signal token: block the given signals in the calling thread (call before creating other
 * threads, which inherit the mask and so never consume them) and deliver them as readiness on
 * one signalfd. After evio_driver_turn(), evio_driver_take_signals() returns and forgets the
 * pending set, one bit per signal number (bit signo-1), each signal reported once however often it
 * came. */
EVIO_API int evio_driver_enable_signals(struct evio_driver *d, const sigset_t *signals);
EVIO_API uint64_t evio_driver_take_signals(struct evio_driver *d);

/* Register fd (not owned) for interest; the waker (may be NULL) serves both directions and may be
 * called on the driver's thread before this returns. -ESHUTDOWN after shutdown. A registration
 * that fails leaves nothing behind: no record, no epoll entry, and its waker is never called. */
EVIO_API int evio_handle_register(struct evio_handle *h, int fd, uint32_t interest,
                                  const struct evio_waker *w, struct evio_scheduled_io **out);
/* Change the interest of a registration. */
EVIO_API int evio_handle_reregister(struct evio_handle *h, struct evio_scheduled_io *io,
                                    uint32_t interest);
/* Deregister: removes fd from epoll (call it before closing fd), drops the wakers at once, and
 * frees the record at the start of the next turn. Once it returned, no waker of io runs or
 * starts: called from another thread while the driver is calling io's wakers, it waits until
 * they returned (so do not call it holding a lock those wakers take); called from a waker on
 * the driver's thread, it does not wait for that waker. Bookkeeping is done even when epoll_ctl
 * fails, whose error is returned. Deregistering a record twice is a bug (assert). */
EVIO_API int evio_handle_deregister(struct evio_handle *h, struct evio_scheduled_io *io);

/* Deregister, for a caller that closes io's fd right afterwards and never duplicated it: the
 * close takes the fd out of the epoll set, so the epoll_ctl(DEL) system call is skipped. The
 * record's bookkeeping is that of evio_handle_deregister(). */
EVIO_API void evio_handle_deregister_before_close(struct evio_handle *h,
                                                  struct evio_scheduled_io *io);

/* Wake a driver blocked in evio_driver_turn(). */
EVIO_API int evio_handle_unpark(struct evio_handle *h);
/* Run task->fn on the driver's thread during its next turn; wakes the driver. Posting a task that
 * is still queued is a no-op returning 0 (it runs once); from task->fn it queues it for the
 * next turn. */
EVIO_API int evio_handle_post(struct evio_handle *h, struct evio_driver_task *task);

EVIO_API void evio_handle_metrics(struct evio_handle *h, struct evio_driver_metrics *out);

/* Shut down, from any thread: when it returns, every record has the shutdown bit (polls report
 * -ESHUTDOWN), later registrations fail with -ESHUTDOWN, and the driver is unparked. The wakers
 * are called with EVIO_READY_ALL by the driver's next turn, on the driver's thread (which then
 * returns -ESHUTDOWN, as every later turn does). Idempotent: the wakers are called once. */
EVIO_API void evio_handle_shutdown(struct evio_handle *h);
EVIO_API bool evio_handle_is_shutdown(struct evio_handle *h);

#endif
