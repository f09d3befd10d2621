/* Zero-copy forwarding: src socket -> pipe -> dst socket with splice(2). The pipe comes from the
 * worker's pool when there is something to read and goes back as soon as it is empty. A splice
 * into a non-empty pipe that says EAGAIN is ambiguous (empty socket or full pipe), so read
 * readiness is cleared only on an EAGAIN with an empty pipe; write readiness on any EAGAIN. */
#include <errno.h>
#include <fcntl.h>
#include <sys/types.h>

#include "pump.h"

#define SPLICE_FLAGS (SPLICE_F_MOVE | SPLICE_F_NONBLOCK)

/* splice(2) from a socket into a pipe never fails with ENOSPC itself: this says "EAGAIN, but the
 * pipe holds data, so it may be full rather than src empty", which must not clear readiness. */
#define PIPE_MAYBE_FULL (-ENOSPC)

static ssize_t splice_pending(int dst, void *arg)
{
        struct pump *p = arg;
        ssize_t n = splice(p->pipe->rfd, NULL, dst, NULL, p->pending, SPLICE_FLAGS);

        return n < 0 ? -errno : n;
}

struct splice_in {
        struct pump *p;
        struct pipe_pool *pool;
        int no_pipe; /* the pool had no pipe to give: why (-ENOBUFS: over the budget) */
};

/* One splice from src into the pipe, which is taken from the pool on the first read. Only an
 * EAGAIN into an empty pipe says src is drained (evio_reg_try_io() clears on -EAGAIN alone). */
static ssize_t splice_in(int src, void *arg)
{
        struct splice_in *in = arg;
        struct pump *p = in->p;
        ssize_t n;

        if (!p->pipe) {
                in->no_pipe = pipe_pool_get(in->pool, &p->pipe);
                if (in->no_pipe < 0)
                        return -ENOBUFS; /* not -EAGAIN: src's readiness is kept for copying */
        }
        n = splice(src, NULL, p->pipe->wfd, NULL, pump_read_len(p, p->pipe->cap - p->pending),
                   SPLICE_FLAGS);
        if (n >= 0)
                return n;
        return errno == EAGAIN && p->pending > 0 ? PIPE_MAYBE_FULL : -errno;
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
        struct splice_in in = {.p = p, .pool = pool};
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
                if (p->shaped && p->allow == 0) {
                        put_pipe_if_empty(p, pool);
                        return PUMP_THROTTLED;
                }
                n = evio_reg_try_io(x->src, EVIO_DIRECTION_READ, splice_in, &in, NULL);
                if (in.no_pipe == -ENOBUFS)
                        return PUMP_NO_PIPE; /* over the pipe budget: copy for now */
                if (in.no_pipe < 0)
                        return PUMP_FALLBACK; /* no pipe to be had: copy instead */
                if (n > 0) {
                        p->pending += (uint32_t)n;
                        pump_count_read(p, (size_t)n);
                        x->moved = true;
                } else if (n == 0) {
                        p->eof = true;
                        x->moved = true;
                } else if (n == -EAGAIN || n == PIPE_MAYBE_FULL) {
                        if (p->pending > 0)
                                continue; /* write what the pipe holds, then read again */
                        put_pipe_if_empty(p, pool);
                        return PUMP_WAIT;
                } else if (n == -EINVAL && p->pending == 0) {
                        put_pipe_if_empty(p, pool);
                        return PUMP_FALLBACK;
                } else {
                        x->err = (int)n;
                        return PUMP_ERR_SRC;
                }
        }
        return PUMP_AGAIN;
}
