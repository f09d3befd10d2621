/* Timers of one driver: a 4-ary min-heap of intrusive records keyed by a monotonic deadline
 * in milliseconds. Insert (evio_timer_arm) and cancel (evio_timer_cancel) cost O(log n), firing the
 * earliest costs O(log n), finding the nearest deadline O(1); no allocation per timer.
 * Timers belong to the driver's thread: arm, cancel and fire only there (or on any one thread
 * between turns; assert()ed). A turn fires each due timer once: a timer armed again with a
 * deadline already past, from any callback, fires on the next turn (which does not wait). */
#ifndef EVPROXY_TIMER_H
#define EVPROXY_TIMER_H

#include "api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evio_driver;
struct evio_timer;

typedef void evio_timer_fn(struct evio_timer *t, void *arg);

struct evio_timer {
        uint64_t deadline_ms;
        size_t heap_index; /* the driver's; SIZE_MAX when not armed */
        evio_timer_fn *fn;
        void *arg;
};

EVIO_API void evio_timer_init(struct evio_timer *t, evio_timer_fn *fn, void *arg);
EVIO_API bool evio_timer_armed(const struct evio_timer *t);

/* Arm (or re-arm) t to fire at deadline_ms on the driver's monotonic clock. 0 or -ENOMEM. A timer
 * is armed on one driver at a time. Armed means "will fire": false again once fn is called. */
EVIO_API int evio_timer_arm(struct evio_driver *d, struct evio_timer *t, uint64_t deadline_ms);
/* Disarm t; harmless if it is not armed. */
EVIO_API void evio_timer_cancel(struct evio_driver *d, struct evio_timer *t);

/* The driver's monotonic clock in milliseconds, read now. */
EVIO_API uint64_t evio_now_ms(void);

#endif
