/* Registration (core/src/registration.c) over real socketpairs and a real driver: polling,
 * try_io clearing readiness only on EAGAIN and never readiness that arrived during the I/O,
 * EINTR, the fd's ownership through open failures, close and deregister, and shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include <evproxy/registration.h>

#include "common.h"

struct rig {
        struct evio_driver *d;
        struct evio_handle *h;
        int sv[2]; /* [0] registered, [1] the peer */
        struct evio_registration r;
        int woken;
};

static void count_wake(void *arg, uint32_t ready)
{
        (*(int *)arg)++;
}

static void rig_open(struct rig *g)
{
        const struct evio_waker wk = {.fn = count_wake, .arg = &g->woken};

        memset(g, 0, sizeof(*g));
        assert_int_equal(evio_driver_new(&g->d, NULL), 0);
        g->h = evio_driver_handle(g->d);
        make_pair(g->sv);
        assert_int_equal(evio_reg_open(&g->r, g->h, g->sv[0],
                                       EVIO_INTEREST_READABLE | EVIO_INTEREST_WRITABLE, &wk),
                         0);
        assert_int_equal(g->r.fd, g->sv[0]);
        assert_true(evio_reg_is_registered(&g->r));
        evio_driver_turn(g->d, 0); /* the first event: writable */
}

static void rig_close(struct rig *g)
{
        evio_reg_close(&g->r);
        close(g->sv[1]);
        evio_driver_free(g->d);
}

static void peer_send(struct rig *g, size_t n)
{
        char buf[256] = {0};

        assert_true(n <= sizeof(buf));
        assert_int_equal(send(g->sv[1], buf, n, 0), (ssize_t)n);
        evio_driver_turn(g->d, 100);
}

static bool fd_open(int fd)
{
        return fcntl(fd, F_GETFD) != -1;
}

struct io_arg {
        size_t want; /* bytes to read at most */
        int calls;
        int eintr;      /* report EINTR this many times first */
        struct rig *g;  /* set: data arrives (and the driver turns) during the call */
        ssize_t result; /* nonzero: return this instead of reading */
};

static ssize_t do_recv(int fd, void *arg)
{
        struct io_arg *a = arg;
        char buf[256];
        ssize_t n;

        a->calls++;
        if (a->eintr > 0) {
                a->eintr--;
                return -EINTR;
        }
        if (a->result)
                return a->result;
        n = recv(fd, buf, a->want < sizeof(buf) ? a->want : sizeof(buf), 0);
        if (n < 0)
                n = -errno;
        if (a->g) /* the driver, on another thread, sees a new byte before our EAGAIN counts */
                peer_send(a->g, 1);
        return n;
}

static void test_poll_ready_follows_the_socket(void **state)
{
        struct evio_ready_event ev;
        struct rig g;

        rig_open(&g);
        assert_int_equal(evio_reg_poll_ready(&g.r, EVIO_DIRECTION_READ, &ev), -EAGAIN);
        assert_int_equal(evio_reg_poll_ready(&g.r, EVIO_DIRECTION_WRITE, &ev), 0);
        assert_true(ev.ready & EVIO_READY_WRITABLE);
        g.woken = 0;
        peer_send(&g, 5);
        assert_int_equal(g.woken, 1);
        assert_int_equal(evio_reg_poll_ready(&g.r, EVIO_DIRECTION_READ, &ev), 0);
        assert_true(ev.ready & EVIO_READY_READABLE);
        assert_int_equal(evio_reg_poll_ready(&g.r, EVIO_DIRECTION_READ, NULL), 0);
        rig_close(&g);
}

static void test_try_io_clears_only_on_eagain(void **state)
{
        struct io_arg a = {.want = 10};
        struct evio_ready_event ev;
        struct rig g;

        rig_open(&g);
        peer_send(&g, 100);
        assert_int_equal(evio_reg_try_io(&g.r, EVIO_DIRECTION_READ, do_recv, &a, &ev), 10);
        assert_true(ev.ready & EVIO_READY_READABLE);
        assert_int_equal(evio_reg_poll_ready(&g.r, EVIO_DIRECTION_READ, NULL), 0);
        /* Reading all that is there is not EAGAIN: readiness stays until a read says so. */
        a.want = 200;
        assert_int_equal(evio_reg_try_io(&g.r, EVIO_DIRECTION_READ, do_recv, &a, NULL), 90);
        assert_int_equal(evio_reg_poll_ready(&g.r, EVIO_DIRECTION_READ, NULL), 0);
        /* Another error is the caller's business: readiness stays. */
        a.result = -ECONNRESET;
        assert_int_equal(evio_reg_try_io(&g.r, EVIO_DIRECTION_READ, do_recv, &a, NULL),
                         -ECONNRESET);
        assert_int_equal(evio_reg_poll_ready(&g.r, EVIO_DIRECTION_READ, NULL), 0);
        a.result = 0;
        assert_int_equal(evio_reg_try_io(&g.r, EVIO_DIRECTION_READ, do_recv, &a, NULL), -EAGAIN);
        assert_int_equal(a.calls, 4);
        assert_int_equal(evio_reg_poll_ready(&g.r, EVIO_DIRECTION_READ, NULL), -EAGAIN);
        /* Not ready: fn is not called. The write direction was not touched. */
        assert_int_equal(evio_reg_try_io(&g.r, EVIO_DIRECTION_READ, do_recv, &a, &ev), -EAGAIN);
        assert_int_equal(a.calls, 4);
        assert_int_equal(ev.ready, 0);
        assert_int_equal(evio_reg_poll_ready(&g.r, EVIO_DIRECTION_WRITE, NULL), 0);
        rig_close(&g);
}

static void test_readiness_during_io_is_not_lost(void **state)
{
        struct io_arg a = {.want = 200};
        struct evio_ready_event ev;
        struct rig g;

        rig_open(&g);
        peer_send(&g, 10);
        assert_int_equal(evio_reg_try_io(&g.r, EVIO_DIRECTION_READ, do_recv, &a, NULL), 10);
        /* This read says EAGAIN, but a byte arrived (and the driver marked it) meanwhile. */
        a.g = &g;
        assert_int_equal(evio_reg_try_io(&g.r, EVIO_DIRECTION_READ, do_recv, &a, &ev), -EAGAIN);
        assert_true(evio_sio_ready(g.r.io, EVIO_INTEREST_READABLE).tick > ev.tick);
        assert_int_equal(evio_reg_poll_ready(&g.r, EVIO_DIRECTION_READ, NULL), 0);
        /* So the byte is read, and only the EAGAIN after it clears. */
        a.g = NULL;
        assert_int_equal(evio_reg_try_io(&g.r, EVIO_DIRECTION_READ, do_recv, &a, NULL), 1);
        assert_int_equal(evio_reg_try_io(&g.r, EVIO_DIRECTION_READ, do_recv, &a, NULL), -EAGAIN);
        assert_int_equal(evio_reg_poll_ready(&g.r, EVIO_DIRECTION_READ, NULL), -EAGAIN);
        /* A caller's own clear with a stale snapshot is refused the same way. */
        peer_send(&g, 1);
        assert_int_equal(evio_reg_poll_ready(&g.r, EVIO_DIRECTION_READ, &ev), 0);
        peer_send(&g, 1);
        assert_false(evio_reg_clear_readiness(&g.r, ev));
        assert_int_equal(evio_reg_poll_ready(&g.r, EVIO_DIRECTION_READ, &ev), 0);
        assert_true(evio_reg_clear_readiness(&g.r, ev));
        assert_int_equal(evio_reg_poll_ready(&g.r, EVIO_DIRECTION_READ, NULL), -EAGAIN);
        rig_close(&g);
}

static void test_try_io_calls_again_on_eintr(void **state)
{
        struct io_arg a = {.want = 200, .eintr = 2};
        struct rig g;

        rig_open(&g);
        peer_send(&g, 7);
        assert_int_equal(evio_reg_try_io(&g.r, EVIO_DIRECTION_READ, do_recv, &a, NULL), 7);
        assert_int_equal(a.calls, 3);
        rig_close(&g);
}

static void test_empty_registration(void **state)
{
        struct evio_registration r = EVIO_REGISTRATION_INIT;
        struct io_arg a = {.want = 1};
        struct evio_ready_event ev;
        struct evio_driver *d;

        evio_reg_close(&r);
        evio_reg_close(&r);
        assert_int_equal(r.fd, -1);
        assert_int_equal(evio_reg_deregister(&r), -1);
        assert_false(evio_reg_is_registered(&r));
        assert_int_equal(evio_reg_poll_ready(&r, EVIO_DIRECTION_READ, &ev), -EBADF);
        assert_int_equal(evio_reg_try_io(&r, EVIO_DIRECTION_READ, do_recv, &a, NULL), -EBADF);
        assert_int_equal(a.calls, 0);
        assert_false(evio_reg_clear_readiness(&r, ev));
        evio_reg_set_waker(&r, NULL);

        /* Zeroed memory (a half-built object from calloc) owns no fd, though its fd reads 0. */
        memset(&r, 0, sizeof(r));
        if (!fd_open(0))
                assert_int_equal(open("/dev/null", O_RDONLY | O_CLOEXEC), 0);
        evio_reg_close(&r);
        assert_true(fd_open(0));
        assert_int_equal(r.fd, -1);
        memset(&r, 0, sizeof(r));
        assert_int_equal(evio_reg_deregister(&r), -1);

        assert_int_equal(evio_driver_new(&d, NULL), 0);
        evio_reg_init(&r, evio_driver_handle(d), -1);
        assert_int_equal(evio_reg_register(&r, EVIO_INTEREST_READABLE, NULL), -EBADF);
        assert_int_equal(evio_reg_open(&r, evio_driver_handle(d), -1, EVIO_INTEREST_READABLE, NULL),
                         -EBADF);
        evio_reg_close(&r);
        assert_int_equal(r.fd, -1);
        evio_driver_free(d);
}

static void test_close_deregisters_and_closes(void **state)
{
        struct evio_driver_metrics m;
        struct rig g;
        int fd, sv[2];

        rig_open(&g);
        fd = g.r.fd;
        evio_reg_close(&g.r);
        assert_false(fd_open(fd));
        assert_int_equal(g.r.fd, -1);
        assert_false(evio_reg_is_registered(&g.r));
        evio_handle_metrics(g.h, &m);
        assert_int_equal(m.deregistered_count, 1);
        evio_reg_close(&g.r); /* twice: nothing left to do */
        evio_driver_turn(g.d, 0);
        /* Closed, r takes a new fd (the conn's upstream side does, server after server). */
        make_pair(sv);
        assert_int_equal(evio_reg_open(&g.r, g.h, sv[0], EVIO_INTEREST_READABLE, NULL), 0);
        assert_int_equal(send(sv[1], "x", 1, 0), 1);
        evio_driver_turn(g.d, 100);
        assert_int_equal(evio_reg_poll_ready(&g.r, EVIO_DIRECTION_READ, NULL), 0);
        close(sv[1]);
        rig_close(&g);
}

static void test_deregister_keeps_fd_open(void **state)
{
        struct evio_driver_metrics m;
        struct rig g;
        char c;
        int fd;

        rig_open(&g);
        fd = evio_reg_deregister(&g.r);
        assert_int_equal(fd, g.sv[0]);
        assert_true(fd_open(fd));
        assert_int_equal(g.r.fd, -1);
        assert_false(evio_reg_is_registered(&g.r));
        evio_handle_metrics(g.h, &m);
        assert_int_equal(m.deregistered_count, 1);
        /* Out of epoll (under ASan an event for the freed record would be a use after free):
         * new data wakes nobody, and the fd still reads it. */
        evio_driver_turn(g.d, 0);
        g.woken = 0;
        peer_send(&g, 1);
        assert_int_equal(g.woken, 0);
        assert_int_equal(recv(fd, &c, 1, 0), 1);
        close(fd);
        rig_close(&g);
}

static void test_failed_registration_keeps_fd(void **state)
{
        struct evio_driver_metrics m;
        struct evio_registration r;
        struct evio_driver *d;
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        assert_true(fd >= 0);
        assert_int_equal(evio_driver_new(&d, NULL), 0);
        /* epoll refuses a file that cannot be polled. */
        assert_int_equal(evio_reg_open(&r, evio_driver_handle(d), fd, EVIO_INTEREST_READABLE, NULL),
                         -EPERM);
        assert_int_equal(r.fd, fd);
        assert_false(evio_reg_is_registered(&r));
        assert_true(fd_open(fd));
        evio_handle_metrics(evio_driver_handle(d), &m);
        assert_int_equal(m.registered_count, 0);
        evio_reg_close(&r);
        assert_false(fd_open(fd));
        assert_int_equal(r.fd, -1);
        evio_driver_free(d);
}

static void test_shutdown_is_reported(void **state)
{
        struct evio_registration r2;
        struct io_arg a = {.want = 200};
        struct evio_ready_event ev;
        struct rig g;
        int sv[2];

        rig_open(&g);
        peer_send(&g, 3);
        evio_handle_shutdown(g.h);
        assert_int_equal(evio_reg_poll_ready(&g.r, EVIO_DIRECTION_READ, &ev), -ESHUTDOWN);
        assert_true(ev.is_shutdown);
        assert_int_equal(evio_reg_poll_ready(&g.r, EVIO_DIRECTION_WRITE, NULL), -ESHUTDOWN);
        assert_int_equal(evio_reg_try_io(&g.r, EVIO_DIRECTION_READ, do_recv, &a, NULL), -ESHUTDOWN);
        assert_int_equal(a.calls, 0);
        make_pair(sv);
        assert_int_equal(evio_reg_open(&r2, g.h, sv[0], EVIO_INTEREST_READABLE, NULL), -ESHUTDOWN);
        assert_int_equal(r2.fd, sv[0]);
        evio_reg_close(&r2);
        assert_false(fd_open(sv[0]));
        close(sv[1]);
        rig_close(&g);
}

static void test_set_waker_moves_wakeups(void **state)
{
        int other = 0;
        const struct evio_waker wk = {.fn = count_wake, .arg = &other};
        struct rig g;

        rig_open(&g);
        evio_reg_set_waker(&g.r, &wk);
        g.woken = 0;
        peer_send(&g, 1);
        assert_int_equal(g.woken, 0);
        assert_int_equal(other, 1);
        rig_close(&g);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_poll_ready_follows_the_socket),
            cmocka_unit_test(test_try_io_clears_only_on_eagain),
            cmocka_unit_test(test_readiness_during_io_is_not_lost),
            cmocka_unit_test(test_try_io_calls_again_on_eintr),
            cmocka_unit_test(test_empty_registration),
            cmocka_unit_test(test_close_deregisters_and_closes),
            cmocka_unit_test(test_deregister_keeps_fd_open),
            cmocka_unit_test(test_failed_registration_keeps_fd),
            cmocka_unit_test(test_shutdown_is_reported),
            cmocka_unit_test(test_set_waker_moves_wakeups),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
