/* Invariants the core asserts, where a violation would be silent corruption: each case runs in
 * a child that must die of SIGABRT (asserts are on in every build type, see core/CMakeLists.txt).
 * Driver-only calls off the driver's thread during a turn, a re-entered turn, a record
 * deregistered twice, a timer armed on two drivers. The legal neighbours of each do not abort. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "internal.h"
#include "common.h"

static struct evio_driver *new_driver(void)
{
        struct evio_driver *d;

        if (evio_driver_new(&d, NULL) < 0)
                _exit(90);
        return d;
}

/* A thread of the child's that sits in evio_driver_turn() until unparked. */
static void *turn_blocked(void *arg)
{
        evio_driver_turn(arg, 5000);
        return NULL;
}

static void start_turning(struct evio_driver *d, pthread_t *th)
{
        if (pthread_create(th, NULL, turn_blocked, d) != 0)
                _exit(91);
        while (atomic_load(&d->owner) == NULL)
                sched_yield();
}

static void noop_timer(struct evio_timer *t, void *arg)
{
}

static int arm_timer_off_thread(void)
{
        struct evio_driver *d = new_driver();
        struct evio_timer t;
        pthread_t th;

        evio_timer_init(&t, noop_timer, NULL);
        start_turning(d, &th);
        evio_timer_arm(d, &t, evio_now_ms() + 1000); /* aborts */
        return 0;
}

static int cancel_timer_off_thread(void)
{
        struct evio_driver *d = new_driver();
        struct evio_timer t;
        pthread_t th;

        evio_timer_init(&t, noop_timer, NULL);
        evio_timer_arm(d, &t, evio_now_ms() + 60000);
        start_turning(d, &th);
        evio_timer_cancel(d, &t); /* aborts */
        return 0;
}

static void noop_deferred(struct evio_deferred *t)
{
}

static int defer_off_thread(void)
{
        struct evio_driver *d = new_driver();
        struct evio_deferred task = {.fn = noop_deferred};
        pthread_t th;

        start_turning(d, &th);
        evio_driver_defer(d, &task); /* aborts */
        return 0;
}

static struct evio_driver *reentered;

static void turn_from_task(struct evio_deferred *t)
{
        evio_driver_turn(reentered, 0); /* aborts */
}

static int turn_reentered(void)
{
        struct evio_deferred task = {.fn = turn_from_task};

        reentered = new_driver();
        evio_driver_defer(reentered, &task);
        evio_driver_turn(reentered, 0);
        return 0;
}

static int turn_on_two_threads(void)
{
        struct evio_driver *d = new_driver();
        pthread_t th;

        start_turning(d, &th);
        evio_driver_turn(d, 0); /* aborts */
        return 0;
}

static int deregister_twice(void)
{
        struct evio_driver *d = new_driver();
        struct evio_scheduled_io *io;
        int sv[2];

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ||
            evio_handle_register(evio_driver_handle(d), sv[0], EVIO_INTEREST_READABLE, NULL, &io) !=
                0)
                return 92;
        evio_handle_deregister(evio_driver_handle(d), io);
        evio_handle_deregister(evio_driver_handle(d), io); /* aborts */
        return 0;
}

static int timer_on_two_drivers(void)
{
        struct evio_driver *a = new_driver(), *b = new_driver();
        struct evio_timer t, other;

        evio_timer_init(&t, noop_timer, NULL);
        evio_timer_init(&other, noop_timer, NULL);
        evio_timer_arm(b, &other, 5);
        evio_timer_arm(a, &t, 10);
        evio_timer_arm(b, &t, 20); /* armed on a: aborts */
        return 0;
}

static void test_violations_abort(void **state)
{
        assert_true(child_aborts(arm_timer_off_thread));
        assert_true(child_aborts(cancel_timer_off_thread));
        assert_true(child_aborts(defer_off_thread));
        assert_true(child_aborts(turn_reentered));
        assert_true(child_aborts(turn_on_two_threads));
        assert_true(child_aborts(deregister_twice));
        assert_true(child_aborts(timer_on_two_drivers));
}

/* What stays legal: driver-only calls from another thread between turns (the daemon cancels a
 * worker's timers from the main thread after joining it), re-arming an armed timer, deferring a
 * queued task, posting a queued task, turning the driver from a new thread after the old one
 * was joined. */
static void *turn_once(void *arg)
{
        evio_driver_turn(arg, 0);
        return NULL;
}

static void test_legal_neighbours(void **state)
{
        struct evio_driver *d;
        struct evio_timer t;
        struct evio_deferred task = {.fn = noop_deferred};
        struct evio_driver_task posted = {0};
        pthread_t th;

        assert_int_equal(evio_driver_new(&d, NULL), 0);
        evio_timer_init(&t, noop_timer, NULL);
        assert_int_equal(evio_timer_arm(d, &t, evio_now_ms() + 60000), 0);
        assert_int_equal(evio_timer_arm(d, &t, evio_now_ms() + 50000), 0);
        evio_driver_defer(d, &task);
        evio_driver_defer(d, &task);
        assert_int_equal(pthread_create(&th, NULL, turn_once, d), 0);
        pthread_join(th, NULL);
        assert_false(task.queued);
        assert_true(evio_timer_armed(&t));
        evio_timer_cancel(d, &t); /* main thread, after the driver's thread was joined */
        assert_false(evio_timer_armed(&t));
        evio_driver_defer(d, &task);
        evio_driver_undefer(d, &task);
        assert_int_equal(pthread_create(&th, NULL, turn_once, d), 0);
        pthread_join(th, NULL);
        assert_int_equal(evio_handle_post(evio_driver_handle(d), &posted), 0);
        assert_int_equal(evio_handle_post(evio_driver_handle(d), &posted), 0);
        assert_true(posted.queued);
        evio_driver_free(d); /* a task still queued is dropped, not run */
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_violations_abort),
            cmocka_unit_test(test_legal_neighbours),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
