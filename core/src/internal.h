/* Private layout of the driver's records, shared by core/src only (and by the unit tests, which
 * check the bookkeeping directly). Nothing here is part of the installed API. */
#ifndef EVPROXY_CORE_INTERNAL_H
#define EVPROXY_CORE_INTERNAL_H

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <evproxy/driver.h>

/* One atomic word per resource: bits 0-5 Ready, bit 6 shutdown, bits 7-63 the tick. */
#define SIO_READY_MASK ((uint64_t)EVIO_READY_ALL)
#define SIO_SHUTDOWN   ((uint64_t)1 << 6)
#define SIO_TICK_SHIFT 7
#define SIO_TICK_MAX   ((UINT64_C(1) << (64 - SIO_TICK_SHIFT)) - 1)

/* One record is exactly one 64-byte cache line, allocated 64-byte aligned: what an event touches
 * (state, wakers, the lock) and the list links never share a line with another record. The lock
 * is a one-byte spinlock, not a pthread mutex (40 bytes): it is held only to copy or store a
 * waker, never across a call, so it is uncontended in practice and spinning is the cheap case.
 * `waking` is set (under the lock) while the driver calls this record's wakers, so a deregister
 * from another thread can wait the call out; a deregistered record's wakers hold a mark
 * (scheduled_io.c) instead of a bit of their own, so the record stays one line. */
struct evio_scheduled_io {
        _Atomic uint64_t state;
        struct evio_waker wakers[2];
        int fd;
        _Atomic uint16_t interest;
        _Atomic uint8_t waking; /* the driver is calling this record's wakers */
        _Atomic uint8_t lock;   /* guards wakers (and so the released mark in them) */
        struct evio_scheduled_io *prev, *next; /* registered list, or pending list (next only) */
};
_Static_assert(sizeof(struct evio_scheduled_io) == 64, "a record is one cache line");

/* ready.c: the epoll side of the vocabulary. */
/* Ready bits from epoll event flags (EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLHUP, EPOLLERR,
 * EPOLLPRI), mapped as mio/Tokio do: HUP closes both directions, RDHUP closes reading,
 * ERR with OUT (or ERR alone) closes writing. */
uint32_t evio__ready_from_epoll(uint32_t epoll_events);

/* epoll flags to ask for, edge-triggered, for an interest. */
uint32_t evio__interest_to_epoll(uint32_t interest);

/* scheduled_io.c */
void evio__sio_init(struct evio_scheduled_io *io, int fd, uint32_t interest,
                    const struct evio_waker *w);
uint32_t evio__sio_set_readiness(struct evio_scheduled_io *io, uint32_t ready);
void evio__sio_wake(struct evio_scheduled_io *io, uint32_t ready);
void evio__sio_set_shutdown(struct evio_scheduled_io *io);
/* Drop the wakers for good. With wait_wake, also wait until a wake that had already copied them
 * has returned (the caller is not the thread that runs it). */
void evio__sio_release(struct evio_scheduled_io *io, bool wait_wake);
bool evio__sio_is_released(struct evio_scheduled_io *io);
uint64_t evio__sio_tick(const struct evio_scheduled_io *io);

/* registration_set.c: owns every record; the mutex guards the lists. */
struct evio__registration_set {
        pthread_mutex_t lock;
        struct evio_scheduled_io *registered; /* doubly linked, newest first */
        struct evio_scheduled_io *pending;    /* deregistered, freed at the next turn */
        struct evio_scheduled_io *wake_next;  /* after shutdown: next record the driver wakes */
        size_t n_registered;
        _Atomic size_t n_pending; /* read without the lock to skip an empty release */
        bool is_shutdown;
};

int evio__regset_init(struct evio__registration_set *s);
void evio__regset_destroy(struct evio__registration_set *s);
/* Allocate a record and add fd to epfd with it, atomically with respect to a shutdown: either
 * the record is published in the set, or nothing of it remains (and epoll never saw it). */
int evio__regset_register(struct evio__registration_set *s, int epfd, int fd, uint32_t interest,
                          const struct evio_waker *w, struct evio_scheduled_io **out);
bool evio__regset_deregister(struct evio__registration_set *s, struct evio_scheduled_io *io,
                             size_t batch);
size_t evio__regset_release(struct evio__registration_set *s);
size_t evio__regset_pending(struct evio__registration_set *s);
/* Mark the set and every record shut down (false if it already was); the records' wakers are
 * then called on the driver's thread, one evio__regset_next_to_wake() at a time. */
bool evio__regset_shutdown(struct evio__registration_set *s);
struct evio_scheduled_io *evio__regset_next_to_wake(struct evio__registration_set *s);

/* metrics.c */
struct evio__metrics {
        _Atomic uint64_t registered;
        _Atomic uint64_t deregistered;
        _Atomic uint64_t ready;
};
void evio__metrics_inc_registered(struct evio__metrics *m);
void evio__metrics_inc_deregistered(struct evio__metrics *m);
void evio__metrics_add_ready(struct evio__metrics *m, uint64_t n);
void evio__metrics_read(const struct evio__metrics *m, struct evio_driver_metrics *out);

/* wake.c: the wake token, an eventfd. */
int evio__wake_token_open(void);
int evio__wake_token_signal(int fd);
void evio__wake_token_drain(int fd);

/* signal.c: the signal-readiness token, a signalfd. */
int evio__signal_token_open(const sigset_t *signals, int old_fd);
uint64_t evio__signal_token_take(int fd);

/* handle.c */
struct evio_handle {
        int epfd;
        int wake_fd;
        unsigned release_batch;
        _Atomic bool is_shutdown;
        struct evio__registration_set regset;
        struct evio__metrics metrics;
        pthread_mutex_t task_lock; /* guards the task list and every queued task's links */
        struct evio_driver_task *task_head, *task_tail;
        _Atomic bool tasks_posted; /* read without the lock to skip an empty queue */
};

int evio__handle_init(struct evio_handle *h, int epfd, int wake_fd, unsigned release_batch);
void evio__handle_destroy(struct evio_handle *h);
void evio__handle_run_tasks(struct evio_handle *h);

/* timer.c: the heap lives in the driver. */
struct evio__timer_heap {
        struct evio_timer **items;
        struct evio_timer **due; /* the timers a fire pass took out of the heap; cap entries */
        size_t n, cap, n_due;
};
void evio__timer_heap_free(struct evio__timer_heap *th);
struct evio_timer *evio__timer_heap_peek(const struct evio__timer_heap *th);
size_t evio__timer_heap_fire(struct evio__timer_heap *th, uint64_t now_ms);

/* driver.c */
#define DRIVER_WAKE_TOKEN   ((void *)0)
#define DRIVER_SIGNAL_TOKEN ((void *)1)

struct evio_driver {
        int epfd;
        struct epoll_event *events;
        unsigned event_capacity;
        int signal_fd;
        bool signal_ready;
        bool shutdown_woken; /* the shutdown's wakers were called */
        uint64_t pending_signals;
        uint64_t now_ms; /* the clock when the last wait returned */
        /* The thread inside evio_driver_turn() (evio__thread_id()), NULL between turns. */
        _Atomic(const void *) owner;
        struct evio__timer_heap timers;
        struct evio_deferred deferred; /* circular list head; next == &deferred when empty */
        size_t n_deferred;
        struct evio_handle handle;
};

/* A value unique to the calling thread. */
const void *evio__thread_id(void);

/* The calling thread is the one turning d right now. */
static inline bool evio__driver_turning_here(struct evio_driver *d)
{
        return atomic_load_explicit(&d->owner, memory_order_relaxed) == evio__thread_id();
}

/* Driver-only calls are legal on the driver's thread, or on any thread while no turn runs (e.g.
 * cancelling timers after the driver's thread has been joined). Checked with assert(). */
static inline bool evio__driver_may_touch(struct evio_driver *d)
{
        const void *owner = atomic_load_explicit(&d->owner, memory_order_relaxed);
        return owner == NULL || owner == evio__thread_id();
}

static inline struct evio_driver *evio__driver_of(struct evio_handle *h)
{
        return (struct evio_driver *)(void *)((char *)h - offsetof(struct evio_driver, handle));
}

/* deferred.c: the driver-thread queue of evio_driver_defer(). */
void evio__deferred_init(struct evio_driver *d);
static inline bool evio__deferred_empty(const struct evio_driver *d)
{
        return d->deferred.next == &d->deferred;
}
void evio__deferred_run(struct evio_driver *d);

/* shutdown.c: on the driver's thread, call every record's wakers once after a shutdown. */
void evio__shutdown_wake_all(struct evio_driver *d);

#endif
