/* Shutdown, in two halves. Any thread: mark the registration set and every record shut down
 * (atomics under the set's mutex) and unpark the driver. The driver's thread, in its next turn:
 * call every record's wakers once with EVIO_READY_ALL, so wakers run on the driver's thread only,
 * whoever asked. New registrations fail with -ESHUTDOWN; polls and turns report it. */
#include "internal.h"

void evio_handle_shutdown(struct evio_handle *h)
{
        if (!evio__regset_shutdown(&h->regset))
                return;
        /* Set after the records are marked: a turn that sees it finds them all. */
        atomic_store(&h->is_shutdown, true);
        evio_handle_unpark(h);
}

bool evio_handle_is_shutdown(struct evio_handle *h)
{
        return atomic_load(&h->is_shutdown);
}

void evio__shutdown_wake_all(struct evio_driver *d)
{
        struct evio_scheduled_io *io;

        assert(evio__driver_turning_here(d));
        if (d->shutdown_woken)
                return;
        d->shutdown_woken = true;
        while ((io = evio__regset_next_to_wake(&d->handle.regset)))
                evio__sio_wake(io, EVIO_READY_ALL);
}
