/* One connection's bandwidth limits (issue 16): rate (per connection) and route_rate (shared by
 * the route's connections) shape how much each direction's pump may read in a run; out of
 * tokens, the direction waits on a timer for the next grant instead of reading (no busy loop,
 * and splice stays splice). Runs on the connection's worker thread. */
#ifndef EVPROXYD_SHAPER_H
#define EVPROXYD_SHAPER_H

#include <evproxy/driver.h>
#include <evproxy/timer.h>

#include "pump.h"
#include "ratelimit.h"

struct route_stats;
struct cfg_policy;

enum shaper_dir { SHAPER_UPLOAD, SHAPER_DOWNLOAD }; /* client->upstream, upstream->client */

struct shaper {
        struct evio_timer timer; /* out of tokens: defers run when the next grant is due */
        struct evio_driver *drv;
        struct evio_deferred *run;
        struct rl_bucket dir[2];
};

void shaper_init(struct shaper *s, struct evio_driver *drv, struct evio_deferred *run);
/* Cancel the timer (the connection is closing). */
void shaper_stop(struct shaper *s);
/* pump_run() for direction dir within the limits of pol (per connection) and st (the route's
 * shared buckets). A direction out of tokens returns PUMP_WAIT with the timer armed. */
enum pump_status shaper_pump(struct shaper *s, enum shaper_dir dir, struct pump *p,
                             struct pump_io *x, struct pipe_pool *pipes, struct buf_pool *bufs,
                             const struct cfg_policy *pol, struct route_stats *st);

#endif
