/* Shutdown: every record gets the shutdown bit at once and its wakers called by the driver's
 * next turn, on the driver's thread, whoever asked; registering afterwards fails with -ESHUTDOWN;
 * polls and turns report it; a blocked turn is woken by a shutdown from another thread; a
 * registration that fails while a shutdown runs leaves nothing behind; everything is freed
 * (ASan/valgrind in CI; the threaded cases run under TSan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
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
        /* The shutdown bit is there at once; the wakers wait for the driver's turn. */
        for (int i = 0; i < N; i++)
                assert_true(evio_sio_ready(ios[i], EVIO_INTEREST_READABLE).is_shutdown);
        assert_int_equal(evio_driver_turn(d, 1000), -ESHUTDOWN);
        assert_int_equal(evio_driver_turn(d, 0), -ESHUTDOWN); /* wakers called once only */
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

/* Shutdown from another thread while the driver dispatches events: every waker, the shutdown's
 * included, runs on the driver's thread (plain counters: TSan sees any other thread). */
enum { LIVE = 8 };

struct live_rec {
        int calls, shutdown_calls;
        bool off_thread;
        pthread_t driver;
};

static void on_live(void *arg, uint32_t ready)
{
        struct live_rec *r = arg;

        r->calls++;
        if (ready == EVIO_READY_ALL)
                r->shutdown_calls++;
        if (!pthread_equal(pthread_self(), r->driver))
                r->off_thread = true;
}

struct live_driver {
        struct evio_driver *d;
        atomic_bool turning;
        int last;
};

static void *turn_until_shutdown(void *arg)
{
        struct live_driver *ld = arg;
        uint64_t t0 = evio_now_ms();

        do {
                ld->last = evio_driver_turn(ld->d, 100);
                atomic_store(&ld->turning, true);
        } while (ld->last >= 0 && evio_now_ms() - t0 < 10000);
        return NULL;
}

static void test_shutdown_wakers_run_on_driver_thread(void **state)
{
        struct live_driver ld = {0};
        struct live_rec recs[LIVE] = {0};
        struct evio_scheduled_io *ios[LIVE];
        int sv[LIVE][2];
        pthread_t th;

        assert_int_equal(evio_driver_new(&ld.d, NULL), 0);
        struct evio_handle *h = evio_driver_handle(ld.d);
        assert_int_equal(pthread_create(&th, NULL, turn_until_shutdown, &ld), 0);
        for (int i = 0; i < LIVE; i++) {
                struct evio_waker w = {on_live, &recs[i]};
                recs[i].driver = th;
                make_pair(sv[i]);
                assert_int_equal(
                    evio_handle_register(
                        h, sv[i][0], EVIO_INTEREST_READABLE | EVIO_INTEREST_WRITABLE, &w, &ios[i]),
                    0);
        }
        /* Events keep the driver's thread in the wakers while the shutdown comes. */
        for (int round = 0; round < 50; round++)
                for (int i = 0; i < LIVE; i++)
                        assert_int_equal(write(sv[i][1], "e", 1), 1);
        while (!atomic_load(&ld.turning))
                sched_yield();
        evio_handle_shutdown(h);
        pthread_join(th, NULL);
        assert_int_equal(ld.last, -ESHUTDOWN);
        for (int i = 0; i < LIVE; i++) {
                assert_false(recs[i].off_thread);
                assert_int_equal(recs[i].shutdown_calls, 1);
                evio_handle_deregister(h, ios[i]);
                close(sv[i][0]);
                close(sv[i][1]);
        }
        evio_driver_free(ld.d);
}

/* Issue 12 item 1. Thread A keeps failing to register a regular file (EPERM), thread B
 * registers and deregisters a socket, and this thread shuts the driver down. The failed
 * registration must leave nothing the shutdown can see: ASan reported a heap use after free in
 * the shutdown of a record freed by the failed registration, and its waker was called. */
enum { RACE_ROUNDS = 150, RACE_MS = 20000 };

struct race {
        struct evio_handle *h;
        int file_fd;
        atomic_bool stop;
        atomic_int attempts;
        atomic_int failed_woken, bad_result;
};

static void on_failed_registration(void *arg, uint32_t ready)
{
        struct race *r = arg;
        atomic_fetch_add(&r->failed_woken, 1);
}

static void *register_file_loop(void *arg)
{
        struct race *r = arg;
        struct evio_waker w = {on_failed_registration, r};
        struct evio_scheduled_io *io;

        while (!atomic_load(&r->stop)) {
                int x = evio_handle_register(r->h, r->file_fd, EVIO_INTEREST_READABLE, &w, &io);
                if (x != -EPERM && x != -ESHUTDOWN)
                        atomic_fetch_add(&r->bad_result, 1);
                atomic_fetch_add(&r->attempts, 1);
        }
        return NULL;
}

static void *register_socket_loop(void *arg)
{
        struct race *r = arg;
        struct evio_scheduled_io *io;
        int sv[2];

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
                atomic_fetch_add(&r->bad_result, 1);
                return NULL;
        }
        while (!atomic_load(&r->stop)) {
                int x = evio_handle_register(r->h, sv[0], EVIO_INTEREST_READABLE, NULL, &io);
                if (x == 0)
                        evio_handle_deregister(r->h, io);
                else if (x != -ESHUTDOWN)
                        atomic_fetch_add(&r->bad_result, 1);
        }
        close(sv[0]);
        close(sv[1]);
        return NULL;
}

static void test_failed_registration_races_shutdown(void **state)
{
        int file_fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        uint64_t t0 = evio_now_ms();
        int rounds = 0;

        assert_true(file_fd >= 0);
        for (; rounds < RACE_ROUNDS && evio_now_ms() - t0 < RACE_MS; rounds++) {
                struct evio_driver *d;
                struct race r = {.file_fd = file_fd};
                pthread_t a, b;

                assert_int_equal(evio_driver_new(&d, NULL), 0);
                r.h = evio_driver_handle(d);
                assert_int_equal(pthread_create(&a, NULL, register_file_loop, &r), 0);
                assert_int_equal(pthread_create(&b, NULL, register_socket_loop, &r), 0);
                /* Shut down while A is in the middle of its attempts. */
                uint64_t w0 = evio_now_ms();
                while (atomic_load(&r.attempts) < 20 + rounds % 50 && evio_now_ms() - w0 < 2000)
                        sched_yield();
                evio_handle_shutdown(r.h);
                atomic_store(&r.stop, true);
                pthread_join(a, NULL);
                pthread_join(b, NULL);
                assert_int_equal(evio_driver_turn(d, 0), -ESHUTDOWN); /* runs the wakers */
                assert_int_equal(atomic_load(&r.failed_woken), 0);
                assert_int_equal(atomic_load(&r.bad_result), 0);
                assert_int_equal(r.h->regset.n_registered, 0);
                evio_driver_free(d);
        }
        close(file_fd);
        assert_true(rounds >= 10);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_shutdown_reaches_every_record),
            cmocka_unit_test(test_shutdown_wakes_blocked_turn),
            cmocka_unit_test(test_shutdown_wakers_run_on_driver_thread),
            cmocka_unit_test(test_failed_registration_races_shutdown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
