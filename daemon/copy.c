/* Buffer-copy forwarding, the fallback to splice: recv into a buffer taken from the worker's
 * pool, send it all, give the buffer back once empty. A new recv happens only when the buffer
 * is empty, so a slow reader holds at most one buffer per direction. */
#include <errno.h>
#include <sys/socket.h>

#include "pump.h"

/* 1: progress, 0: dst not writable now, <0: -errno writing dst. */
static int copy_out(struct pump *p, struct pump_io *x)
{
        struct ready_event ev;
        ssize_t n;

        for (;;) {
                if (!pump_ready(x->dst_io, DIRECTION_WRITE, &ev))
                        return 0;
                n = send(x->dst, p->buf->data + p->off, p->pending, MSG_NOSIGNAL);
                if (n > 0) {
                        p->pending -= (uint32_t)n;
                        p->off = p->pending ? p->off + (uint32_t)n : 0;
                        p->bytes += (uint64_t)n;
                        x->moved = true;
                        return 1;
                }
                if (n == 0)
                        return -EPIPE;
                if (errno == EAGAIN)
                        sio_clear_readiness(x->dst_io, ev);
                else if (errno != EINTR)
                        return -errno;
        }
}

static void put_buf(struct pump *p, struct buf_pool *pool)
{
        if (p->buf && p->pending == 0) {
                buf_pool_put(pool, p->buf);
                p->buf = NULL;
        }
}

enum pump_status pump_copy(struct pump *p, struct pump_io *x, struct buf_pool *pool)
{
        struct ready_event ev;
        ssize_t n;
        int r;

        for (unsigned i = 0; i < PUMP_BUDGET; i++) {
                if (p->pending > 0) {
                        r = copy_out(p, x);
                        if (r < 0) {
                                x->err = r;
                                return PUMP_ERR_DST;
                        }
                        if (r == 0)
                                return PUMP_WAIT;
                        continue;
                }
                if (p->eof) {
                        put_buf(p, pool);
                        return PUMP_DONE;
                }
                if (p->auto_splice && p->full_read) {
                        /* A bulk flow, and the buffer is empty: splice from the next run on. */
                        p->auto_splice = false;
                        p->copy = false;
                        put_buf(p, pool);
                        return PUMP_AGAIN;
                }
                if (!pump_ready(x->src_io, DIRECTION_READ, &ev)) {
                        put_buf(p, pool);
                        return PUMP_WAIT;
                }
                if (!p->buf) {
                        p->buf = buf_pool_get(pool);
                        if (!p->buf) {
                                x->err = -ENOMEM;
                                return PUMP_ERR_LOCAL;
                        }
                }
                n = recv(x->src, p->buf->data, pool->size, 0);
                if (n > 0) {
                        p->pending = (uint32_t)n;
                        p->off = 0;
                        x->moved = true;
                        p->full_read = (size_t)n == pool->size;
                        /* A short read emptied the socket: clear now rather than pay for a
                         * recv that says EAGAIN. Data arriving meanwhile moves the tick, so
                         * the clear is refused and nothing is lost. */
                        if (!p->full_read)
                                sio_clear_readiness(x->src_io, ev);
                } else if (n == 0) {
                        p->eof = true;
                        x->moved = true;
                } else if (errno == EAGAIN) {
                        sio_clear_readiness(x->src_io, ev);
                } else if (errno != EINTR) {
                        x->err = -errno;
                        return PUMP_ERR_SRC;
                }
        }
        return PUMP_AGAIN;
}
