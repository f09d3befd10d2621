/* Bandwidth limits (issue 16): a token bucket of bytes per second kept as one atomic word
 * (GCRA's theoretical arrival time), so the same bucket serves one connection's direction and,
 * shared by every worker, all the connections of a route (route_rate). */
#ifndef EVPROXYD_RATELIMIT_H
#define EVPROXYD_RATELIMIT_H

#include <stdatomic.h>
#include <stdint.h>

struct rl_bucket {
        /* When the bucket would be full again (ns, CLOCK_MONOTONIC); 0 = full from the start. */
        atomic_uint_least64_t tat_ns;
};

/* The bucket size for a rate: a tenth of a second's worth, at least 32 KiB (one read of a
 * bulk flow), so the first burst adds little to a measured average and reads stay large. */
uint64_t rl_burst(uint64_t rate);
/* Take up to want bytes (want <= burst), or nothing when fewer than min are there: returns the
 * bytes granted. rate > 0. Any thread. */
uint64_t rl_take(struct rl_bucket *b, uint64_t rate, uint64_t burst, uint64_t min, uint64_t want,
                 uint64_t now_ns);
/* Give back n bytes granted by rl_take and not used. */
void rl_refund(struct rl_bucket *b, uint64_t rate, uint64_t n);
/* Nanoseconds from now_ns until need bytes (<= burst) can be taken; 0 if they can now. */
uint64_t rl_wait_ns(struct rl_bucket *b, uint64_t rate, uint64_t burst, uint64_t need,
                    uint64_t now_ns);
/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t rl_now_ns(void);

#endif
