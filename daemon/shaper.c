/* Shaping one direction of a connection: before the pump runs, take a grant from the
 * connection's bucket and then from the route's; the pump reads at most that (pump.h: allow);
 * what it did not use goes back. Grants are at least half a bucket (or a chunk), so a throttled
 * flow moves in large reads and wakes about 20 times a second, whatever the rate. */
#include <evproxy/config.h>

#include "route.h"
#include "shaper.h"

#define SHAPE_CHUNK ((uint64_t)256 * 1024) /* most one grant may be: one pipe */
#define NS_PER_MS   1000000u

static void shaper_fire(struct evio_timer *t, void *arg)
{
        struct shaper *s = arg;

        evio_driver_defer(s->drv, s->run);
}

void shaper_init(struct shaper *s, struct evio_driver *drv, struct evio_deferred *run)
{
        evio_timer_init(&s->timer, shaper_fire, s);
        s->drv = drv;
        s->run = run;
}

void shaper_stop(struct shaper *s)
{
        if (s->drv)
                evio_timer_cancel(s->drv, &s->timer);
}

struct limit {
        struct rl_bucket *b;
        uint64_t rate, burst, want, min;
};

static void limit_set(struct limit *l, struct rl_bucket *b, uint64_t rate)
{
        l->b = b;
        l->rate = rate;
        if (!rate)
                return;
        l->burst = rl_burst(rate);
        l->want = l->burst < SHAPE_CHUNK ? l->burst : SHAPE_CHUNK;
        l->min = l->want / 2;
}

/* The grant of both limits (0 when either has too little). */
static uint64_t grant(struct limit lim[2], uint64_t now)
{
        uint64_t g = SHAPE_CHUNK, got;

        for (int i = 0; i < 2; i++) {
                if (!lim[i].rate)
                        continue;
                got = rl_take(lim[i].b, lim[i].rate, lim[i].burst, lim[i].min < g ? lim[i].min : g,
                              lim[i].want < g ? lim[i].want : g, now);
                if (i == 1 && lim[0].rate && got < g)
                        rl_refund(lim[0].b, lim[0].rate, g - got);
                g = got;
                if (g == 0)
                        return 0;
        }
        return g;
}

static void wait_for_tokens(struct shaper *s, struct limit lim[2], uint64_t now)
{
        uint64_t wait = 0, deadline;

        for (int i = 0; i < 2; i++) {
                uint64_t w;

                if (!lim[i].rate)
                        continue;
                w = rl_wait_ns(lim[i].b, lim[i].rate, lim[i].burst, lim[i].min, now);
                if (w > wait)
                        wait = w;
        }
        deadline = evio_now_ms() + (wait + NS_PER_MS - 1) / NS_PER_MS;
        if (evio_timer_armed(&s->timer) && s->timer.deadline_ms <= deadline)
                return;
        if (evio_timer_arm(s->drv, &s->timer, deadline) < 0)
                evio_driver_defer(s->drv, s->run); /* cannot wait: poll instead */
}

enum pump_status shaper_pump(struct shaper *s, enum shaper_dir dir, struct pump *p,
                             struct pump_io *x, struct pipe_pool *pipes, struct buf_pool *bufs,
                             const struct cfg_policy *pol, struct route_stats *st)
{
        bool up = dir == SHAPER_UPLOAD;
        struct limit lim[2] = {{0}, {0}};
        enum pump_status r;
        uint64_t now, g;

        limit_set(&lim[0], &s->dir[dir], up ? pol->rate.upload : pol->rate.download);
        limit_set(&lim[1], up ? &st->shape_up : &st->shape_down,
                  up ? pol->route_rate.upload : pol->route_rate.download);
        p->shaped = lim[0].rate || lim[1].rate;
        if (!p->shaped)
                return pump_run(p, x, pipes, bufs);
        now = rl_now_ns();
        g = grant(lim, now);
        p->allow = g;
        r = pump_run(p, x, pipes, bufs);
        for (int i = 0; i < 2 && p->allow; i++)
                if (lim[i].rate)
                        rl_refund(lim[i].b, lim[i].rate, p->allow);
        p->allow = 0;
        if (r != PUMP_THROTTLED)
                return r;
        atomic_fetch_add_explicit(&st->throttled, 1, memory_order_relaxed);
        wait_for_tokens(s, lim, rl_now_ns());
        return PUMP_WAIT;
}
