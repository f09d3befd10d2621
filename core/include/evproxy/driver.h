/* The I/O driver: one epoll instance, its registrations, a wake token (eventfd), a
 * signal-readiness token (signalfd), timers and metrics. driver_turn() runs on one thread (the
 * driver's); the handle (struct handle) may be used from any thread to register, deregister,
 * unpark, post work, read metrics and shut down. */
#ifndef EVPROXY_DRIVER_H
#define EVPROXY_DRIVER_H

#include <signal.h>
#include <stdint.h>

#include "ready.h"
#include "scheduled_io.h"
#include "timer.h"

struct driver;
struct handle;

struct driver_config {
        unsigned event_capacity; /* events per epoll_wait; 0 = 1024 */
        unsigned release_batch;  /* pending releases that wake the driver; 0 = 16 */
};

struct driver_metrics {
        uint64_t registered_count;   /* fds ever registered */
        uint64_t deregistered_count; /* fds ever deregistered */
        uint64_t ready_count;        /* readiness events delivered to resources */
};

/* A unit of work posted to the driver's thread (intrusive: no allocation). */
struct driver_task {
        void (*fn)(struct driver_task *task);
        struct driver_task *next;
};

/* Create and destroy. driver_free() accepts NULL; it releases every record still registered
 * (without closing their fds, which belong to the caller). */
int driver_new(struct driver **out, const struct driver_config *cfg);
void driver_free(struct driver *d);

/* The thread-safe side of this driver; valid as long as the driver is. */
struct handle *driver_handle(struct driver *d);

/* One turn: free records released before this turn, wait up to timeout_ms (-1: no limit, but
 * never past the nearest timer), dispatch readiness to wakers, run posted tasks, fire due
 * timers. Returns the number of I/O events dispatched, or -ESHUTDOWN / another -errno. */
int driver_turn(struct driver *d, int timeout_ms);

/* The epoll timeout driver_turn() would use for a requested one: min(requested, time to the
 * nearest timer), never past that deadline. */
int driver_next_timeout(struct driver *d, int timeout_ms);

/* Signal token: block the given signals in the calling thread (call before creating other
 * threads, which inherit the mask and so never consume them) and deliver them as readiness on
 * one signalfd. After driver_turn(), driver_take_signals() returns and forgets the pending set,
 * one bit per signal number (bit signo-1), each signal reported once however often it came. */
int driver_enable_signals(struct driver *d, const sigset_t *signals);
uint64_t driver_take_signals(struct driver *d);

/* Register fd (not owned) for interest; the waker may be NULL. -ESHUTDOWN after shutdown. */
int handle_register(struct handle *h, int fd, uint32_t interest, const struct waker *w,
                    struct scheduled_io **out);
/* Change the interest of a registration. */
int handle_reregister(struct handle *h, struct scheduled_io *io, uint32_t interest);
/* Deregister: removes fd from epoll (call it before closing fd), drops the wakers at once, and
 * frees the record at the start of the next turn. Bookkeeping is done even when epoll_ctl fails,
 * whose error is returned. */
int handle_deregister(struct handle *h, struct scheduled_io *io);

/* Deregister, for a caller that closes io's fd right afterwards and never duplicated it: the
 * close takes the fd out of the epoll set, so the epoll_ctl(DEL) system call is skipped. The
 * record's bookkeeping is that of handle_deregister(). */
void handle_deregister_before_close(struct handle *h, struct scheduled_io *io);

/* Wake a driver blocked in driver_turn(). */
int handle_unpark(struct handle *h);
/* Run task->fn on the driver's thread during its next turn; wakes the driver. */
int handle_post(struct handle *h, struct driver_task *task);

void handle_metrics(struct handle *h, struct driver_metrics *out);

/* Shut down: every record gets the shutdown bit and its wakers are called with READY_ALL;
 * later registrations fail with -ESHUTDOWN, polls and turns report it. Idempotent. */
void handle_shutdown(struct handle *h);
bool handle_is_shutdown(struct handle *h);

#endif
