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
        struct driver *d;
        struct scheduled_io *ios[N], *late;
        struct rec recs[N] = {0};
        int sv[N][2];
        struct ready_event ev;

        assert_int_equal(driver_new(&d, NULL), 0);
        struct handle *h = driver_handle(d);
        for (int i = 0; i < N; i++) {
                struct waker w = {on_wake, &recs[i]};
                make_pair(sv[i]);
                assert_int_equal(handle_register(h, sv[i][0], INTEREST_READABLE, &w, &ios[i]), 0);
        }
        assert_false(handle_is_shutdown(h));
        handle_shutdown(h);
        handle_shutdown(h); /* idempotent: wakers are not called twice */
        assert_true(handle_is_shutdown(h));
        for (int i = 0; i < N; i++) {
                assert_int_equal(recs[i].calls, 1);
                assert_int_equal(recs[i].ready & READY_READABLE, READY_READABLE);
                assert_true(sio_ready(ios[i], INTEREST_READABLE).is_shutdown);
                assert_int_equal(sio_poll_ready(ios[i], DIRECTION_READ, NULL, &ev), -ESHUTDOWN);
                assert_int_equal(sio_poll_ready(ios[i], DIRECTION_WRITE, NULL, &ev), -ESHUTDOWN);
        }
        int fd[2];
        make_pair(fd);
        assert_int_equal(handle_register(h, fd[0], INTEREST_READABLE, NULL, &late), -ESHUTDOWN);
        assert_int_equal(handle_reregister(h, ios[0], INTEREST_WRITABLE), -ESHUTDOWN);
        assert_int_equal(driver_turn(d, 1000), -ESHUTDOWN);
        /* Half the records are deregistered by their owners, the rest freed with the driver. */
        for (int i = 0; i < N / 2; i++)
                handle_deregister(h, ios[i]);
        for (int i = 0; i < N; i++) {
                close(sv[i][0]);
                close(sv[i][1]);
        }
        close(fd[0]);
        close(fd[1]);
        driver_free(d);
}

static void *shutdown_later(void *arg)
{
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        handle_shutdown(arg);
        return NULL;
}

static void test_shutdown_wakes_blocked_turn(void **state)
{
        struct driver *d;
        pthread_t th;

        assert_int_equal(driver_new(&d, NULL), 0);
        assert_int_equal(pthread_create(&th, NULL, shutdown_later, driver_handle(d)), 0);
        uint64_t t0 = driver_now_ms();
        assert_int_equal(driver_turn(d, 20000), -ESHUTDOWN);
        assert_true(driver_now_ms() - t0 < 10000);
        pthread_join(th, NULL);
        driver_free(d);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_shutdown_reaches_every_record),
            cmocka_unit_test(test_shutdown_wakes_blocked_turn),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
