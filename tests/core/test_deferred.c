/* Deferred-task queue: runs in order after dispatch, tasks and timers; defer and undefer are
 * idempotent; a pass runs only what was queued when it began (a re-defer waits for the next
 * turn); undefer takes a task out of a pass in progress; a turn does not block with work queued. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>

#include "internal.h"
#include "common.h"

enum { MAX_LOG = 64 };

struct ctx {
        struct evio_driver *d;
        int log[MAX_LOG];
        int n;
};

struct item {
        struct evio_deferred task;
        struct ctx *c;
        int id;
        int redefer;                /* times left to defer itself again */
        struct evio_deferred *kill; /* undefer this one when run */
};

static void run_item(struct evio_deferred *t)
{
        struct item *it = (struct item *)t;
        struct ctx *c = it->c;

        assert_true(c->n < MAX_LOG);
        c->log[c->n++] = it->id;
        if (it->kill)
                evio_driver_undefer(c->d, it->kill);
        if (it->redefer > 0) {
                it->redefer--;
                evio_driver_defer(c->d, t);
        }
}

static void init_items(struct ctx *c, struct item *items, int n)
{
        for (int i = 0; i < n; i++)
                items[i] = (struct item){.task.fn = run_item, .c = c, .id = i};
}

static void test_runs_in_order_once(void **state)
{
        struct ctx c = {0};
        struct item it[4];

        assert_int_equal(evio_driver_new(&c.d, NULL), 0);
        init_items(&c, it, 4);
        evio_driver_defer(c.d, &it[2].task);
        evio_driver_defer(c.d, &it[0].task);
        evio_driver_defer(c.d, &it[2].task); /* queued: keeps its place */
        evio_driver_defer(c.d, &it[3].task);
        evio_driver_defer(c.d, &it[1].task);
        evio_driver_undefer(c.d, &it[3].task);
        evio_driver_undefer(c.d, &it[3].task); /* not queued: a no-op */
        assert_true(it[2].task.queued);
        assert_false(it[3].task.queued);
        assert_int_equal(evio_driver_turn(c.d, 0), 0);
        assert_int_equal(c.n, 3);
        assert_int_equal(c.log[0], 2);
        assert_int_equal(c.log[1], 0);
        assert_int_equal(c.log[2], 1);
        for (int i = 0; i < 4; i++)
                assert_false(it[i].task.queued);
        assert_int_equal(evio_driver_turn(c.d, 0), 0);
        assert_int_equal(c.n, 3); /* ran once */
        evio_driver_free(c.d);
}

/* A task that defers itself again, and one deferred from a pass, wait for the next turn. */
static void test_redefer_waits_for_next_turn(void **state)
{
        struct ctx c = {0};
        struct item it[2];

        assert_int_equal(evio_driver_new(&c.d, NULL), 0);
        init_items(&c, it, 2);
        it[0].redefer = 2;
        evio_driver_defer(c.d, &it[0].task);
        evio_driver_defer(c.d, &it[1].task);
        evio_driver_turn(c.d, 0);
        assert_int_equal(c.n, 2); /* 0, 1: not 0 again in the same pass */
        assert_true(it[0].task.queued);
        evio_driver_turn(c.d, 0);
        assert_int_equal(c.n, 3);
        evio_driver_turn(c.d, 0);
        assert_int_equal(c.n, 4);
        evio_driver_turn(c.d, 0);
        assert_int_equal(c.n, 4);
        for (int i = 0; i < 4; i++)
                assert_int_equal(c.log[i], i == 1 ? 1 : 0);
        evio_driver_free(c.d);
}

/* A task of the pass in progress that an earlier one undefers does not run; one that a task
 * undefers and defers again runs on the next turn, behind the others. */
static void test_undefer_during_pass(void **state)
{
        struct ctx c = {0};
        struct item it[3];

        assert_int_equal(evio_driver_new(&c.d, NULL), 0);
        init_items(&c, it, 3);
        it[0].kill = &it[1].task;
        evio_driver_defer(c.d, &it[0].task);
        evio_driver_defer(c.d, &it[1].task);
        evio_driver_defer(c.d, &it[2].task);
        evio_driver_turn(c.d, 0);
        assert_int_equal(c.n, 2);
        assert_int_equal(c.log[0], 0);
        assert_int_equal(c.log[1], 2);
        assert_false(it[1].task.queued);
        assert_int_equal(c.d->n_deferred, 0);
        evio_driver_free(c.d);
}

/* With work queued, a turn asked to wait forever returns at once, and the next timeout is 0. */
static void test_turn_does_not_block_with_work_queued(void **state)
{
        struct ctx c = {0};
        struct item it[1];

        assert_int_equal(evio_driver_new(&c.d, NULL), 0);
        init_items(&c, it, 1);
        it[0].redefer = 3;
        assert_int_equal(evio_driver_next_timeout(c.d, -1), -1);
        evio_driver_defer(c.d, &it[0].task);
        assert_int_equal(evio_driver_next_timeout(c.d, -1), 0);
        uint64_t t0 = evio_now_ms();
        for (int i = 0; i < 4; i++)
                assert_int_equal(evio_driver_turn(c.d, -1), 0);
        assert_true(evio_now_ms() - t0 < 5000);
        assert_int_equal(c.n, 4);
        assert_false(it[0].task.queued);
        assert_int_equal(evio_driver_next_timeout(c.d, 250), 250);
        evio_driver_free(c.d);
}

/* The pass runs after the wakers, tasks and timers of the same turn: what they defer runs in
 * that turn; it sees the turn's clock. */
struct order {
        struct evio_driver *d;
        struct evio_deferred from_waker, from_timer;
        char seq[8];
        int n;
};

static void note_waker_task(struct evio_deferred *t)
{
        struct order *o = (struct order *)((char *)t - offsetof(struct order, from_waker));
        o->seq[o->n++] = 'W';
}

static void note_timer_task(struct evio_deferred *t)
{
        struct order *o = (struct order *)((char *)t - offsetof(struct order, from_timer));
        o->seq[o->n++] = 'T';
}

static void waker_defers(void *arg, uint32_t ready)
{
        struct order *o = arg;
        o->seq[o->n++] = 'w';
        evio_driver_defer(o->d, &o->from_waker);
}

static void timer_defers(struct evio_timer *t, void *arg)
{
        struct order *o = arg;
        o->seq[o->n++] = 't';
        evio_driver_defer(o->d, &o->from_timer);
}

static void test_pass_runs_after_dispatch_and_timers(void **state)
{
        struct order o = {.from_waker.fn = note_waker_task, .from_timer.fn = note_timer_task};
        struct evio_waker w = {waker_defers, &o};
        struct evio_scheduled_io *io;
        struct evio_timer t;
        int sv[2];

        assert_int_equal(evio_driver_new(&o.d, NULL), 0);
        make_pair(sv);
        assert_int_equal(
            evio_handle_register(evio_driver_handle(o.d), sv[0], EVIO_INTEREST_READABLE, &w, &io),
            0);
        evio_timer_init(&t, timer_defers, &o);
        assert_int_equal(evio_timer_arm(o.d, &t, 0), 0);
        assert_int_equal(write(sv[1], "x", 1), 1);
        uint64_t before = evio_now_ms();
        assert_int_equal(evio_driver_turn(o.d, 1000), 1);
        assert_string_equal(o.seq, "wtWT");
        assert_true(evio_driver_now_ms(o.d) >= before);
        assert_true(evio_driver_now_ms(o.d) <= evio_now_ms());
        evio_handle_deregister(evio_driver_handle(o.d), io);
        close(sv[0]);
        close(sv[1]);
        evio_driver_free(o.d);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_runs_in_order_once),
            cmocka_unit_test(test_redefer_waits_for_next_turn),
            cmocka_unit_test(test_undefer_during_pass),
            cmocka_unit_test(test_turn_does_not_block_with_work_queued),
            cmocka_unit_test(test_pass_runs_after_dispatch_and_timers),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
