/* The ring on libuv: one uv_poll_t (UV_READABLE) per read end, uv_run(UV_RUN_DEFAULT) until
 * the target is reached. uv_poll is libuv's readiness interface, the like of the driver's; its
 * epoll registration is level-triggered, so the read-until-EAGAIN callback costs the same. */
#include <errno.h>
#include <stdlib.h>

#include <uv.h>

#include "driver_bench.h"

struct luv_node {
        uv_poll_t poll; /* first: the callback gets this pointer back */
        struct ring *ring;
        int index;
};

static void luv_on_ready(uv_poll_t *poll, int status, int events)
{
        struct luv_node *node = (struct luv_node *)poll;

        if (status < 0) {
                node->ring->err = status;
                uv_stop(poll->loop);
                return;
        }
        ring_on_readable(node->ring, node->index);
        if (node->ring->done || node->ring->err)
                uv_stop(poll->loop);
}

/* Close the first n handles and let the loop finish closing them. */
static void luv_close_polls(uv_loop_t *loop, struct luv_node *nodes, int n)
{
        for (int i = 0; i < n; i++)
                uv_close((uv_handle_t *)&nodes[i].poll, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
}

static int luv_start_polls(uv_loop_t *loop, struct ring *r, struct luv_node *nodes)
{
        for (int i = 0; i < r->n; i++) {
                int err;

                nodes[i].ring = r;
                nodes[i].index = i;
                err = uv_poll_init(loop, &nodes[i].poll, r->fds[i][0]);
                if (err < 0) {
                        luv_close_polls(loop, nodes, i);
                        return err;
                }
                err = uv_poll_start(&nodes[i].poll, UV_READABLE, luv_on_ready);
                if (err < 0) {
                        luv_close_polls(loop, nodes, i + 1);
                        return err;
                }
        }
        return 0;
}

static int luv_run(struct ring *r, struct bench_time *elapsed)
{
        struct luv_node *nodes = calloc((size_t)r->n, sizeof(*nodes));
        uv_loop_t loop;
        struct bench_time start;
        int err;

        if (!nodes)
                return -ENOMEM;
        err = uv_loop_init(&loop);
        if (err < 0)
                goto err_free_nodes;
        err = luv_start_polls(&loop, r, nodes);
        if (err < 0)
                goto err_close_loop;
        start = bench_time_now();
        uv_run(&loop, UV_RUN_DEFAULT);
        *elapsed = bench_time_since(start);
        err = r->err;
        luv_close_polls(&loop, nodes, r->n);
err_close_loop:
        uv_loop_close(&loop);
err_free_nodes:
        free(nodes);
        return err;
}

const char *bench_libuv_version(void)
{
        return uv_version_string();
}

const struct bench_backend bench_libuv = {.name = "libuv", .run = luv_run};
