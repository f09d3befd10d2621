/* Driver: owns the epoll fd, the event buffer, the wake and signal tokens and the timers.
 * driver_turn(): free records released before this turn; wait (bounded by the nearest timer);
 * dispatch each event (wake token: drain; signal token: mark; else set readiness and wake);
 * run posted tasks; fire due timers. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_EVENT_CAPACITY 1024
#define DEFAULT_RELEASE_BATCH  16

static int add_token(int epfd, int fd, void *token)
{
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = token};

        return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == -1 ? -errno : 0;
}

int driver_new(struct driver **out, const struct driver_config *cfg)
{
        struct driver *d = calloc(1, sizeof(*d));
        unsigned cap = cfg && cfg->event_capacity ? cfg->event_capacity : DEFAULT_EVENT_CAPACITY;
        unsigned batch = cfg && cfg->release_batch ? cfg->release_batch : DEFAULT_RELEASE_BATCH;
        int wake_fd = -1, r;

        if (!d)
                return -ENOMEM;
        d->signal_fd = -1;
        d->event_capacity = cap;
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
        wake_fd = wake_token_open();
        if (wake_fd < 0) {
                r = wake_fd;
                goto err_close_epoll;
        }
        r = add_token(d->epfd, wake_fd, DRIVER_WAKE_TOKEN);
        if (r < 0)
                goto err_close_wake;
        r = handle_init(&d->handle, d->epfd, wake_fd, batch);
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

void driver_free(struct driver *d)
{
        if (!d)
                return;
        timer_heap_free(&d->timers);
        close(d->handle.wake_fd);
        handle_destroy(&d->handle);
        if (d->signal_fd >= 0)
                close(d->signal_fd);
        close(d->epfd);
        free(d->events);
        free(d);
}

struct handle *driver_handle(struct driver *d)
{
        return &d->handle;
}

int driver_next_timeout(struct driver *d, int timeout_ms)
{
        struct timer *t = timer_heap_peek(&d->timers);
        uint64_t now, wait;

        if (!t)
                return timeout_ms;
        now = driver_now_ms();
        wait = t->deadline_ms > now ? t->deadline_ms - now : 0;
        if (wait > INT_MAX)
                wait = INT_MAX;
        if (timeout_ms < 0 || (uint64_t)timeout_ms > wait)
                return (int)wait;
        return timeout_ms;
}

static unsigned dispatch(struct driver *d, int n)
{
        unsigned io_events = 0;

        for (int i = 0; i < n; i++) {
                void *token = d->events[i].data.ptr;
                struct scheduled_io *io;
                uint32_t ready;

                if (token == DRIVER_WAKE_TOKEN) {
                        wake_token_drain(d->handle.wake_fd);
                        continue;
                }
                if (token == DRIVER_SIGNAL_TOKEN) {
                        d->signal_ready = true;
                        continue;
                }
                io = token;
                ready = ready_from_epoll(d->events[i].events);
                sio_set_readiness(io, ready);
                sio_wake(io, ready);
                io_events++;
        }
        return io_events;
}

int driver_turn(struct driver *d, int timeout_ms)
{
        unsigned io_events;
        int n;

        if (handle_is_shutdown(&d->handle))
                return -ESHUTDOWN;
        regset_release(&d->handle.regset);
        n = epoll_wait(d->epfd, d->events, (int)d->event_capacity,
                       driver_next_timeout(d, timeout_ms));
        if (n == -1) {
                if (errno != EINTR)
                        return -errno;
                n = 0;
        }
        io_events = dispatch(d, n);
        metrics_add_ready(&d->handle.metrics, io_events);
        handle_run_tasks(&d->handle);
        if (d->timers.n)
                timer_heap_fire(&d->timers, driver_now_ms());
        return handle_is_shutdown(&d->handle) ? -ESHUTDOWN : (int)io_events;
}

int driver_enable_signals(struct driver *d, const sigset_t *signals)
{
        int fd = signal_token_open(signals, d->signal_fd);
        int r;

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

uint64_t driver_take_signals(struct driver *d)
{
        if (!d->signal_ready || d->signal_fd < 0)
                return 0;
        d->signal_ready = false;
        return signal_token_take(d->signal_fd);
}
