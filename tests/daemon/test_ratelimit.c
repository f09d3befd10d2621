/* cmocka tests of the byte token buckets (daemon/ratelimit.c): the burst, grants bounded by it
 * and by the minimum, refunds, the wait until a grant, the long-run rate on a simulated clock,
 * and one bucket shared by threads (TSan) never granting more than rate x time + burst. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ratelimit.h"

#define S 1000000000ull

static void test_burst(void **state)
{
        assert_int_equal(rl_burst(1000), 32768);
        assert_int_equal(rl_burst(2000000), 200000);
}

static void test_take_and_refund(void **state)
{
        struct rl_bucket b = {0};
        uint64_t now = 10 * S, rate = 1000000, burst = 100000;

        assert_int_equal(rl_take(&b, rate, burst, 0, 60000, now), 60000);
        assert_int_equal(rl_take(&b, rate, burst, 0, 60000, now), 40000); /* what is left */
        assert_int_equal(rl_take(&b, rate, burst, 1, 60000, now), 0);
        assert_int_equal(rl_wait_ns(&b, rate, burst, 50000, now), 50 * 1000000ull);
        /* 10 ms later: 10000 bytes, below a minimum of 20000. */
        assert_int_equal(rl_take(&b, rate, burst, 20000, 60000, now + S / 100), 0);
        assert_int_equal(rl_take(&b, rate, burst, 5000, 60000, now + S / 100), 10000);
        rl_refund(&b, rate, 10000);
        assert_int_equal(rl_take(&b, rate, burst, 0, 60000, now + S / 100), 10000);
        /* An idle bucket fills up to its burst, no more. */
        assert_int_equal(rl_take(&b, rate, burst, 0, 1000000, now + 60 * S), burst);
}

/* A reader pulling 64 KiB whenever the bucket allows, on a 1 ms clock, for 10 s. */
static void test_long_run_rate(void **state)
{
        struct rl_bucket b = {0};
        uint64_t rate = 2 << 20, burst = rl_burst(rate), got = 0;

        for (uint64_t ms = 0; ms < 10000; ms++)
                got += rl_take(&b, rate, burst, 32768, 65536, 5 * S + ms * 1000000);
        assert_true(got <= rate * 10 + burst);
        assert_true(got >= rate * 10 - 65536);
}

struct taker {
        struct rl_bucket *b;
        uint64_t got, end_ns;
};

static void *taker_fn(void *arg)
{
        struct taker *t = arg;

        for (uint64_t now = rl_now_ns(); now < t->end_ns; now = rl_now_ns()) {
                uint64_t g = rl_take(t->b, 10 << 20, 1 << 20, 1, 4096, now);

                if (g > 100) /* give some back, as a short read does */
                        rl_refund(t->b, 10 << 20, 100);
                t->got += g > 100 ? g - 100 : g;
        }
        return NULL;
}

/* Four threads share one bucket of 10 MiB/s for 200 ms: together within rate x time + burst. */
static void test_shared_by_threads(void **state)
{
        struct rl_bucket b = {0};
        struct taker t[4];
        pthread_t th[4];
        uint64_t start = rl_now_ns(), total = 0;

        for (int i = 0; i < 4; i++) {
                t[i] = (struct taker){.b = &b, .end_ns = start + S / 5};
                assert_int_equal(pthread_create(&th[i], NULL, taker_fn, &t[i]), 0);
        }
        for (int i = 0; i < 4; i++) {
                pthread_join(th[i], NULL);
                total += t[i].got;
        }
        assert_true(total <= (10u << 20) / 5 + (1u << 20) + 4096);
        assert_true(total > 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_burst),
            cmocka_unit_test(test_take_and_refund),
            cmocka_unit_test(test_long_run_rate),
            cmocka_unit_test(test_shared_by_threads),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
