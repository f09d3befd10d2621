/* Timers of one driver: a 4-ary min-heap of intrusive records keyed by a monotonic deadline
 * in milliseconds. Insert (timer_arm) and cancel (timer_cancel) cost O(log n), firing the
 * earliest costs O(log n), finding the nearest deadline O(1); no allocation per timer.
 * Timers belong to the driver's thread: arm, cancel and fire only there. */
#ifndef EVPROXY_TIMER_H
#define EVPROXY_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct driver;
struct timer;

typedef void timer_fn(struct timer *t, void *arg);

struct timer {
        uint64_t deadline_ms;
        size_t heap_index; /* SIZE_MAX when not armed */
        timer_fn *fn;
        void *arg;
};

void timer_init(struct timer *t, timer_fn *fn, void *arg);
bool timer_armed(const struct timer *t);

/* Arm (or re-arm) t to fire at deadline_ms on the driver's monotonic clock. 0 or -ENOMEM. */
int timer_arm(struct driver *d, struct timer *t, uint64_t deadline_ms);
/* Disarm t; harmless if it is not armed. */
void timer_cancel(struct driver *d, struct timer *t);

/* The driver's monotonic clock in milliseconds, read now. */
uint64_t driver_now_ms(void);

#endif
