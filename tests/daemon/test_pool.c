/* cmocka tests of the pipe pool's budget (daemon/pool.c): pipes are made only within the
 * daemon-wide limit, counted by capacity whether held or pooled, given back when closed, kept
 * for reuse only while the budget has room, and sized as the kernel rounds them. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pool.h"

#define SIZE ((size_t)65536)

static size_t bytes(struct pipe_budget *b)
{
        return atomic_load(&b->bytes);
}

static void test_rounds_like_the_kernel(void **state)
{
        struct pipe_pool p;
        struct pipe_pair *pp;

        pipe_pool_init(&p, 100000, 4);
        assert_int_equal(p.size, 131072);
        assert_int_equal(pipe_pool_get(&p, &pp), 0);
        assert_int_equal(pp->cap, 131072);
        assert_int_equal(fcntl(pp->wfd, F_GETPIPE_SZ), 131072);
        pipe_pool_put(&p, pp);
        pipe_pool_destroy(&p);
}

static void test_within_limit(void **state)
{
        struct pipe_budget b;
        struct pipe_pool p;
        struct pipe_pair *a, *c, *x = NULL;

        memset(&b, 0, sizeof(b));
        pipe_budget_set_limit(&b, 2 * SIZE + SIZE / 2);
        pipe_pool_init(&p, SIZE, 4);
        pipe_pool_set_budget(&p, &b);
        assert_int_equal(pipe_pool_get(&p, &a), 0);
        assert_int_equal(pipe_pool_get(&p, &c), 0);
        assert_int_equal(bytes(&b), 2 * SIZE);
        assert_int_equal(atomic_load(&b.pipes_in_use), 2);
        assert_int_equal(atomic_load(&b.bytes_in_use), 2 * SIZE);
        /* A third does not fit: refused, counted, nothing made. */
        assert_int_equal(pipe_pool_get(&p, &x), -ENOBUFS);
        assert_null(x);
        assert_int_equal(atomic_load(&b.refused), 1);
        assert_int_equal(atomic_load(&b.pipes), 2);
        assert_int_equal(bytes(&b), 2 * SIZE);
        /* Over 3/4 of the budget spent: a pipe given back is closed, not pooled. */
        pipe_pool_put(&p, a);
        assert_int_equal(p.n_free, 0);
        assert_int_equal(bytes(&b), SIZE);
        assert_int_equal(atomic_load(&b.pipes), 1);
        /* Room again: the next one is kept for reuse, still counted, no longer in use. */
        pipe_pool_put(&p, c);
        assert_int_equal(p.n_free, 1);
        assert_int_equal(bytes(&b), SIZE);
        assert_int_equal(atomic_load(&b.pipes_in_use), 0);
        assert_int_equal(atomic_load(&b.bytes_in_use), 0);
        /* Reused without a new reservation; a pipe that may hold data is discarded. */
        assert_int_equal(pipe_pool_get(&p, &a), 0);
        assert_ptr_equal(a, c);
        assert_int_equal(bytes(&b), SIZE);
        pipe_pool_discard(a);
        assert_int_equal(bytes(&b), 0);
        assert_int_equal(atomic_load(&b.pipes), 0);
        assert_int_equal(atomic_load(&b.pipes_in_use), 0);
        pipe_pool_destroy(&p);
}

static void test_pool_counts_until_destroyed(void **state)
{
        struct pipe_budget b;
        struct pipe_pool p;
        struct pipe_pair *pp[3];

        memset(&b, 0, sizeof(b));
        pipe_budget_set_limit(&b, 64 * SIZE);
        pipe_pool_init(&p, SIZE, 2);
        pipe_pool_set_budget(&p, &b);
        for (int i = 0; i < 3; i++)
                assert_int_equal(pipe_pool_get(&p, &pp[i]), 0);
        for (int i = 0; i < 3; i++)
                pipe_pool_put(&p, pp[i]);
        /* max_free 2: the third is closed. */
        assert_int_equal(p.n_free, 2);
        assert_int_equal(bytes(&b), 2 * SIZE);
        assert_int_equal(atomic_load(&b.pipes), 2);
        pipe_pool_destroy(&p);
        assert_int_equal(bytes(&b), 0);
        assert_int_equal(atomic_load(&b.pipes), 0);
}

static void test_a_lower_limit_holds_new_pipes(void **state)
{
        struct pipe_budget b;
        struct pipe_pool p;
        struct pipe_pair *a, *x;

        memset(&b, 0, sizeof(b));
        pipe_budget_set_limit(&b, 4 * SIZE);
        pipe_pool_init(&p, SIZE, 4);
        pipe_pool_set_budget(&p, &b);
        assert_int_equal(pipe_pool_get(&p, &a), 0);
        pipe_budget_set_limit(&b, SIZE / 2); /* a reload lowered it */
        assert_int_equal(pipe_pool_get(&p, &x), -ENOBUFS);
        pipe_pool_put(&p, a); /* over the new limit: closed */
        assert_int_equal(p.n_free, 0);
        assert_int_equal(bytes(&b), 0);
        pipe_pool_destroy(&p);
}

int main(void)
{
        static const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_rounds_like_the_kernel),
            cmocka_unit_test(test_within_limit),
            cmocka_unit_test(test_pool_counts_until_destroyed),
            cmocka_unit_test(test_a_lower_limit_holds_new_pipes),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
