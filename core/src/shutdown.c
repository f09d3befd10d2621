/* Shutdown: mark the registration set shut down, set the shutdown bit on every record and call
 * its wakers, then unpark the driver so a blocked turn sees it. New registrations fail with
 * -ESHUTDOWN; polls and turns report it. */
#include "internal.h"

void evio_handle_shutdown(struct evio_handle *h)
{
        struct evio_scheduled_io **ios;
        size_t n;

        if (atomic_exchange(&h->is_shutdown, true))
                return;
        if (evio__regset_shutdown(&h->regset, &ios, &n) == 0) {
                for (size_t i = 0; i < n; i++) {
                        evio__sio_set_shutdown(ios[i]);
                        evio__sio_wake(ios[i], EVIO_READY_ALL);
                }
                evio__regset_shutdown_done(&h->regset, ios);
        }
        evio_handle_unpark(h);
}

bool evio_handle_is_shutdown(struct evio_handle *h)
{
        return atomic_load(&h->is_shutdown);
}
