/* Registration: an fd, its record and its handle, held by value by the driver's users. Built on
 * the public API only (evio_handle_* and evio_sio_*): it adds ownership of the fd and the
 * poll -> I/O -> clear-on-EAGAIN step that every consumer would otherwise write by hand.
 * The states (EMPTY, HELD, REGISTERED) are drawn in evproxy/registration.h. */
#include <assert.h>
#include <errno.h>
#include <unistd.h>

#include <evproxy/registration.h>

void evio_reg_init(struct evio_registration *r, struct evio_handle *h, int fd)
{
        assert(h || fd < 0); /* without a handle r would not own fd: it would leak */
        *r = (struct evio_registration){.fd = fd < 0 ? -1 : fd, .io = NULL, .h = h};
}

int evio_reg_register(struct evio_registration *r, uint32_t interest, const struct evio_waker *w)
{
        assert(!r->io); /* registering twice would leak the first record */
        if (r->fd < 0 || !r->h)
                return -EBADF;
        return evio_handle_register(r->h, r->fd, interest, w, &r->io);
}

int evio_reg_open(struct evio_registration *r, struct evio_handle *h, int fd, uint32_t interest,
                  const struct evio_waker *w)
{
        evio_reg_init(r, h, fd);
        return evio_reg_register(r, interest, w);
}

bool evio_reg_is_registered(const struct evio_registration *r)
{
        return r->io != NULL;
}

int evio_reg_poll_ready(struct evio_registration *r, enum evio_direction dir,
                        struct evio_ready_event *ev)
{
        if (!r->io) {
                if (ev)
                        *ev = (struct evio_ready_event){0};
                return -EBADF;
        }
        return evio_sio_poll_ready(r->io, dir, NULL, ev);
}

bool evio_reg_clear_readiness(struct evio_registration *r, struct evio_ready_event ev)
{
        return r->io && evio_sio_clear_readiness(r->io, ev);
}

ssize_t evio_reg_try_io(struct evio_registration *r, enum evio_direction dir, evio_io_fn *fn,
                        void *arg, struct evio_ready_event *ev)
{
        struct evio_ready_event tmp;
        ssize_t n;
        int p;

        if (!ev)
                ev = &tmp;
        /* The snapshot comes before the I/O: an event that lands while fn runs moves the tick,
         * so the clear below is refused and that readiness is not lost. */
        p = evio_reg_poll_ready(r, dir, ev);
        if (p < 0)
                return p;
        do
                n = fn(r->fd, arg);
        while (n == -EINTR);
        if (n == -EAGAIN)
                evio_sio_clear_readiness(r->io, *ev);
        return n;
}

void evio_reg_set_waker(struct evio_registration *r, const struct evio_waker *w)
{
        if (!r->io)
                return;
        evio_sio_set_waker(r->io, EVIO_DIRECTION_READ, w);
        evio_sio_set_waker(r->io, EVIO_DIRECTION_WRITE, w);
}

void evio_reg_close(struct evio_registration *r)
{
        if (r->io) {
                evio_handle_deregister_before_close(r->h, r->io); /* the close just below */
                r->io = NULL;
        }
        if (r->h && r->fd >= 0) /* no handle: zeroed memory, which owns no fd (not fd 0) */
                close(r->fd);
        r->fd = -1;
}

int evio_reg_deregister(struct evio_registration *r)
{
        int fd = r->h ? r->fd : -1;

        if (r->io) {
                /* Fails only for an fd already out of the epoll set: nothing left to undo. */
                (void)evio_handle_deregister(r->h, r->io);
                r->io = NULL;
        }
        r->fd = -1;
        return fd;
}
