/* Private layout of the driver's records, shared by core/src only (and by the unit tests, which
 * check the bookkeeping directly). Nothing here is part of the installed API. */
#ifndef EVPROXY_CORE_INTERNAL_H
#define EVPROXY_CORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <evproxy/driver.h>

/* One atomic word per resource: bits 0-5 Ready, bit 6 shutdown, bits 7-63 the tick. */
#define SIO_READY_MASK ((uint64_t)READY_ALL)
#define SIO_SHUTDOWN   ((uint64_t)1 << 6)
#define SIO_TICK_SHIFT 7
#define SIO_TICK_MAX   ((UINT64_C(1) << (64 - SIO_TICK_SHIFT)) - 1)

/* One record is exactly one 64-byte cache line, allocated 64-byte aligned: what an event touches
 * (state, wakers, the lock) and the list links never share a line with another record. The lock
 * is a one-byte spinlock, not a pthread mutex (40 bytes): it is held only to copy or store a
 * waker, never across a call, so it is uncontended in practice and spinning is the cheap case. */
struct scheduled_io {
        _Atomic uint64_t state;
        struct waker wakers[2];
        int fd;
        uint16_t interest;
        bool released;                    /* deregistered: wakers dropped, freed at next turn */
        _Atomic uint8_t lock;             /* guards wakers and released */
        struct scheduled_io *prev, *next; /* registered list, or pending list (next only) */
};
_Static_assert(sizeof(struct scheduled_io) == 64, "a record is one cache line");

/* scheduled_io.c */
void sio_init(struct scheduled_io *io, int fd, uint32_t interest, const struct waker *w);
uint32_t sio_set_readiness(struct scheduled_io *io, uint32_t ready);
void sio_wake(struct scheduled_io *io, uint32_t ready);
void sio_set_shutdown(struct scheduled_io *io);
void sio_release(struct scheduled_io *io);
uint64_t sio_tick(const struct scheduled_io *io);

/* registration_set.c: owns every record; the mutex guards the lists. */
struct registration_set {
        pthread_mutex_t lock;
        struct scheduled_io *registered; /* doubly linked */
        struct scheduled_io *pending;    /* deregistered, freed at the next turn */
        size_t n_registered;
        _Atomic size_t n_pending; /* read without the lock to skip an empty release */
        unsigned release_holds;   /* >0 while shutdown walks records outside the lock */
        bool is_shutdown;
};

int regset_init(struct registration_set *s);
void regset_destroy(struct registration_set *s);
int regset_allocate(struct registration_set *s, int fd, uint32_t interest, const struct waker *w,
                    struct scheduled_io **out);
void regset_remove_unpublished(struct registration_set *s, struct scheduled_io *io);
bool regset_deregister(struct registration_set *s, struct scheduled_io *io, size_t batch);
size_t regset_release(struct registration_set *s);
size_t regset_pending(struct registration_set *s);
int regset_shutdown(struct registration_set *s, struct scheduled_io ***out, size_t *n);
void regset_shutdown_done(struct registration_set *s, struct scheduled_io **ios);

/* metrics.c */
struct metrics {
        _Atomic uint64_t registered;
        _Atomic uint64_t deregistered;
        _Atomic uint64_t ready;
};
void metrics_inc_registered(struct metrics *m);
void metrics_inc_deregistered(struct metrics *m);
void metrics_add_ready(struct metrics *m, uint64_t n);
void metrics_read(const struct metrics *m, struct driver_metrics *out);

/* wake.c: the wake token, an eventfd. */
int wake_token_open(void);
int wake_token_signal(int fd);
void wake_token_drain(int fd);

/* signal.c: the signal-readiness token, a signalfd. */
int signal_token_open(const sigset_t *signals, int old_fd);
uint64_t signal_token_take(int fd);

/* handle.c */
struct handle {
        int epfd;
        int wake_fd;
        unsigned release_batch;
        _Atomic bool is_shutdown;
        struct registration_set regset;
        struct metrics metrics;
        pthread_mutex_t task_lock;
        struct driver_task *task_head, *task_tail;
        _Atomic bool tasks_posted; /* read without the lock to skip an empty queue */
};

int handle_init(struct handle *h, int epfd, int wake_fd, unsigned release_batch);
void handle_destroy(struct handle *h);
void handle_run_tasks(struct handle *h);

/* timer.c: the heap lives in the driver. */
struct timer_heap {
        struct timer **items;
        size_t n, cap;
};
void timer_heap_free(struct timer_heap *th);
struct timer *timer_heap_peek(const struct timer_heap *th);
size_t timer_heap_fire(struct timer_heap *th, uint64_t now_ms);

/* driver.c */
#define DRIVER_WAKE_TOKEN   ((void *)0)
#define DRIVER_SIGNAL_TOKEN ((void *)1)

struct driver {
        int epfd;
        struct epoll_event *events;
        unsigned event_capacity;
        int signal_fd;
        bool signal_ready;
        uint64_t pending_signals;
        struct timer_heap timers;
        struct handle handle;
};

#endif
