/* Failure injection for evproxyd-fault, a test-only build of the daemon: -Wl,--wrap shims that
 * make one chosen call fail as the real function can, so error paths run for real. Set by the
 * environment, read once before main():
 *   EVPROXY_FAULT=FN:N[:ERRNO]   fail the Nth counted call of FN ("*": of any shimmed function)
 *   EVPROXY_FAULT_ARM=start|sighup|accept4   start counting at once (default), when the main
 *       loop takes its first SIGHUP, or at the first accept4() (which is call 1)
 *   EVPROXY_FAULT_STALL=FN:MS    once armed, every call of FN first sleeps MS milliseconds (to
 *       hold a reload in progress, say); it still succeeds unless EVPROXY_FAULT fails it
 * The failing call is logged as "<5>fault: ..."; every other call goes to the real function. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <evproxy/driver.h>

enum fault_arm { ARM_START, ARM_SIGHUP, ARM_ACCEPT };

static struct {
        char fn[32];       /* "" = off, "*" = any shimmed function */
        unsigned long nth; /* 1-based */
        int err;           /* 0: the function's usual one */
        enum fault_arm arm;
        atomic_bool armed;
        atomic_ulong calls;
        char stall_fn[32]; /* "" = off */
        unsigned stall_ms;
} F;

/* The shims' own prototypes (every function here has one, as -Wmissing-prototypes wants). */
void *__real_calloc(size_t n, size_t size);
void *__real_malloc(size_t size);
void *__real_realloc(void *p, size_t size);
void *__real_aligned_alloc(size_t align, size_t size);
int __real_socket(int domain, int type, int proto);
int __real_bind(int fd, const struct sockaddr *sa, socklen_t len);
int __real_listen(int fd, int backlog);
int __real_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags);
int __real_connect(int fd, const struct sockaddr *sa, socklen_t len);
int __real_setsockopt(int fd, int level, int name, const void *v, socklen_t len);
int __real_pipe2(int fds[2], int flags);
int __real_epoll_create1(int flags);
int __real_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int __real_eventfd(unsigned int initval, int flags);
int __real_signalfd(int fd, const sigset_t *mask, int flags);
int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __real_evio_timer_arm(struct evio_driver *d, struct evio_timer *t, uint64_t deadline_ms);
int __real_evio_handle_register(struct evio_handle *h, int fd, uint32_t interest,
                                const struct evio_waker *w, struct evio_scheduled_io **out);
uint64_t __real_evio_driver_take_signals(struct evio_driver *d);

void *__wrap_calloc(size_t n, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_realloc(void *p, size_t size);
void *__wrap_aligned_alloc(size_t align, size_t size);
int __wrap_socket(int domain, int type, int proto);
int __wrap_bind(int fd, const struct sockaddr *sa, socklen_t len);
int __wrap_listen(int fd, int backlog);
int __wrap_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags);
int __wrap_connect(int fd, const struct sockaddr *sa, socklen_t len);
int __wrap_setsockopt(int fd, int level, int name, const void *v, socklen_t len);
int __wrap_pipe2(int fds[2], int flags);
int __wrap_epoll_create1(int flags);
int __wrap_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int __wrap_eventfd(unsigned int initval, int flags);
int __wrap_signalfd(int fd, const sigset_t *mask, int flags);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __wrap_evio_timer_arm(struct evio_driver *d, struct evio_timer *t, uint64_t deadline_ms);
int __wrap_evio_handle_register(struct evio_handle *h, int fd, uint32_t interest,
                                const struct evio_waker *w, struct evio_scheduled_io **out);
uint64_t __wrap_evio_driver_take_signals(struct evio_driver *d);

/* "FN:rest": FN into fn (size bytes), returns rest, or NULL if spec has no such form. */
static const char *split_spec(const char *spec, char *fn, size_t size)
{
        const char *colon = spec ? strchr(spec, ':') : NULL;
        size_t len = colon ? (size_t)(colon - spec) : 0;

        if (len == 0 || len >= size)
                return NULL;
        memcpy(fn, spec, len);
        fn[len] = '\0';
        return colon + 1;
}

__attribute__((constructor)) static void fault_init(void)
{
        const char *arm = getenv("EVPROXY_FAULT_ARM"), *rest;
        char *end;

        rest = split_spec(getenv("EVPROXY_FAULT_STALL"), F.stall_fn, sizeof(F.stall_fn));
        if (rest)
                F.stall_ms = (unsigned)strtoul(rest, NULL, 10);
        rest = split_spec(getenv("EVPROXY_FAULT"), F.fn, sizeof(F.fn));
        if (rest) {
                F.nth = strtoul(rest, &end, 10);
                if (*end == ':')
                        F.err = (int)strtol(end + 1, NULL, 10);
        }
        if (arm && strcmp(arm, "sighup") == 0)
                F.arm = ARM_SIGHUP;
        else if (arm && strcmp(arm, "accept4") == 0)
                F.arm = ARM_ACCEPT;
        atomic_store(&F.armed, F.arm == ARM_START);
}

/* Should this call of fn fail? Returns the errno to fail with (err if none was chosen), or 0
 * to call the real function. */
static int fault_hit(const char *fn, int err)
{
        unsigned long n;
        char line[128];
        int len;

        if (F.stall_fn[0] && atomic_load(&F.armed) && strcmp(F.stall_fn, fn) == 0) {
                struct timespec ts = {.tv_sec = F.stall_ms / 1000,
                                      .tv_nsec = (long)(F.stall_ms % 1000) * 1000000};

                nanosleep(&ts, NULL);
        }
        if (!F.fn[0] || !atomic_load(&F.armed) || (strcmp(F.fn, "*") != 0 && strcmp(F.fn, fn) != 0))
                return 0;
        n = atomic_fetch_add(&F.calls, 1) + 1;
        if (n != F.nth)
                return 0;
        err = F.err ? F.err : err;
        len = snprintf(line, sizeof(line), "<5>fault: failing call %lu (%s) with %s\n", n, fn,
                       strerrorname_np(err) ? strerrorname_np(err) : "?");
        if (len > 0)
                (void)!write(STDERR_FILENO, line, (size_t)len);
        return err;
}

#define FAIL_NULL(fn)                                                                              \
        do {                                                                                       \
                if ((errno = fault_hit(#fn, ENOMEM)))                                              \
                        return NULL;                                                               \
        } while (0)
#define FAIL_ERRNO(fn, e)                                                                          \
        do {                                                                                       \
                int err_ = fault_hit(#fn, e);                                                      \
                if (err_) {                                                                        \
                        errno = err_;                                                              \
                        return -1;                                                                 \
                }                                                                                  \
        } while (0)

void *__wrap_calloc(size_t n, size_t size)
{
        FAIL_NULL(calloc);
        return __real_calloc(n, size);
}

void *__wrap_malloc(size_t size)
{
        FAIL_NULL(malloc);
        return __real_malloc(size);
}

void *__wrap_realloc(void *p, size_t size)
{
        FAIL_NULL(realloc);
        return __real_realloc(p, size);
}

void *__wrap_aligned_alloc(size_t align, size_t size)
{
        FAIL_NULL(aligned_alloc);
        return __real_aligned_alloc(align, size);
}

int __wrap_socket(int domain, int type, int proto)
{
        FAIL_ERRNO(socket, EMFILE);
        return __real_socket(domain, type, proto);
}

int __wrap_bind(int fd, const struct sockaddr *sa, socklen_t len)
{
        FAIL_ERRNO(bind, EADDRINUSE);
        return __real_bind(fd, sa, len);
}

int __wrap_listen(int fd, int backlog)
{
        FAIL_ERRNO(listen, EADDRINUSE);
        return __real_listen(fd, backlog);
}

int __wrap_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
        if (F.arm == ARM_ACCEPT)
                atomic_store(&F.armed, true);
        FAIL_ERRNO(accept4, EMFILE);
        return __real_accept4(fd, sa, len, flags);
}

int __wrap_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
        FAIL_ERRNO(connect, EADDRNOTAVAIL); /* out of ephemeral ports */
        return __real_connect(fd, sa, len);
}

int __wrap_setsockopt(int fd, int level, int name, const void *v, socklen_t len)
{
        FAIL_ERRNO(setsockopt, ENOMEM);
        return __real_setsockopt(fd, level, name, v, len);
}

int __wrap_pipe2(int fds[2], int flags)
{
        FAIL_ERRNO(pipe2, EMFILE);
        return __real_pipe2(fds, flags);
}

int __wrap_epoll_create1(int flags)
{
        FAIL_ERRNO(epoll_create1, EMFILE);
        return __real_epoll_create1(flags);
}

int __wrap_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
        /* EPOLL_CTL_DEL of a registered fd cannot run out of anything: never failed here. */
        if (op != EPOLL_CTL_DEL)
                FAIL_ERRNO(epoll_ctl, ENOMEM);
        return __real_epoll_ctl(epfd, op, fd, ev);
}

int __wrap_eventfd(unsigned int initval, int flags)
{
        FAIL_ERRNO(eventfd, EMFILE);
        return __real_eventfd(initval, flags);
}

int __wrap_signalfd(int fd, const sigset_t *mask, int flags)
{
        FAIL_ERRNO(signalfd, EMFILE);
        return __real_signalfd(fd, mask, flags);
}

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
        int err = fault_hit("pthread_create", EAGAIN);

        return err ? err : __real_pthread_create(t, a, fn, arg);
}

int __wrap_evio_timer_arm(struct evio_driver *d, struct evio_timer *t, uint64_t deadline_ms)
{
        int err = fault_hit("evio_timer_arm", ENOMEM);

        return err ? -err : __real_evio_timer_arm(d, t, deadline_ms);
}

int __wrap_evio_handle_register(struct evio_handle *h, int fd, uint32_t interest,
                                const struct evio_waker *w, struct evio_scheduled_io **out)
{
        int err = fault_hit("evio_handle_register", ENOMEM);

        return err ? -err : __real_evio_handle_register(h, fd, interest, w, out);
}

/* Not failed: it arms counting at the first SIGHUP the main loop takes (EVPROXY_FAULT_ARM). */
uint64_t __wrap_evio_driver_take_signals(struct evio_driver *d)
{
        uint64_t sigs = __real_evio_driver_take_signals(d);

        if (F.arm == ARM_SIGHUP && (sigs & (UINT64_C(1) << (SIGHUP - 1))))
                atomic_store(&F.armed, true);
        return sigs;
}
