/* Signal token: SIGHUP and SIGTERM sent to the process are each reported once after a turn,
 * without a signal handler, and a thread started afterwards never consumes them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#include "internal.h"

#define BIT(sig) (UINT64_C(1) << ((sig)-1))

static atomic_int stop_thread;
static atomic_int thread_saw_blocked;

static void *bystander(void *arg)
{
        sigset_t cur;
        pthread_sigmask(SIG_BLOCK, NULL, &cur);
        atomic_store(&thread_saw_blocked, sigismember(&cur, SIGHUP) && sigismember(&cur, SIGTERM));
        while (!atomic_load(&stop_thread)) {
                struct timespec ts = {0, 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        return NULL;
}

static uint64_t turn_and_take(struct evio_driver *d, uint64_t want)
{
        uint64_t got = 0;
        for (int i = 0; i < 50 && (got & want) != want; i++) {
                evio_driver_turn(d, 100);
                got |= evio_driver_take_signals(d);
        }
        return got;
}

static void test_signals_reported_once(void **state)
{
        struct evio_driver *d;
        sigset_t set;
        pthread_t th;
        struct sigaction sa;

        assert_int_equal(evio_driver_new(&d, NULL), 0);
        sigemptyset(&set);
        sigaddset(&set, SIGHUP);
        sigaddset(&set, SIGTERM);
        assert_int_equal(evio_driver_enable_signals(d, &set), 0);
        assert_int_equal(pthread_create(&th, NULL, bystander, NULL), 0);

        assert_int_equal(kill(getpid(), SIGHUP), 0);
        assert_int_equal(kill(getpid(), SIGTERM), 0);
        assert_int_equal(turn_and_take(d, BIT(SIGHUP) | BIT(SIGTERM)), BIT(SIGHUP) | BIT(SIGTERM));
        /* Reported once: nothing more on the next turns. */
        evio_driver_turn(d, 50);
        assert_int_equal(evio_driver_take_signals(d), 0);

        /* Two of a kind before a turn are one report. */
        kill(getpid(), SIGHUP);
        kill(getpid(), SIGHUP);
        assert_int_equal(turn_and_take(d, BIT(SIGHUP)), BIT(SIGHUP));
        evio_driver_turn(d, 50);
        assert_int_equal(evio_driver_take_signals(d), 0);

        /* No handler was installed: the disposition is still the default. */
        assert_int_equal(sigaction(SIGHUP, NULL, &sa), 0);
        assert_true(sa.sa_handler == SIG_DFL);
        assert_int_equal(sigaction(SIGTERM, NULL, &sa), 0);
        assert_true(sa.sa_handler == SIG_DFL);

        atomic_store(&stop_thread, 1);
        pthread_join(th, NULL);
        assert_true(atomic_load(&thread_saw_blocked));
        evio_driver_free(d);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_signals_reported_once),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
