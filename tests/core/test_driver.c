/* Driver: edge-triggered dispatch with EPOLLRDHUP, HUP/ERR mapping, spurious wake-ups, deferred
 * release of deregistered records, bookkeeping when epoll_ctl fails, exact metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "common.h"

struct seen {
        int calls;
        uint32_t ready;
};

static void on_ready(void *arg, uint32_t ready)
{
        struct seen *s = arg;
        s->calls++;
        s->ready |= ready;
}

static struct evio_driver *new_driver(unsigned batch)
{
        struct evio_driver *d;
        struct evio_driver_config cfg = {.release_batch = batch};
        assert_int_equal(evio_driver_new(&d, &cfg), 0);
        return d;
}

/* A driver with sv[0] of a socketpair registered for an interest, its callbacks counted in s.
 * On the heap: the waker points at s. fx_close deregisters and closes what is still open
 * (a test that closes an end sets it to -1). */
struct fx {
        struct evio_driver *d;
        struct evio_scheduled_io *io;
        struct seen s;
        struct evio_waker w;
        int sv[2];
};

static struct fx *fx_open(uint32_t interest)
{
        struct fx *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        f->d = new_driver(0);
        f->w = (struct evio_waker){on_ready, &f->s};
        make_pair(f->sv);
        assert_int_equal(
            evio_handle_register(evio_driver_handle(f->d), f->sv[0], interest, &f->w, &f->io), 0);
        return f;
}

static void fx_close(struct fx *f)
{
        evio_handle_deregister(evio_driver_handle(f->d), f->io);
        for (int i = 0; i < 2; i++)
                if (f->sv[i] >= 0)
                        close(f->sv[i]);
        evio_driver_free(f->d);
        free(f);
}

static void test_readable_edge_once(void **state)
{
        struct fx *f = fx_open(EVIO_INTEREST_READABLE);

        assert_int_equal(write(f->sv[1], "x", 1), 1);
        assert_int_equal(evio_driver_turn(f->d, 1000), 1);
        assert_int_equal(f->s.calls, 1);
        assert_int_equal(f->s.ready, EVIO_READY_READABLE);
        /* Edge-triggered: no new event until something new happens. */
        assert_int_equal(evio_driver_turn(f->d, 0), 0);
        assert_int_equal(f->s.calls, 1);
        fx_close(f);
}

static void test_peer_shutdown_gives_read_closed(void **state)
{
        struct fx *f = fx_open(EVIO_INTEREST_READABLE);

        assert_int_equal(shutdown(f->sv[1], SHUT_WR), 0);
        assert_int_equal(evio_driver_turn(f->d, 1000), 1);
        assert_true(f->s.ready & EVIO_READY_READ_CLOSED);
        assert_false(f->s.ready & EVIO_READY_WRITE_CLOSED); /* only the peer's write side closed */
        struct evio_ready_event ev = evio_sio_ready(f->io, EVIO_INTEREST_READABLE);
        assert_true(evio_sio_clear_readiness(f->io, ev));
        assert_true(evio_sio_ready(f->io, EVIO_INTEREST_READABLE).ready &
                    EVIO_READY_READ_CLOSED); /* sticky */
        fx_close(f);
}

static void test_peer_close_gives_hup(void **state)
{
        struct fx *f = fx_open(EVIO_INTEREST_READABLE | EVIO_INTEREST_WRITABLE);

        evio_driver_turn(f->d, 100); /* initial writability */
        f->s = (struct seen){0};
        close(f->sv[1]);
        f->sv[1] = -1;
        assert_int_equal(evio_driver_turn(f->d, 1000), 1);
        assert_true(f->s.ready & EVIO_READY_READ_CLOSED);
        assert_true(f->s.ready & EVIO_READY_WRITE_CLOSED);
        fx_close(f);
}

static void test_refused_connect_gives_error(void **state)
{
        struct evio_driver *d = new_driver(0);
        struct evio_scheduled_io *io;
        struct seen s = {0};
        struct evio_waker w = {on_ready, &s};
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sa);

        /* A port bound but not listening refuses connections. */
        int holder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(bind(holder, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(getsockname(holder, (struct sockaddr *)&sa, &len), 0);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        assert_int_equal(evio_handle_register(evio_driver_handle(d), fd,
                                              EVIO_INTEREST_READABLE | EVIO_INTEREST_WRITABLE, &w,
                                              &io),
                         0);
        int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        assert_true(r == 0 || errno == EINPROGRESS || errno == ECONNREFUSED);
        for (int i = 0; i < 20 && !(s.ready & EVIO_READY_ERROR); i++)
                evio_driver_turn(d, 100);
        assert_true(s.ready & EVIO_READY_ERROR);
        assert_true(s.ready & EVIO_READY_WRITE_CLOSED);
        evio_handle_deregister(evio_driver_handle(d), io);
        close(fd);
        close(holder);
        evio_driver_free(d);
}

static void test_spurious_wakeup_tolerated(void **state)
{
        struct fx *f = fx_open(EVIO_INTEREST_READABLE);
        struct evio_ready_event ev;
        char buf[8];

        /* Readiness with no data behind it: the consumer reads EAGAIN and clears. */
        evio__sio_wake(f->io, evio__sio_set_readiness(f->io, EVIO_READY_READABLE));
        assert_int_equal(f->s.calls, 1);
        assert_int_equal(evio_sio_poll_ready(f->io, EVIO_DIRECTION_READ, NULL, &ev), 0);
        assert_int_equal(read(f->sv[0], buf, sizeof(buf)), -1);
        assert_int_equal(errno, EAGAIN);
        assert_true(evio_sio_clear_readiness(f->io, ev));
        /* A wake-up with no I/O event at all. */
        evio_handle_unpark(evio_driver_handle(f->d));
        assert_int_equal(evio_driver_turn(f->d, 1000), 0);
        /* Real data still arrives as a fresh event. */
        assert_int_equal(write(f->sv[1], "y", 1), 1);
        assert_int_equal(evio_driver_turn(f->d, 1000), 1);
        assert_int_equal(f->s.calls, 2);
        assert_int_equal(evio_sio_poll_ready(f->io, EVIO_DIRECTION_READ, NULL, &ev), 0);
        fx_close(f);
}

/* Two readable resources whose callbacks each deregister the other: whichever runs first, the
 * second event of the batch points at a record already deregistered. If that record were freed
 * at once, ASan would report the use after free here. */
struct pair_ctx {
        struct evio_driver *d;
        struct evio_scheduled_io *io[2];
        int fd[2];
        int calls;
};

static void deregister_other(struct pair_ctx *c, int me)
{
        int other = 1 - me;
        c->calls++;
        if (c->io[other]) {
                evio_handle_deregister(evio_driver_handle(c->d), c->io[other]);
                close(c->fd[other]);
                c->io[other] = NULL;
        }
}

static void on_first(void *arg, uint32_t ready)
{
        deregister_other(arg, 0);
}

static void on_second(void *arg, uint32_t ready)
{
        deregister_other(arg, 1);
}

static void test_deregistered_record_freed_next_turn(void **state)
{
        struct pair_ctx c = {.d = new_driver(0)};
        int sv0[2], sv1[2];
        struct evio_waker w0 = {on_first, &c}, w1 = {on_second, &c};

        make_pair(sv0);
        make_pair(sv1);
        c.fd[0] = sv0[0];
        c.fd[1] = sv1[0];
        assert_int_equal(evio_handle_register(evio_driver_handle(c.d), c.fd[0],
                                              EVIO_INTEREST_READABLE, &w0, &c.io[0]),
                         0);
        assert_int_equal(evio_handle_register(evio_driver_handle(c.d), c.fd[1],
                                              EVIO_INTEREST_READABLE, &w1, &c.io[1]),
                         0);
        assert_int_equal(write(sv0[1], "a", 1), 1);
        assert_int_equal(write(sv1[1], "b", 1), 1);
        assert_int_equal(evio_driver_turn(c.d, 1000), 2); /* both events in one batch */
        assert_int_equal(c.calls, 1);                     /* the deregistered one got no callback */
        assert_int_equal(evio__regset_pending(&evio_driver_handle(c.d)->regset), 1);
        evio_driver_turn(c.d, 0);
        assert_int_equal(evio__regset_pending(&evio_driver_handle(c.d)->regset), 0);
        for (int i = 0; i < 2; i++) {
                if (c.io[i]) {
                        evio_handle_deregister(evio_driver_handle(c.d), c.io[i]);
                        close(c.fd[i]);
                }
        }
        close(sv0[1]);
        close(sv1[1]);
        evio_driver_free(c.d);
}

static void test_bookkeeping_when_epoll_ctl_fails(void **state)
{
        struct evio_driver *d = new_driver(0);
        struct evio_handle *h = evio_driver_handle(d);
        struct evio_scheduled_io *io;
        struct evio_driver_metrics m;
        int sv[2];

        make_pair(sv);
        assert_int_equal(evio_handle_register(h, sv[0], EVIO_INTEREST_READABLE, NULL, &io), 0);
        close(sv[0]); /* closed before deregistration: epoll_ctl(DEL) fails */
        assert_int_equal(evio_handle_deregister(h, io), -EBADF);
        assert_int_equal(h->regset.n_registered, 0);
        assert_int_equal(evio__regset_pending(&h->regset), 1);
        evio_driver_turn(d, 0);
        assert_int_equal(evio__regset_pending(&h->regset), 0);

        /* A failed registration leaves nothing behind (a regular file cannot be polled). */
        int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(evio_handle_register(h, fd, EVIO_INTEREST_READABLE, NULL, &io), -EPERM);
        assert_int_equal(h->regset.n_registered, 0);
        assert_int_equal(evio_handle_register(h, -1, EVIO_INTEREST_READABLE, NULL, &io), -EBADF);
        evio_handle_metrics(h, &m);
        assert_int_equal(m.registered_count, 1);
        assert_int_equal(m.deregistered_count, 1);
        close(fd);
        close(sv[1]);
        evio_driver_free(d);
}

struct dereg_job {
        struct evio_handle *h;
        struct evio_scheduled_io **ios;
        int n;
};

static void *deregister_later(void *arg)
{
        struct dereg_job *j = arg;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        for (int i = 0; i < j->n; i++)
                evio_handle_deregister(j->h, j->ios[i]);
        return NULL;
}

static uint64_t now_ms(void)
{
        return evio_now_ms();
}

static void test_many_pending_releases_wake_driver(void **state)
{
        enum { N = 16 };
        struct evio_driver *d = new_driver(N);
        struct evio_scheduled_io *ios[N];
        int p[N][2];
        pthread_t th;

        for (int i = 0; i < N; i++) {
                make_pipe(p[i]);
                assert_int_equal(evio_handle_register(evio_driver_handle(d), p[i][0],
                                                      EVIO_INTEREST_READABLE, NULL, &ios[i]),
                                 0);
        }
        struct dereg_job job = {evio_driver_handle(d), ios, N};
        assert_int_equal(pthread_create(&th, NULL, deregister_later, &job), 0);
        uint64_t t0 = now_ms();
        int woke = 0;
        while (now_ms() - t0 < 5000 && evio__regset_pending(&evio_driver_handle(d)->regset) < N)
                woke += evio_driver_turn(d, 10000) >= 0;
        /* Without the batch wake-up the turn would sleep its full 10 s. */
        assert_true(now_ms() - t0 < 5000);
        pthread_join(th, NULL);
        evio_driver_turn(d, 0);
        assert_int_equal(evio__regset_pending(&evio_driver_handle(d)->regset), 0);
        for (int i = 0; i < N; i++) {
                close(p[i][0]);
                close(p[i][1]);
        }
        evio_driver_free(d);
}

static void test_metrics_exact(void **state)
{
        enum { N = 50, DEREG = 30, WRITES = 20 };
        struct evio_driver *d = new_driver(0);
        struct evio_handle *h = evio_driver_handle(d);
        struct evio_scheduled_io *ios[N];
        struct seen s = {0};
        struct evio_waker w = {on_ready, &s};
        int sv[N][2];
        struct evio_driver_metrics m;

        for (int i = 0; i < N; i++) {
                make_pair(sv[i]);
                assert_int_equal(
                    evio_handle_register(h, sv[i][0], EVIO_INTEREST_READABLE, &w, &ios[i]), 0);
        }
        for (int i = 0; i < DEREG; i++)
                assert_int_equal(evio_handle_deregister(h, ios[i]), 0);
        for (int i = DEREG; i < DEREG + WRITES; i++)
                assert_int_equal(write(sv[i][1], "z", 1), 1);
        int got = 0;
        for (int i = 0; i < 20 && got < WRITES; i++)
                got += evio_driver_turn(d, 100);
        assert_int_equal(got, WRITES);
        evio_handle_metrics(h, &m);
        assert_int_equal(m.registered_count, N);
        assert_int_equal(m.deregistered_count, DEREG);
        assert_int_equal(m.ready_count, WRITES);
        assert_int_equal(s.calls, WRITES);
        for (int i = DEREG; i < N; i++)
                evio_handle_deregister(h, ios[i]);
        evio_handle_metrics(h, &m);
        assert_int_equal(m.deregistered_count, N);
        for (int i = 0; i < N; i++) {
                close(sv[i][0]);
                close(sv[i][1]);
        }
        evio_driver_free(d);
}

/* Deregistering without epoll_ctl, then closing: the fd number comes back from the next
 * socketpair and registers again (epoll would say EEXIST had the old entry survived), and only
 * the new record hears about new data. */
static void test_deregister_before_close(void **state)
{
        struct evio_driver *d = new_driver(0);
        struct evio_handle *h = evio_driver_handle(d);
        struct evio_scheduled_io *old_io, *new_io;
        struct seen old_seen = {0}, new_seen = {0};
        struct evio_waker old_w = {on_ready, &old_seen}, new_w = {on_ready, &new_seen};
        struct evio_driver_metrics m;
        int sv[2], sv2[2];

        make_pair(sv);
        assert_int_equal(evio_handle_register(h, sv[0], EVIO_INTEREST_READABLE, &old_w, &old_io),
                         0);
        assert_int_equal(write(sv[1], "a", 1), 1);
        evio_handle_deregister_before_close(h, old_io);
        int old_fd = sv[0];
        close(sv[0]);
        close(sv[1]);
        evio_driver_turn(d, 0); /* the event of the closed fd, if any, reaches no waker */
        assert_int_equal(old_seen.calls, 0);
        make_pair(sv2);
        assert_int_equal(sv2[0], old_fd);
        assert_int_equal(evio_handle_register(h, sv2[0], EVIO_INTEREST_READABLE, &new_w, &new_io),
                         0);
        assert_int_equal(write(sv2[1], "b", 1), 1);
        assert_int_equal(evio_driver_turn(d, 1000), 1);
        assert_int_equal(new_seen.calls, 1);
        assert_int_equal(old_seen.calls, 0);
        evio_handle_metrics(h, &m);
        assert_int_equal(m.registered_count, 2);
        assert_int_equal(m.deregistered_count, 1);
        assert_int_equal(evio__regset_pending(&h->regset), 0);
        evio_handle_deregister(h, new_io);
        close(sv2[0]);
        close(sv2[1]);
        evio_driver_free(d);
}

static void test_reregister_changes_interest(void **state)
{
        struct fx *f = fx_open(EVIO_INTEREST_READABLE);

        assert_int_equal(evio_driver_turn(f->d, 0), 0);
        assert_int_equal(
            evio_handle_reregister(evio_driver_handle(f->d), f->io, EVIO_INTEREST_WRITABLE), 0);
        assert_int_equal(evio_driver_turn(f->d, 1000), 1);
        assert_true(f->s.ready & EVIO_READY_WRITABLE);
        fx_close(f);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_readable_edge_once),
            cmocka_unit_test(test_peer_shutdown_gives_read_closed),
            cmocka_unit_test(test_peer_close_gives_hup),
            cmocka_unit_test(test_refused_connect_gives_error),
            cmocka_unit_test(test_spurious_wakeup_tolerated),
            cmocka_unit_test(test_deregistered_record_freed_next_turn),
            cmocka_unit_test(test_bookkeeping_when_epoll_ctl_fails),
            cmocka_unit_test(test_many_pending_releases_wake_driver),
            cmocka_unit_test(test_metrics_exact),
            cmocka_unit_test(test_reregister_changes_interest),
            cmocka_unit_test(test_deregister_before_close),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
