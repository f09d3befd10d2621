/* Handle: unpark from another thread, posted tasks, and threads registering and deregistering
 * thousands of sources while the driver turns (run under TSan in CI). */
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

static void *unpark_later(void *arg)
{
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        evio_handle_unpark(arg);
        return NULL;
}

static void test_unpark_wakes_blocked_turn(void **state)
{
        struct evio_driver *d;
        pthread_t th;

        assert_int_equal(evio_driver_new(&d, NULL), 0);
        assert_int_equal(pthread_create(&th, NULL, unpark_later, evio_driver_handle(d)), 0);
        uint64_t t0 = evio_now_ms();
        assert_int_equal(evio_driver_turn(d, 20000), 0);
        uint64_t took = evio_now_ms() - t0;
        assert_true(took < 10000);
        pthread_join(th, NULL);
        evio_driver_free(d);
}

struct counted_task {
        struct evio_driver_task task;
        pthread_t ran_on;
        atomic_int runs;
};

static void run_counted(struct evio_driver_task *t)
{
        struct counted_task *c = (struct counted_task *)t;
        c->ran_on = pthread_self();
        atomic_fetch_add(&c->runs, 1);
}

static void *post_later(void *arg)
{
        void **a = arg;
        evio_handle_post(a[0], a[1]);
        return NULL;
}

static void test_post_runs_on_driver_thread(void **state)
{
        struct evio_driver *d;
        struct counted_task c = {.task.fn = run_counted};
        pthread_t th;
        void *args[2];

        assert_int_equal(evio_driver_new(&d, NULL), 0);
        args[0] = evio_driver_handle(d);
        args[1] = &c.task;
        assert_int_equal(pthread_create(&th, NULL, post_later, args), 0);
        for (int i = 0; i < 100 && atomic_load(&c.runs) == 0; i++)
                evio_driver_turn(d, 100);
        pthread_join(th, NULL);
        assert_int_equal(atomic_load(&c.runs), 1);
        assert_true(pthread_equal(c.ran_on, pthread_self()));
        evio_driver_free(d);
}

enum { THREADS = 3, PER_THREAD = 3000 };

struct churn {
        struct evio_handle *h;
        atomic_int woken;
        atomic_int done;
};

static void on_ready(void *arg, uint32_t ready)
{
        struct churn *c = arg;
        atomic_fetch_add_explicit(&c->woken, 1, memory_order_relaxed);
}

static void *churn_thread(void *arg)
{
        struct churn *c = arg;
        struct evio_waker w = {on_ready, c};

        for (int i = 0; i < PER_THREAD; i++) {
                int sv[2];
                struct evio_scheduled_io *io;
                make_pair(sv);
                assert_int_equal(evio_handle_register(c->h, sv[0], EVIO_INTEREST_READABLE, &w, &io),
                                 0);
                if (i % 2 == 0)
                        assert_int_equal(write(sv[1], "w", 1), 1); /* events race the dereg */
                if (i % 7 == 0)
                        evio_handle_unpark(c->h);
                assert_int_equal(evio_handle_deregister(c->h, io), 0);
                close(sv[0]);
                close(sv[1]);
        }
        atomic_fetch_add(&c->done, 1);
        return NULL;
}

static void test_threads_register_while_turning(void **state)
{
        struct evio_driver *d;
        struct churn c = {0};
        pthread_t th[THREADS];
        struct evio_driver_metrics m;

        assert_int_equal(evio_driver_new(&d, NULL), 0);
        c.h = evio_driver_handle(d);
        for (int i = 0; i < THREADS; i++)
                assert_int_equal(pthread_create(&th[i], NULL, churn_thread, &c), 0);
        uint64_t t0 = evio_now_ms();
        while (atomic_load(&c.done) < THREADS && evio_now_ms() - t0 < 60000)
                evio_driver_turn(d, 10);
        for (int i = 0; i < THREADS; i++)
                pthread_join(th[i], NULL);
        evio_driver_turn(d, 0);
        evio_handle_metrics(c.h, &m);
        assert_int_equal(m.registered_count, THREADS * PER_THREAD);
        assert_int_equal(m.deregistered_count, THREADS * PER_THREAD);
        assert_true(m.ready_count >= (uint64_t)atomic_load(&c.woken));
        assert_int_equal(c.h->regset.n_registered, 0);
        assert_int_equal(evio__regset_pending(&c.h->regset), 0);
        evio_driver_free(d);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_unpark_wakes_blocked_turn),
            cmocka_unit_test(test_post_runs_on_driver_thread),
            cmocka_unit_test(test_threads_register_while_turning),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
