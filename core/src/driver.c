/* Driver: owns the epoll fd, the event buffer, the wake and signal tokens, the timers and the
 * deferred queue. evio_driver_turn(): free records released before this turn; wait (bounded by
 * the nearest timer, not at all with deferred work queued); dispatch each event (wake token:
 * drain; signal token: mark; else set readiness and wake); run posted tasks; fire due timers;
 * run the deferred queue. After a shutdown, a turn calls every record's wakers once instead. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_EVENT_CAPACITY 1024
#define DEFAULT_RELEASE_BATCH  16

const void *evio__thread_id(void)
{
        static _Thread_local char here;
        return &here;
}

static int add_token(int epfd, int fd, void *token)
{
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = token};

        return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == -1 ? -errno : 0;
}

int evio_driver_new(struct evio_driver **out, const struct evio_driver_config *cfg)
{
        struct evio_driver *d = calloc(1, sizeof(*d));
        unsigned cap = cfg && cfg->event_capacity ? cfg->event_capacity : DEFAULT_EVENT_CAPACITY;
        unsigned batch = cfg && cfg->release_batch ? cfg->release_batch : DEFAULT_RELEASE_BATCH;
        int wake_fd = -1, r;

        if (!d)
                return -ENOMEM;
        d->signal_fd = -1;
        d->event_capacity = cap;
        d->now_ms = evio_now_ms();
        atomic_init(&d->owner, NULL);
        evio__deferred_init(d);
        d->events = calloc(cap, sizeof(*d->events));
        if (!d->events) {
                r = -ENOMEM;
                goto err_free;
        }
        d->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (d->epfd == -1) {
                r = -errno;
                goto err_free;
        }
        wake_fd = evio__wake_token_open();
        if (wake_fd < 0) {
                r = wake_fd;
                goto err_close_epoll;
        }
        r = add_token(d->epfd, wake_fd, DRIVER_WAKE_TOKEN);
        if (r < 0)
                goto err_close_wake;
        r = evio__handle_init(&d->handle, d->epfd, wake_fd, batch);
        if (r < 0)
                goto err_close_wake;
        *out = d;
        return 0;

err_close_wake:
        close(wake_fd);
err_close_epoll:
        close(d->epfd);
err_free:
        free(d->events);
        free(d);
        return r;
}

void evio_driver_free(struct evio_driver *d)
{
        if (!d)
                return;
        assert(atomic_load(&d->owner) == NULL); /* not from inside a turn */
        evio__timer_heap_free(&d->timers);
        close(d->handle.wake_fd);
        evio__handle_destroy(&d->handle);
        if (d->signal_fd >= 0)
                close(d->signal_fd);
        close(d->epfd);
        free(d->events);
        free(d);
}

struct evio_handle *evio_driver_handle(struct evio_driver *d)
{
        return &d->handle;
}

uint64_t evio_driver_now_ms(const struct evio_driver *d)
{
        return d->now_ms;
}

int evio_driver_next_timeout(struct evio_driver *d, int timeout_ms)
{
        struct evio_timer *t = evio__timer_heap_peek(&d->timers);
        uint64_t now, wait;

        if (!evio__deferred_empty(d))
                return 0;
        if (!t)
                return timeout_ms;
        now = evio_now_ms();
        wait = t->deadline_ms > now ? t->deadline_ms - now : 0;
        if (wait > INT_MAX)
                wait = INT_MAX;
        if (timeout_ms < 0 || (uint64_t)timeout_ms > wait)
                return (int)wait;
        return timeout_ms;
}

static unsigned dispatch(struct evio_driver *d, int n)
{
        unsigned io_events = 0;

        for (int i = 0; i < n; i++) {
                void *token = d->events[i].data.ptr;
                struct evio_scheduled_io *io;
                uint32_t ready;

                if (token == DRIVER_WAKE_TOKEN) {
                        evio__wake_token_drain(d->handle.wake_fd);
                        continue;
                }
                if (token == DRIVER_SIGNAL_TOKEN) {
                        d->signal_ready = true;
                        continue;
                }
                io = token;
                ready = evio__ready_from_epoll(d->events[i].events);
                evio__sio_set_readiness(io, ready);
                evio__sio_wake(io, ready);
                io_events++;
        }
        return io_events;
}

/* The turn proper, between the owner marks. */
static int turn(struct evio_driver *d, int timeout_ms)
{
        unsigned io_events;
        int n;

        evio__regset_release(&d->handle.regset);
        n = epoll_wait(d->epfd, d->events, (int)d->event_capacity,
                       evio_driver_next_timeout(d, timeout_ms));
        if (n == -1) {
                if (errno != EINTR)
                        return -errno;
                n = 0;
        }
        d->now_ms = evio_now_ms();
        io_events = dispatch(d, n);
        evio__metrics_add_ready(&d->handle.metrics, io_events);
        evio__handle_run_tasks(&d->handle);
        if (d->timers.n)
                evio__timer_heap_fire(&d->timers, d->now_ms);
        evio__deferred_run(d);
        return (int)io_events;
}

int evio_driver_turn(struct evio_driver *d, int timeout_ms)
{
        const void *idle = NULL;
        int r = -ESHUTDOWN;

        /* One turn at a time: not re-entered from a callback, nor run by two threads. */
        if (!atomic_compare_exchange_strong(&d->owner, &idle, evio__thread_id()))
                assert(!"evio_driver_turn() re-entered or run by two threads at once");
        if (!evio_handle_is_shutdown(&d->handle))
                r = turn(d, timeout_ms);
        if (evio_handle_is_shutdown(&d->handle)) {
                evio__shutdown_wake_all(d);
                r = -ESHUTDOWN;
        }
        atomic_store(&d->owner, NULL);
        return r;
}

int evio_driver_enable_signals(struct evio_driver *d, const sigset_t *signals)
{
        int fd, r;

        assert(evio__driver_may_touch(d));
        fd = evio__signal_token_open(signals, d->signal_fd);
        if (fd < 0)
                return fd;
        if (d->signal_fd == -1) {
                r = add_token(d->epfd, fd, DRIVER_SIGNAL_TOKEN);
                if (r < 0) {
                        close(fd);
                        return r;
                }
                d->signal_fd = fd;
        }
        /* A signal already pending when the token was added shows up on the first take. */
        d->signal_ready = true;
        return 0;
}

uint64_t evio_driver_take_signals(struct evio_driver *d)
{
        assert(evio__driver_may_touch(d));
        if (!d->signal_ready || d->signal_fd < 0)
                return 0;
        d->signal_ready = false;
        return evio__signal_token_take(d->signal_fd);
}
