/* Zero-copy forwarding: src socket -> pipe -> dst socket with splice(2). The pipe comes from the
 * worker's pool when there is something to read and goes back as soon as it is empty. A splice
 * into a non-empty pipe that says EAGAIN is ambiguous (empty socket or full pipe), so read
 * readiness is cleared only on an EAGAIN with an empty pipe; write readiness on any EAGAIN. */
#include <errno.h>
#include <fcntl.h>
#include <sys/types.h>

#include "pump.h"

#define SPLICE_FLAGS (SPLICE_F_MOVE | SPLICE_F_NONBLOCK)

static ssize_t splice_pending(struct pump *p, int dst)
{
        return splice(p->pipe->rfd, NULL, dst, NULL, p->pending, SPLICE_FLAGS);
}

static void put_pipe_if_empty(struct pump *p, struct pipe_pool *pool)
{
        if (p->pipe && p->pending == 0) {
                pipe_pool_put(pool, p->pipe);
                p->pipe = NULL;
        }
}

enum pump_status pump_splice(struct pump *p, struct pump_io *x, struct pipe_pool *pool)
{
        struct evio_ready_event ev;
        ssize_t n;
        int r;

        for (unsigned i = 0; i < PUMP_BUDGET; i++) {
                if (p->pending > 0) {
                        r = pump_write_pending(p, x, splice_pending);
                        if (r < 0) {
                                x->err = r;
                                return PUMP_ERR_DST;
                        }
                        if (r == 0)
                                return PUMP_WAIT; /* backpressure: data stays in the pipe */
                }
                if (p->eof) {
                        if (p->pending > 0)
                                continue;
                        put_pipe_if_empty(p, pool);
                        return PUMP_DONE;
                }
                if (p->pipe && p->pending >= p->pipe->cap)
                        continue;
                if (!pump_ready(x->src_io, EVIO_DIRECTION_READ, &ev)) {
                        if (p->pending > 0)
                                continue;
                        put_pipe_if_empty(p, pool);
                        return PUMP_WAIT;
                }
                if (!p->pipe) {
                        r = pipe_pool_get(pool, &p->pipe);
                        if (r == -ENOBUFS)
                                return PUMP_NO_PIPE; /* over the pipe budget: copy for now */
                        if (r < 0)
                                return PUMP_FALLBACK; /* no pipe to be had: copy instead */
                }
                n = splice(x->src, NULL, p->pipe->wfd, NULL, p->pipe->cap - p->pending,
                           SPLICE_FLAGS);
                if (n > 0) {
                        p->pending += (uint32_t)n;
                        x->moved = true;
                } else if (n == 0) {
                        p->eof = true;
                        x->moved = true;
                } else if (errno == EAGAIN) {
                        if (p->pending == 0)
                                evio_sio_clear_readiness(x->src_io, ev);
                } else if (errno == EINVAL && p->pending == 0) {
                        put_pipe_if_empty(p, pool);
                        return PUMP_FALLBACK;
                } else if (errno != EINTR) {
                        x->err = -errno;
                        return PUMP_ERR_SRC;
                }
        }
        return PUMP_AGAIN;
}
