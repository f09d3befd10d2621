/* The ring on libevent: one EV_READ|EV_PERSIST|EV_ET event per read end on the default
 * (epoll) backend, event_base_loop() until the target is reached. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "driver_bench.h"

struct lev_node {
        struct ring *ring;
        struct event_base *base;
        int index;
};

static void lev_on_ready(evutil_socket_t fd, short what, void *arg)
{
        struct lev_node *node = arg;

        ring_on_readable(node->ring, node->index);
        if (node->ring->done || node->ring->err)
                event_base_loopbreak(node->base);
}

static void lev_free_events(struct event **evs, int n)
{
        for (int i = 0; i < n; i++)
                event_free(evs[i]);
}

static int lev_add_events(struct event_base *base, struct ring *r, struct lev_node *nodes,
                          struct event **evs)
{
        for (int i = 0; i < r->n; i++) {
                nodes[i] = (struct lev_node){.ring = r, .base = base, .index = i};
                evs[i] = event_new(base, r->fds[i][0], EV_READ | EV_PERSIST | EV_ET, lev_on_ready,
                                   &nodes[i]);
                if (!evs[i] || event_add(evs[i], NULL) < 0) {
                        lev_free_events(evs, evs[i] ? i + 1 : i);
                        return -ENOMEM;
                }
        }
        return 0;
}

static int lev_run(struct ring *r, struct bench_time *elapsed)
{
        struct lev_node *nodes = calloc((size_t)r->n, sizeof(*nodes));
        struct event **evs = calloc((size_t)r->n, sizeof(*evs));
        struct event_base *base = event_base_new();
        struct bench_time start;
        int err = -ENOMEM;

        if (!nodes || !evs || !base)
                goto out;
        err = lev_add_events(base, r, nodes, evs);
        if (err < 0)
                goto out;
        start = bench_time_now();
        if (event_base_loop(base, 0) < 0)
                err = -EIO;
        *elapsed = bench_time_since(start);
        if (!err)
                err = r->err;
        lev_free_events(evs, r->n);
out:
        if (base)
                event_base_free(base);
        free(evs);
        free(nodes);
        return err;
}

const char *bench_libevent_version(void)
{
        static char buf[64];
        struct event_base *base = event_base_new();

        snprintf(buf, sizeof(buf), "%s (%s)", event_get_version(),
                 base ? event_base_get_method(base) : "?");
        if (base)
                event_base_free(base);
        return buf;
}

const struct bench_backend bench_libevent = {.name = "libevent", .run = lev_run};
