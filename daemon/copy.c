/* Buffer-copy forwarding: recv into the worker's scratch buffer and send it on at once; only
 * what the destination does not take goes into a buffer of the connection's own (from the
 * worker's pool, given back once empty). A new recv happens only when nothing is pending, so a
 * slow reader holds at most one buffer per direction, and a connection whose messages pass
 * straight through never holds one (no per-connection allocation for request/response). */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "pump.h"

static ssize_t send_pending(struct pump *p, int dst)
{
        return send(dst, p->buf->data + p->off, p->pending, MSG_NOSIGNAL);
}

static void put_buf(struct pump *p, struct buf_pool *pool)
{
        if (p->buf && p->pending == 0) {
                buf_pool_put(pool, p->buf);
                p->buf = NULL;
        }
}

/* Keep what dst did not take (scratch[sent..n)) in a buffer of the connection's own. */
static int stash(struct pump *p, struct buf_pool *pool, const unsigned char *data, size_t n)
{
        p->buf = buf_pool_get(pool);
        if (!p->buf)
                return -ENOMEM;
        memcpy(p->buf->data, data, n);
        p->pending = (uint32_t)n;
        p->off = 0;
        return 0;
}

/* One read into the scratch buffer, sent on at once when dst is writable. PUMP_AGAIN to go on,
 * or the status that ends this run. */
static int copy_in(struct pump *p, struct pump_io *x, struct buf_pool *pool,
                   const struct evio_ready_event *src_ev)
{
        unsigned char *scratch = buf_pool_scratch(pool);
        struct evio_ready_event wev;
        ssize_t n, sent = 0;

        if (!scratch) {
                x->err = -ENOMEM;
                return PUMP_ERR_LOCAL;
        }
        n = recv(x->src, scratch, pool->size, 0);
        if (n == 0) {
                p->eof = true;
                x->moved = true;
                return PUMP_AGAIN;
        }
        if (n < 0) {
                if (errno == EAGAIN)
                        evio_sio_clear_readiness(x->src_io, *src_ev);
                else if (errno != EINTR) {
                        x->err = -errno;
                        return PUMP_ERR_SRC;
                }
                return PUMP_AGAIN;
        }
        x->moved = true;
        p->full_read = (size_t)n == pool->size;
        /* A short read emptied the socket: clear now rather than pay for a recv that says
         * EAGAIN. Data arriving meanwhile moves the tick, so the clear is refused. */
        if (!p->full_read)
                evio_sio_clear_readiness(x->src_io, *src_ev);
        if (pump_ready(x->dst_io, EVIO_DIRECTION_WRITE, &wev)) {
                sent = send(x->dst, scratch, (size_t)n, MSG_NOSIGNAL);
                if (sent < 0) {
                        if (errno == EAGAIN)
                                evio_sio_clear_readiness(x->dst_io, wev);
                        else if (errno != EINTR) {
                                x->err = -errno;
                                return PUMP_ERR_DST;
                        }
                        sent = 0;
                }
                p->bytes += (uint64_t)sent;
        }
        if (sent < n && stash(p, pool, scratch + sent, (size_t)(n - sent)) < 0) {
                x->err = -ENOMEM;
                return PUMP_ERR_LOCAL;
        }
        return PUMP_AGAIN;
}

enum pump_status pump_copy(struct pump *p, struct pump_io *x, struct buf_pool *pool)
{
        struct evio_ready_event ev;
        int r;

        for (unsigned i = 0; i < PUMP_BUDGET; i++) {
                if (p->pending > 0) {
                        r = pump_write_pending(p, x, send_pending);
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
                if (!pump_ready(x->src_io, EVIO_DIRECTION_READ, &ev)) {
                        put_buf(p, pool);
                        return PUMP_WAIT;
                }
                put_buf(p, pool); /* empty: reads go through the scratch buffer */
                r = copy_in(p, x, pool, &ev);
                if (r != PUMP_AGAIN)
                        return (enum pump_status)r;
        }
        return PUMP_AGAIN;
}
