/* Shutdown: every record gets the shutdown bit and its wakers called; registering afterwards
 * fails with -ESHUTDOWN; polls and turns report it; a blocked turn on the driver's thread is
 * woken by a shutdown from another thread; everything is freed (ASan/valgrind in CI). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "internal.h"
#include "common.h"

enum { N = 100 };

struct rec {
        int calls;
        uint32_t ready;
};

static void on_wake(void *arg, uint32_t ready)
{
        struct rec *r = arg;
        r->calls++;
        r->ready |= ready;
}

static void test_shutdown_reaches_every_record(void **state)
{
        struct evio_driver *d;
        struct evio_scheduled_io *ios[N], *late;
        struct rec recs[N] = {0};
        int sv[N][2];
        struct evio_ready_event ev;

        assert_int_equal(evio_driver_new(&d, NULL), 0);
        struct evio_handle *h = evio_driver_handle(d);
        for (int i = 0; i < N; i++) {
                struct evio_waker w = {on_wake, &recs[i]};
                make_pair(sv[i]);
                assert_int_equal(
                    evio_handle_register(h, sv[i][0], EVIO_INTEREST_READABLE, &w, &ios[i]), 0);
        }
        assert_false(evio_handle_is_shutdown(h));
        evio_handle_shutdown(h);
        evio_handle_shutdown(h); /* idempotent: wakers are not called twice */
        assert_true(evio_handle_is_shutdown(h));
        for (int i = 0; i < N; i++) {
                assert_int_equal(recs[i].calls, 1);
                assert_int_equal(recs[i].ready & EVIO_READY_READABLE, EVIO_READY_READABLE);
                assert_true(evio_sio_ready(ios[i], EVIO_INTEREST_READABLE).is_shutdown);
                assert_int_equal(evio_sio_poll_ready(ios[i], EVIO_DIRECTION_READ, NULL, &ev),
                                 -ESHUTDOWN);
                assert_int_equal(evio_sio_poll_ready(ios[i], EVIO_DIRECTION_WRITE, NULL, &ev),
                                 -ESHUTDOWN);
        }
        int fd[2];
        make_pair(fd);
        assert_int_equal(evio_handle_register(h, fd[0], EVIO_INTEREST_READABLE, NULL, &late),
                         -ESHUTDOWN);
        assert_int_equal(evio_handle_reregister(h, ios[0], EVIO_INTEREST_WRITABLE), -ESHUTDOWN);
        assert_int_equal(evio_driver_turn(d, 1000), -ESHUTDOWN);
        /* Half the records are deregistered by their owners, the rest freed with the driver. */
        for (int i = 0; i < N / 2; i++)
                evio_handle_deregister(h, ios[i]);
        for (int i = 0; i < N; i++) {
                close(sv[i][0]);
                close(sv[i][1]);
        }
        close(fd[0]);
        close(fd[1]);
        evio_driver_free(d);
}

static void *shutdown_later(void *arg)
{
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        evio_handle_shutdown(arg);
        return NULL;
}

static void test_shutdown_wakes_blocked_turn(void **state)
{
        struct evio_driver *d;
        pthread_t th;

        assert_int_equal(evio_driver_new(&d, NULL), 0);
        assert_int_equal(pthread_create(&th, NULL, shutdown_later, evio_driver_handle(d)), 0);
        uint64_t t0 = evio_now_ms();
        assert_int_equal(evio_driver_turn(d, 20000), -ESHUTDOWN);
        assert_true(evio_now_ms() - t0 < 10000);
        pthread_join(th, NULL);
        evio_driver_free(d);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_shutdown_reaches_every_record),
            cmocka_unit_test(test_shutdown_wakes_blocked_turn),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
