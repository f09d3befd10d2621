/* Timers: 10,000 random deadlines fire in deadline order, never early; cancel works; re-arm
 * moves a timer; evio_driver_turn's timeout never overshoots the nearest deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>

#include "internal.h"

enum { N = 10000 };

struct fired {
        uint64_t *deadlines;
        uint64_t *at;
        size_t n;
        bool order_ok;
        bool early;
        uint64_t now; /* for virtual-time firing: 0 = use the real clock */
};

static struct fired log_;

static void on_fire(struct evio_timer *t, void *arg)
{
        uint64_t now = log_.now ? log_.now : evio_now_ms();
        if (log_.n && log_.deadlines[log_.n - 1] > t->deadline_ms)
                log_.order_ok = false;
        if (now < t->deadline_ms)
                log_.early = true;
        log_.deadlines[log_.n] = t->deadline_ms;
        log_.at[log_.n++] = now;
        (void)arg;
}

static void reset_log(void)
{
        free(log_.deadlines);
        free(log_.at);
        log_ = (struct fired){.order_ok = true};
        log_.deadlines = calloc(N, sizeof(uint64_t));
        log_.at = calloc(N, sizeof(uint64_t));
}

static void test_random_deadlines_fire_in_order(void **state)
{
        struct evio_driver *d;
        struct evio_timer *t = calloc(N, sizeof(*t));
        bool *cancelled = calloc(N, sizeof(bool));
        size_t n_cancelled = 0;

        assert_int_equal(evio_driver_new(&d, NULL), 0);
        reset_log();
        srand(12345);
        uint64_t base = evio_now_ms();
        for (int i = 0; i < N; i++) {
                evio_timer_init(&t[i], on_fire, NULL);
                assert_int_equal(evio_timer_arm(d, &t[i], base + 20 + (uint64_t)(rand() % 400)), 0);
        }
        for (int i = 0; i < N; i += 10) {
                evio_timer_cancel(d, &t[i]);
                evio_timer_cancel(d, &t[i]); /* twice is harmless */
                cancelled[i] = true;
                n_cancelled++;
        }
        /* Re-arming moves a timer: push some later. */
        for (int i = 5; i < N; i += 100)
                assert_int_equal(evio_timer_arm(d, &t[i], base + 450), 0);
        for (int i = 0; i < 5000 && log_.n < N - n_cancelled && evio_now_ms() - base < 5000; i++)
                evio_driver_turn(d, -1);
        assert_int_equal(log_.n, N - n_cancelled);
        assert_true(log_.order_ok);
        assert_false(log_.early);
        for (int i = 0; i < N; i++)
                assert_false(evio_timer_armed(&t[i]));
        evio_driver_free(d);
        free(t);
        free(cancelled);
}

static void test_virtual_time_order_and_cancel(void **state)
{
        struct evio_driver *d;
        struct evio_timer *t = calloc(N, sizeof(*t));

        assert_int_equal(evio_driver_new(&d, NULL), 0);
        reset_log();
        srand(777);
        for (int i = 0; i < N; i++) {
                evio_timer_init(&t[i], on_fire, NULL);
                assert_int_equal(evio_timer_arm(d, &t[i], 1000 + (uint64_t)(rand() % 1000000)), 0);
        }
        for (int i = 1; i < N; i += 2)
                evio_timer_cancel(d, &t[i]);
        log_.now = 500000;
        size_t first = evio__timer_heap_fire(&d->timers, log_.now);
        for (size_t i = 0; i < first; i++)
                assert_true(log_.deadlines[i] <= 500000);
        log_.now = UINT64_MAX;
        evio__timer_heap_fire(&d->timers, log_.now);
        assert_int_equal(log_.n, N / 2);
        assert_true(log_.order_ok);
        for (int i = 1; i < N; i += 2)
                assert_false(evio_timer_armed(&t[i]));
        evio_driver_free(d);
        free(t);
}

static void test_timeout_never_overshoots(void **state)
{
        struct evio_driver *d;
        struct evio_timer a, b;

        assert_int_equal(evio_driver_new(&d, NULL), 0);
        assert_int_equal(evio_driver_next_timeout(d, -1), -1);
        assert_int_equal(evio_driver_next_timeout(d, 250), 250);
        evio_timer_init(&a, on_fire, NULL);
        evio_timer_init(&b, on_fire, NULL);
        uint64_t now = evio_now_ms();
        evio_timer_arm(d, &a, now + 300);
        evio_timer_arm(d, &b, now + 100);
        int to = evio_driver_next_timeout(d, -1);
        assert_true(to <= 100 && to >= 90);
        assert_true(evio_driver_next_timeout(d, 1000) <= 100);
        assert_int_equal(evio_driver_next_timeout(d, 40), 40);
        assert_int_equal(evio_driver_next_timeout(d, 0), 0);
        evio_timer_cancel(d, &b);
        to = evio_driver_next_timeout(d, -1);
        assert_true(to <= 300 && to > 100);
        /* A deadline in the past means do not wait at all. */
        evio_timer_arm(d, &b, now - 5);
        assert_int_equal(evio_driver_next_timeout(d, -1), 0);
        evio_timer_cancel(d, &a);
        evio_timer_cancel(d, &b);

        /* A blocked turn with no I/O returns for the timer, not before its deadline. */
        reset_log();
        evio_timer_arm(d, &a, evio_now_ms() + 30);
        for (int i = 0; i < 10 && log_.n == 0; i++)
                evio_driver_turn(d, -1);
        assert_int_equal(log_.n, 1);
        assert_false(log_.early);
        assert_true(log_.at[0] - log_.deadlines[0] < 1000);
        evio_driver_free(d);
}

struct rearm_ctx {
        struct evio_driver *d;
        int count;
};

static void rearm_self(struct evio_timer *t, void *arg)
{
        struct rearm_ctx *c = arg;
        if (++c->count < 3)
                evio_timer_arm(c->d, t, 0);
}

static void test_rearm_in_past_is_bounded(void **state)
{
        struct rearm_ctx ctx = {0};
        struct evio_timer t;

        assert_int_equal(evio_driver_new(&ctx.d, NULL), 0);
        evio_timer_init(&t, rearm_self, &ctx);
        evio_timer_arm(ctx.d, &t, 0);
        /* One turn fires it once even though the callback re-arms it in the past. */
        evio_driver_turn(ctx.d, 0);
        assert_int_equal(ctx.count, 1);
        evio_driver_turn(ctx.d, 0);
        evio_driver_turn(ctx.d, 0);
        assert_int_equal(ctx.count, 3);
        assert_false(evio_timer_armed(&t));
        evio_driver_free(ctx.d);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_random_deadlines_fire_in_order),
            cmocka_unit_test(test_virtual_time_order_and_cancel),
            cmocka_unit_test(test_timeout_never_overshoots),
            cmocka_unit_test(test_rearm_in_past_is_bounded),
        };
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        free(log_.deadlines);
        free(log_.at);
        return r;
}
