/* The I/O driver: one epoll instance, its registrations, a wake token (eventfd), a
 * signal-readiness token (signalfd), timers and metrics. evio_driver_turn() runs on one thread (the
 * driver's); the handle (struct evio_handle) may be used from any thread to register, deregister,
 * unpark, post work, read metrics and shut down. */
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

/* A unit of work posted to the driver's thread (intrusive: no allocation). */
struct evio_driver_task {
        void (*fn)(struct evio_driver_task *task);
        struct evio_driver_task *next;
};

/* Create and destroy. evio_driver_free() accepts NULL; it releases every record still registered
 * (without closing their fds, which belong to the caller). */
EVIO_API int evio_driver_new(struct evio_driver **out, const struct evio_driver_config *cfg);
EVIO_API void evio_driver_free(struct evio_driver *d);

/* The thread-safe side of this driver; valid as long as the driver is. */
EVIO_API struct evio_handle *evio_driver_handle(struct evio_driver *d);

/* One turn: free records released before this turn, wait up to timeout_ms (-1: no limit, but
 * never past the nearest timer), dispatch readiness to wakers, run posted tasks, fire due
 * timers. Returns the number of I/O events dispatched, or -ESHUTDOWN / another -errno. */
EVIO_API int evio_driver_turn(struct evio_driver *d, int timeout_ms);

/* The epoll timeout evio_driver_turn() would use for a requested one: min(requested, time to the
 * nearest timer), never past that deadline. */
EVIO_API int evio_driver_next_timeout(struct evio_driver *d, int timeout_ms);

/* Signal token: block the given signals in the calling thread (call before creating other
 * threads, which inherit the mask and so never consume them) and deliver them as readiness on
 * one signalfd. After evio_driver_turn(), evio_driver_take_signals() returns and forgets the
 * pending set, one bit per signal number (bit signo-1), each signal reported once however often it
 * came. */
EVIO_API int evio_driver_enable_signals(struct evio_driver *d, const sigset_t *signals);
EVIO_API uint64_t evio_driver_take_signals(struct evio_driver *d);

/* Register fd (not owned) for interest; the waker may be NULL. -ESHUTDOWN after shutdown. */
EVIO_API int evio_handle_register(struct evio_handle *h, int fd, uint32_t interest,
                                  const struct evio_waker *w, struct evio_scheduled_io **out);
/* Change the interest of a registration. */
EVIO_API int evio_handle_reregister(struct evio_handle *h, struct evio_scheduled_io *io,
                                    uint32_t interest);
/* Deregister: removes fd from epoll (call it before closing fd), drops the wakers at once, and
 * frees the record at the start of the next turn. Bookkeeping is done even when epoll_ctl fails,
 * whose error is returned. */
EVIO_API int evio_handle_deregister(struct evio_handle *h, struct evio_scheduled_io *io);

/* Deregister, for a caller that closes io's fd right afterwards and never duplicated it: the
 * close takes the fd out of the epoll set, so the epoll_ctl(DEL) system call is skipped. The
 * record's bookkeeping is that of evio_handle_deregister(). */
EVIO_API void evio_handle_deregister_before_close(struct evio_handle *h,
                                                  struct evio_scheduled_io *io);

/* Wake a driver blocked in evio_driver_turn(). */
EVIO_API int evio_handle_unpark(struct evio_handle *h);
/* Run task->fn on the driver's thread during its next turn; wakes the driver. */
EVIO_API int evio_handle_post(struct evio_handle *h, struct evio_driver_task *task);

EVIO_API void evio_handle_metrics(struct evio_handle *h, struct evio_driver_metrics *out);

/* Shut down: every record gets the shutdown bit and its wakers are called with EVIO_READY_ALL;
 * later registrations fail with -ESHUTDOWN, polls and turns report it. Idempotent. */
EVIO_API void evio_handle_shutdown(struct evio_handle *h);
EVIO_API bool evio_handle_is_shutdown(struct evio_handle *h);

#endif
