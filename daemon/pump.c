/* Driving one direction: picks the splice or copy mechanism, switches to copy for good when
 * splice cannot serve (EINVAL for the socket kind, or no pipe to be had: EMFILE/ENFILE), and
 * turns a finished direction into shutdown(dst, SHUT_WR), the half-close. */
#include <errno.h>
#include <sys/socket.h>

#include "log.h"
#include "pump.h"

int pump_write_pending(struct pump *p, struct pump_io *x, evio_io_fn *wr)
{
        ssize_t n = evio_reg_try_io(x->dst, EVIO_DIRECTION_WRITE, wr, p, NULL);

        if (n == -EAGAIN)
                return 0;
        if (n < 0)
                return (int)n;
        if (n == 0)
                return -EPIPE;
        p->pending -= (uint32_t)n;
        p->off = p->pending ? p->off + (uint32_t)n : 0;
        p->bytes += (uint64_t)n;
        x->moved = true;
        return 1;
}

enum pump_status pump_run(struct pump *p, struct pump_io *x, struct pipe_pool *pipes,
                          struct buf_pool *bufs)
{
        enum pump_status st;

        if (p->done)
                return PUMP_DONE;
        if (!p->copy) {
                st = pump_splice(p, x, pipes);
                if (st != PUMP_FALLBACK && st != PUMP_NO_PIPE)
                        goto out;
                if (st == PUMP_FALLBACK)
                        log_debug("splice unavailable for fd %d -> fd %d, copying instead",
                                  x->src->fd, x->dst->fd);
                p->copy = true;
                /* Over budget: pipes free up as other connections drain, so splice is tried
                 * again after a read fills the buffer (not at once: full_read is reset). */
                p->auto_splice = st == PUMP_NO_PIPE;
                p->full_read = false;
        }
        st = pump_copy(p, x, bufs);
out:
        if (st == PUMP_DONE) {
                p->done = true;
                /* The last direction to finish leaves the FIN to close(): dst's EOF has been
                 * read, so nothing unread is left in it to turn that close into a reset.
                 * ENOTCONN: the peer is already gone; the other direction will find out. */
                if (!x->last && shutdown(x->dst->fd, SHUT_WR) == -1 && errno != ENOTCONN)
                        log_debug_errno(-errno, "shutdown(SHUT_WR) fd %d", x->dst->fd);
        }
        return st;
}

void pump_release(struct pump *p, struct pipe_pool *pipes, struct buf_pool *bufs)
{
        if (p->pipe) {
                if (p->pending == 0)
                        pipe_pool_put(pipes, p->pipe);
                else
                        pipe_pool_discard(p->pipe);
                p->pipe = NULL;
        }
        if (p->buf) {
                buf_pool_put(bufs, p->buf);
                p->buf = NULL;
        }
        p->pending = 0;
        p->off = 0;
}
