/* The waiting-client queue (daemon/conn_queue.h): off without queue_timeout, bounded per route
 * by queue_size (counted as queue_full), back-off 50 ms doubling to 1 s and never past the
 * deadline, expiry counted once, oldest-first wake-ups per route that pass over entries
 * already retrying, and a leave that is idempotent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include <evproxy/config.h>

#include "conn_queue.h"
#include "route.h"

static struct cfg_route route_cfg(uint64_t timeout_ms, unsigned size)
{
        return (struct cfg_route){
            .name = (char *)"r", .queue_timeout_ms = timeout_ms, .queue_size = size};
}

static void test_off(void **state)
{
        struct cfg_route rc = route_cfg(0, 10);
        struct route_stats st = {0};
        struct conn_queue q;
        struct cq_entry e = {0};
        uint64_t at = 0;

        cq_init(&q);
        assert_int_equal(cq_wait(&q, &e, &st, &rc, 1000, &at), CQ_OFF);
        assert_false(e.linked);
        assert_int_equal(atomic_load(&st.queued), 0);
        cq_leave(&q, &e); /* never queued: nothing to do */
}

static void test_backoff_and_expiry(void **state)
{
        static const uint64_t waits[] = {50, 100, 200, 400, 800, 1000, 1000};
        struct cfg_route rc = route_cfg(5000, 10);
        struct route_stats st = {0};
        struct conn_queue q;
        struct cq_entry e = {0};
        uint64_t now = 1000, at = 0;

        cq_init(&q);
        for (size_t k = 0; k < sizeof(waits) / sizeof(waits[0]); k++) {
                assert_int_equal(cq_wait(&q, &e, &st, &rc, now, &at), CQ_WAIT);
                assert_int_equal(at - now, waits[k]);
                assert_int_equal(atomic_load(&st.queued), 1);
                now = at;
                cq_retrying(&e);
                assert_true(e.retrying);
        }
        /* 3550 ms waited: the next wait stops at the deadline, not a full second later. */
        now = 5800;
        assert_int_equal(cq_wait(&q, &e, &st, &rc, now, &at), CQ_WAIT);
        assert_int_equal(at, 6000);
        assert_int_equal(cq_wait(&q, &e, &st, &rc, 6000, &at), CQ_EXPIRED);
        assert_false(e.linked);
        assert_int_equal(atomic_load(&st.queued), 0);
        assert_int_equal(atomic_load(&st.queue_timeouts), 1);
        assert_null(TAILQ_FIRST(&q.list));
}

static void test_full(void **state)
{
        struct cfg_route rc = route_cfg(5000, 2);
        struct route_stats st = {0};
        struct conn_queue q1, q2;
        struct cq_entry e[3];
        uint64_t at;

        memset(e, 0, sizeof(e));
        cq_init(&q1);
        cq_init(&q2); /* queue_size is per route: two workers' queues share it */
        assert_int_equal(cq_wait(&q1, &e[0], &st, &rc, 0, &at), CQ_WAIT);
        assert_int_equal(cq_wait(&q2, &e[1], &st, &rc, 0, &at), CQ_WAIT);
        assert_int_equal(cq_wait(&q1, &e[2], &st, &rc, 0, &at), CQ_FULL);
        assert_false(e[2].linked);
        assert_int_equal(atomic_load(&st.queue_full), 1);
        cq_leave(&q2, &e[1]);
        cq_leave(&q2, &e[1]); /* idempotent */
        assert_int_equal(atomic_load(&st.queued), 1);
        assert_int_equal(cq_wait(&q1, &e[2], &st, &rc, 0, &at), CQ_WAIT);
        cq_leave(&q1, &e[0]);
        cq_leave(&q1, &e[2]);
        assert_int_equal(atomic_load(&st.queued), 0);
        assert_int_equal(q1.n, 0);
}

static void test_oldest_per_route(void **state)
{
        struct cfg_route rc = route_cfg(5000, 10);
        struct route_stats a = {0}, b = {0};
        struct conn_queue q;
        struct cq_entry e[4];
        uint64_t at;

        memset(e, 0, sizeof(e));
        cq_init(&q);
        assert_int_equal(cq_wait(&q, &e[0], &a, &rc, 0, &at), CQ_WAIT);
        assert_int_equal(cq_wait(&q, &e[1], &b, &rc, 1, &at), CQ_WAIT);
        assert_int_equal(cq_wait(&q, &e[2], &a, &rc, 2, &at), CQ_WAIT);
        assert_int_equal(cq_wait(&q, &e[3], &b, &rc, 3, &at), CQ_WAIT);
        assert_ptr_equal(cq_oldest(&q, &a), &e[0]);
        assert_ptr_equal(cq_oldest(&q, &b), &e[1]);
        cq_retrying(&e[0]);
        assert_ptr_equal(cq_oldest(&q, &a), &e[2]);
        /* Its retry found nothing again: it waits again, in its old place (oldest first). */
        assert_int_equal(cq_wait(&q, &e[0], &a, &rc, 100, &at), CQ_WAIT);
        assert_ptr_equal(cq_oldest(&q, &a), &e[0]);
        cq_leave(&q, &e[0]);
        assert_ptr_equal(cq_oldest(&q, &a), &e[2]);
        cq_leave(&q, &e[2]);
        assert_null(cq_oldest(&q, &a));
        assert_int_equal(atomic_load(&a.queued), 0);
        assert_int_equal(atomic_load(&b.queued), 2);
        cq_leave(&q, &e[1]);
        cq_leave(&q, &e[3]);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_off),
            cmocka_unit_test(test_backoff_and_expiry),
            cmocka_unit_test(test_full),
            cmocka_unit_test(test_oldest_per_route),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
