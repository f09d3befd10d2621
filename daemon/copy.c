/* Buffer-copy forwarding: recv into the worker's scratch buffer and send it on at once; only
 * what the destination does not take goes into a buffer of the connection's own (from the
 * worker's pool, given back once empty). A new recv happens only when nothing is pending, so a
 * slow reader holds at most one buffer per direction, and a connection whose messages pass
 * straight through never holds one (no per-connection allocation for request/response). */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "pump.h"

static ssize_t send_pending(int dst, void *arg)
{
        struct pump *p = arg;
        ssize_t n = send(dst, p->buf->data + p->off, p->pending, MSG_NOSIGNAL);

        return n < 0 ? -errno : n;
}

/* What one read brought in: the worker's scratch buffer, filled by recv_scratch, sent on by
 * send_scratch. */
struct scratch {
        struct buf_pool *pool;
        unsigned char *data; /* NULL: could not be allocated */
        size_t len;
        size_t want; /* bytes to read: the buffer, or less when shaped */
};

static ssize_t recv_scratch(int src, void *arg)
{
        struct scratch *s = arg;
        ssize_t n;

        s->data = buf_pool_scratch(s->pool);
        if (!s->data)
                return -ENOMEM;
        n = recv(src, s->data, s->want, 0);
        return n < 0 ? -errno : n;
}

static ssize_t send_scratch(int dst, void *arg)
{
        const struct scratch *s = arg;
        ssize_t n = send(dst, s->data, s->len, MSG_NOSIGNAL);

        return n < 0 ? -errno : n;
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
 * or the status that ends this run (PUMP_WAIT: src has nothing now). */
static int copy_in(struct pump *p, struct pump_io *x, struct buf_pool *pool)
{
        struct scratch s = {.pool = pool, .want = pump_read_len(p, pool->size)};
        struct evio_ready_event ev;
        ssize_t n, sent;

        n = evio_reg_try_io(x->src, EVIO_DIRECTION_READ, recv_scratch, &s, &ev);
        if (n == -EAGAIN)
                return PUMP_WAIT; /* not readable, or drained: readiness cleared */
        if (n < 0) {
                x->err = (int)n;
                return s.data ? PUMP_ERR_SRC : PUMP_ERR_LOCAL;
        }
        x->moved = true;
        if (n == 0) {
                p->eof = true;
                return PUMP_AGAIN;
        }
        pump_count_read(p, (size_t)n);
        /* All that was asked for: a bulk flow (or a shaped one), maybe more to read. */
        p->full_read = (size_t)n == s.want;
        /* A short read emptied the socket: clear now rather than pay for a recv that says
         * EAGAIN. Data arriving meanwhile moves the tick, so the clear is refused. */
        if (!p->full_read)
                evio_reg_clear_readiness(x->src, ev);
        s.len = (size_t)n;
        sent = evio_reg_try_io(x->dst, EVIO_DIRECTION_WRITE, send_scratch, &s, NULL);
        if (sent == -EAGAIN) {
                sent = 0; /* not writable, or full: readiness cleared */
        } else if (sent < 0) {
                x->err = (int)sent;
                return PUMP_ERR_DST;
        }
        p->bytes += (uint64_t)sent;
        if (sent < n && stash(p, pool, s.data + sent, (size_t)(n - sent)) < 0) {
                x->err = -ENOMEM;
                return PUMP_ERR_LOCAL;
        }
        return PUMP_AGAIN;
}

enum pump_status pump_copy(struct pump *p, struct pump_io *x, struct buf_pool *pool)
{
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
                put_buf(p, pool); /* empty: reads go through the scratch buffer */
                if (p->shaped && p->allow == 0)
                        return PUMP_THROTTLED;
                r = copy_in(p, x, pool);
                if (r != PUMP_AGAIN)
                        return (enum pump_status)r;
        }
        return PUMP_AGAIN;
}
