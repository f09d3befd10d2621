/* Handle: unpark from another thread, posted tasks (run once however often posted), threads
 * registering and deregistering thousands of sources while the driver turns, and a deregister
 * from another thread that returns only when no waker of the record runs (TSan and ASan in CI). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
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

/* Issue 12 item 3. The driver's thread calls a record's two wakers (one event, both
 * directions); another thread deregisters the record while the first waker runs, then frees
 * what the wakers point at. A deregister that returned must mean no waker of the record runs
 * or starts afterwards: the old code let the read waker finish and the write waker start on
 * freed memory (ASan: heap-use-after-free; TSan: a race with free; here: `late`). */
enum { DEREG_ROUNDS = 300, DEREG_MS = 20000, WAKER_SPIN_US = 300 };

struct victim {
        uint64_t pad[2]; /* keep the touched field off malloc's free-list word */
        int round;
        int touched;
        atomic_int started;
};

static atomic_int dereg_returned; /* the last round whose deregister returned */
static atomic_int late;           /* wakers that ran after their record's deregister returned */

static void victim_check(struct victim *v)
{
        int round = v->round;

        if (atomic_load(&dereg_returned) >= round)
                atomic_fetch_add(&late, 1);
        v->touched++;
}

static uint64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Busy for a while: the deregistering thread gets its chance while this waker runs. */
static void on_victim_read(void *arg, uint32_t ready)
{
        struct victim *v = arg;
        uint64_t t0 = now_us();

        atomic_store(&v->started, 1);
        while (now_us() - t0 < WAKER_SPIN_US)
                ;
        victim_check(v);
}

static void on_victim_write(void *arg, uint32_t ready)
{
        victim_check(arg);
}

struct spinning_driver {
        struct evio_driver *d;
        atomic_bool stop;
};

static void *turn_until_stopped(void *arg)
{
        struct spinning_driver *sd = arg;

        while (!atomic_load(&sd->stop))
                evio_driver_turn(sd->d, 10);
        return NULL;
}

static void test_deregister_waits_for_running_waker(void **state)
{
        struct spinning_driver sd = {0};
        uint64_t t0 = evio_now_ms();
        pthread_t th;
        int rounds = 0, missed = 0;

        assert_int_equal(evio_driver_new(&sd.d, NULL), 0);
        struct evio_handle *h = evio_driver_handle(sd.d);
        assert_int_equal(pthread_create(&th, NULL, turn_until_stopped, &sd), 0);
        for (; rounds < DEREG_ROUNDS && evio_now_ms() - t0 < DEREG_MS; rounds++) {
                struct victim *v = calloc(1, sizeof(*v));
                struct evio_waker rw = {on_victim_read, v}, ww = {on_victim_write, v};
                struct evio_scheduled_io *io;
                int sv[2];

                assert_non_null(v);
                v->round = rounds + 1;
                make_pair(sv);
                assert_int_equal(
                    evio_handle_register(h, sv[0], EVIO_INTEREST_READABLE | EVIO_INTEREST_WRITABLE,
                                         NULL, &io),
                    0);
                evio_sio_set_waker(io, EVIO_DIRECTION_READ, &rw);
                evio_sio_set_waker(io, EVIO_DIRECTION_WRITE, &ww);
                /* An event after the wakers are in; edge-triggered epoll reports the socket's
                 * whole state with it: READABLE|WRITABLE, both wakers. */
                assert_int_equal(write(sv[1], "y", 1), 1);
                uint64_t w0 = evio_now_ms();
                while (!atomic_load(&v->started) && evio_now_ms() - w0 < 2000)
                        sched_yield();
                missed += !atomic_load(&v->started);
                evio_handle_deregister(h, io);
                atomic_store(&dereg_returned, v->round);
                free(v);
                close(sv[0]);
                close(sv[1]);
        }
        atomic_store(&sd.stop, true);
        pthread_join(th, NULL);
        evio_driver_free(sd.d);
        assert_true(rounds >= 20);
        assert_int_equal(missed, 0);
        assert_int_equal(atomic_load(&late), 0);
}

/* A deregister from the record's own waker, on the driver's thread, does not wait for itself. */
struct self_dereg {
        struct evio_handle *h;
        struct evio_scheduled_io *io;
        int calls;
};

static void deregister_myself(void *arg, uint32_t ready)
{
        struct self_dereg *s = arg;

        s->calls++;
        evio_handle_deregister(s->h, s->io);
}

static void test_deregister_from_own_waker(void **state)
{
        struct evio_driver *d;
        struct self_dereg s = {0};
        struct evio_waker w = {deregister_myself, &s};
        int sv[2];

        assert_int_equal(evio_driver_new(&d, NULL), 0);
        s.h = evio_driver_handle(d);
        make_pair(sv);
        assert_int_equal(evio_handle_register(s.h, sv[0],
                                              EVIO_INTEREST_READABLE | EVIO_INTEREST_WRITABLE, &w,
                                              &s.io),
                         0);
        assert_int_equal(write(sv[1], "x", 1), 1);
        assert_int_equal(evio_driver_turn(d, 1000), 1);
        assert_int_equal(s.calls, 1);
        assert_int_equal(evio__regset_pending(&s.h->regset), 1);
        close(sv[0]);
        close(sv[1]);
        evio_driver_free(d);
}

/* Issue 12 item 4: posting a task that is still queued is a no-op (the old code linked the task
 * to itself, and the driver ran it forever). Run in a child: a cycle hangs, the alarm ends it. */
static int post_twice_child(void)
{
        struct evio_driver *d;
        struct counted_task c = {.task.fn = run_counted};

        if (evio_driver_new(&d, NULL) < 0)
                return 2;
        if (evio_handle_post(evio_driver_handle(d), &c.task) != 0 ||
            evio_handle_post(evio_driver_handle(d), &c.task) != 0)
                return 3;
        evio_driver_turn(d, 0);
        evio_driver_turn(d, 0);
        if (atomic_load(&c.runs) != 1)
                return 4;
        /* Once it ran, it can be posted again. */
        if (evio_handle_post(evio_driver_handle(d), &c.task) != 0)
                return 5;
        evio_driver_turn(d, 0);
        evio_driver_free(d);
        return atomic_load(&c.runs) == 2 ? 0 : 6;
}

static void test_post_twice_runs_once(void **state)
{
        int status = child_status(post_twice_child, 5);

        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

/* A task that posts itself again runs on the next turn, not in a loop within this one. */
struct repost_task {
        struct evio_driver_task task;
        struct evio_handle *h;
        int runs;
};

static void repost_self(struct evio_driver_task *t)
{
        struct repost_task *r = (struct repost_task *)t;

        if (++r->runs < 3)
                evio_handle_post(r->h, t);
}

static void test_task_reposting_itself_waits_a_turn(void **state)
{
        struct evio_driver *d;
        struct repost_task r = {.task.fn = repost_self};

        assert_int_equal(evio_driver_new(&d, NULL), 0);
        r.h = evio_driver_handle(d);
        assert_int_equal(evio_handle_post(r.h, &r.task), 0);
        evio_driver_turn(d, 0);
        assert_int_equal(r.runs, 1);
        evio_driver_turn(d, 0);
        assert_int_equal(r.runs, 2);
        evio_driver_turn(d, 0);
        evio_driver_turn(d, 0);
        assert_int_equal(r.runs, 3);
        evio_driver_free(d);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_unpark_wakes_blocked_turn),
            cmocka_unit_test(test_post_runs_on_driver_thread),
            cmocka_unit_test(test_threads_register_while_turning),
            cmocka_unit_test(test_deregister_waits_for_running_waker),
            cmocka_unit_test(test_deregister_from_own_waker),
            cmocka_unit_test(test_post_twice_runs_once),
            cmocka_unit_test(test_task_reposting_itself_waits_a_turn),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
