/* Token buckets as GCRA: the bucket's state is the time tat at which it would be full again;
 * its debt at time now is tat - now (never below 0), and taking n bytes adds n / rate seconds
 * of debt, allowed while the debt stays within burst / rate. One compare-and-swap per take, so
 * workers share a route's bucket without a lock. Products go through 128 bits: a rate of up to
 * 2^40 bytes/s times nanoseconds overflows 64. */
#include <time.h>

#include "ratelimit.h"

#define NS 1000000000ull

typedef unsigned __int128 u128;

static uint64_t cost_ns(uint64_t rate, uint64_t n)
{
        return (uint64_t)(((u128)n * NS + rate - 1) / rate);
}

static uint64_t bytes_in(uint64_t rate, uint64_t ns)
{
        return (uint64_t)((u128)ns * rate / NS);
}

uint64_t rl_burst(uint64_t rate)
{
        uint64_t b = rate / 10;

        return b < 32768 ? 32768 : b;
}

uint64_t rl_now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

uint64_t rl_take(struct rl_bucket *b, uint64_t rate, uint64_t burst, uint64_t min, uint64_t want,
                 uint64_t now_ns)
{
        uint64_t old = atomic_load_explicit(&b->tat_ns, memory_order_relaxed);
        uint64_t limit = now_ns + cost_ns(rate, burst);

        for (;;) {
                uint64_t base = old > now_ns ? old : now_ns;
                uint64_t room = base < limit ? bytes_in(rate, limit - base) : 0;
                uint64_t grant = want < room ? want : room;

                if (grant == 0 || grant < min)
                        return 0;
                if (atomic_compare_exchange_weak_explicit(
                        &b->tat_ns, &old, base + cost_ns(rate, grant), memory_order_relaxed,
                        memory_order_relaxed))
                        return grant;
        }
}

void rl_refund(struct rl_bucket *b, uint64_t rate, uint64_t n)
{
        uint64_t back = n ? cost_ns(rate, n) : 0;
        uint64_t old = atomic_load_explicit(&b->tat_ns, memory_order_relaxed);

        while (back &&
               !atomic_compare_exchange_weak_explicit(&b->tat_ns, &old, old > back ? old - back : 0,
                                                      memory_order_relaxed, memory_order_relaxed))
                ;
}

uint64_t rl_wait_ns(struct rl_bucket *b, uint64_t rate, uint64_t burst, uint64_t need,
                    uint64_t now_ns)
{
        uint64_t tat = atomic_load_explicit(&b->tat_ns, memory_order_relaxed);
        uint64_t base = tat > now_ns ? tat : now_ns;
        uint64_t ready = base + cost_ns(rate, need);      /* debt once need is taken ... */
        uint64_t allowed = now_ns + cost_ns(rate, burst); /* ... may reach this */

        return ready > allowed ? ready - allowed : 0;
}
