/* Timers: 10,000 random deadlines fire in deadline order, never early; cancel works; re-arm
 * moves a timer; evio_driver_turn's timeout never overshoots the nearest deadline; a timer fires
 * at most once per turn, and callbacks may cancel or re-arm timers due in the same turn. */
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

/* Issue 12 item 4: a timer re-armed in the past from its own callback fires once per turn,
 * however many other timers are armed (the old loop was bounded by the number of armed timers,
 * so it fired the same timer again in the same turn); timers due on entry still all fire. */
struct rearm_count {
        struct evio_driver *d;
        int fired;
};

static void rearm_in_past(struct evio_timer *t, void *arg)
{
        struct rearm_count *c = arg;

        c->fired++;
        assert_int_equal(evio_timer_arm(c->d, t, 1), 0);
}

static void count_fire(struct evio_timer *t, void *arg)
{
        (*(int *)arg)++;
}

static void test_rearm_in_past_fires_once_per_turn(void **state)
{
        struct rearm_count c = {0};
        struct evio_timer self, due[3], later[5];
        int due_fired = 0, later_fired = 0;

        assert_int_equal(evio_driver_new(&c.d, NULL), 0);
        evio_timer_init(&self, rearm_in_past, &c);
        assert_int_equal(evio_timer_arm(c.d, &self, 1), 0);
        for (int i = 0; i < 3; i++) {
                evio_timer_init(&due[i], count_fire, &due_fired);
                assert_int_equal(evio_timer_arm(c.d, &due[i], 2 + (uint64_t)i), 0);
        }
        for (int i = 0; i < 5; i++) {
                evio_timer_init(&later[i], count_fire, &later_fired);
                assert_int_equal(evio_timer_arm(c.d, &later[i], evio_now_ms() + 60000), 0);
        }
        for (int turn = 1; turn <= 4; turn++) {
                assert_int_equal(evio_driver_next_timeout(c.d, -1), 0);
                evio_driver_turn(c.d, 1000);
                assert_int_equal(c.fired, turn);
                assert_int_equal(due_fired, 3);
                assert_true(evio_timer_armed(&self));
        }
        assert_int_equal(later_fired, 0);
        evio_timer_cancel(c.d, &self);
        for (int i = 0; i < 5; i++)
                evio_timer_cancel(c.d, &later[i]);
        evio_driver_free(c.d);
}

/* A callback may cancel or re-arm a timer that is due in the same turn: a cancelled one does
 * not fire, one re-armed to the future fires then, one re-armed in the past fires next turn. */
struct due_ctx {
        struct evio_driver *d;
        struct evio_timer *victim, *moved, *again;
        int victim_fired, moved_fired, again_fired;
};

static void on_victim(struct evio_timer *t, void *arg)
{
        ((struct due_ctx *)arg)->victim_fired++;
}

static void on_moved(struct evio_timer *t, void *arg)
{
        ((struct due_ctx *)arg)->moved_fired++;
}

static void on_again(struct evio_timer *t, void *arg)
{
        ((struct due_ctx *)arg)->again_fired++;
}

static void first_meddles(struct evio_timer *t, void *arg)
{
        struct due_ctx *c = arg;

        evio_timer_cancel(c->d, c->victim);
        assert_int_equal(evio_timer_arm(c->d, c->moved, evio_now_ms() + 60000), 0);
        assert_int_equal(evio_timer_arm(c->d, c->again, 0), 0);
}

static void test_callback_cancels_and_rearms_due_timers(void **state)
{
        struct due_ctx c = {0};
        struct evio_timer first, victim, moved, again;

        assert_int_equal(evio_driver_new(&c.d, NULL), 0);
        c.victim = &victim;
        c.moved = &moved;
        c.again = &again;
        evio_timer_init(&first, first_meddles, &c);
        evio_timer_init(&victim, on_victim, &c);
        evio_timer_init(&moved, on_moved, &c);
        evio_timer_init(&again, on_again, &c);
        assert_int_equal(evio_timer_arm(c.d, &first, 1), 0);
        assert_int_equal(evio_timer_arm(c.d, &victim, 2), 0);
        assert_int_equal(evio_timer_arm(c.d, &moved, 3), 0);
        assert_int_equal(evio_timer_arm(c.d, &again, 4), 0);
        evio_driver_turn(c.d, 0);
        assert_int_equal(c.victim_fired, 0);
        assert_false(evio_timer_armed(&victim));
        assert_int_equal(c.moved_fired, 0);
        assert_true(evio_timer_armed(&moved));
        assert_int_equal(c.again_fired, 0);
        assert_true(evio_timer_armed(&again));
        evio_driver_turn(c.d, 0);
        assert_int_equal(c.again_fired, 1);
        assert_false(evio_timer_armed(&again));
        evio_timer_cancel(c.d, &moved);
        evio_driver_free(c.d);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_random_deadlines_fire_in_order),
            cmocka_unit_test(test_virtual_time_order_and_cancel),
            cmocka_unit_test(test_timeout_never_overshoots),
            cmocka_unit_test(test_rearm_in_past_is_bounded),
            cmocka_unit_test(test_rearm_in_past_fires_once_per_turn),
            cmocka_unit_test(test_callback_cancels_and_rearms_due_timers),
        };
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        free(log_.deadlines);
        free(log_.at);
        return r;
}
