/* The ring on evproxy's driver: each read end registered with EVIO_INTEREST_READABLE and a
 * persistent waker; the waker follows the consumer pattern (snapshot, read until EAGAIN, clear with
 * the snapshot) and the loop is evio_driver_turn(d, -1). */
#include <errno.h>
#include <stdlib.h>

#include <evproxy/driver.h>

#include "driver_bench.h"

struct evp_node {
        struct ring *ring;
        struct evio_scheduled_io *io;
        int index;
};

static void evp_on_ready(void *arg, uint32_t ready)
{
        struct evp_node *node = arg;
        struct evio_ready_event ev = evio_sio_ready(node->io, EVIO_INTEREST_READABLE);

        ring_on_readable(node->ring, node->index);
        evio_sio_clear_readiness(node->io, ev);
}

static void evp_deregister(struct evio_handle *h, struct evp_node *nodes, int n)
{
        for (int i = 0; i < n; i++)
                evio_handle_deregister(h, nodes[i].io);
}

static int evp_register(struct evio_handle *h, struct ring *r, struct evp_node *nodes)
{
        for (int i = 0; i < r->n; i++) {
                struct evio_waker w = {.fn = evp_on_ready, .arg = &nodes[i]};
                int err;

                nodes[i] = (struct evp_node){.ring = r, .index = i};
                err =
                    evio_handle_register(h, r->fds[i][0], EVIO_INTEREST_READABLE, &w, &nodes[i].io);
                if (err < 0) {
                        evp_deregister(h, nodes, i);
                        return err;
                }
        }
        return 0;
}

static int evp_loop(struct evio_driver *d, struct ring *r)
{
        while (!r->done && !r->err) {
                int k = evio_driver_turn(d, -1);

                if (k < 0)
                        return k;
        }
        return r->err;
}

static int evp_run(struct ring *r, struct bench_time *elapsed)
{
        struct evp_node *nodes = calloc((size_t)r->n, sizeof(*nodes));
        struct evio_driver *d = NULL;
        struct bench_time start;
        int err;

        if (!nodes)
                return -ENOMEM;
        err = evio_driver_new(&d, NULL);
        if (err < 0)
                goto err_free_nodes;
        err = evp_register(evio_driver_handle(d), r, nodes);
        if (err < 0)
                goto err_free_driver;
        start = bench_time_now();
        err = evp_loop(d, r);
        *elapsed = bench_time_since(start);
        evp_deregister(evio_driver_handle(d), nodes, r->n);
err_free_driver:
        evio_driver_free(d);
err_free_nodes:
        free(nodes);
        return err;
}

const struct bench_backend bench_evproxy = {.name = "evproxy", .run = evp_run};
