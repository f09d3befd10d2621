/* Shutdown: mark the registration set shut down, set the shutdown bit on every record and call
 * its wakers, then unpark the driver so a blocked turn sees it. New registrations fail with
 * -ESHUTDOWN; polls and turns report it. */
#include "internal.h"

void handle_shutdown(struct handle *h)
{
        struct scheduled_io **ios;
        size_t n;

        if (atomic_exchange(&h->is_shutdown, true))
                return;
        if (regset_shutdown(&h->regset, &ios, &n) == 0) {
                for (size_t i = 0; i < n; i++) {
                        sio_set_shutdown(ios[i]);
                        sio_wake(ios[i], READY_ALL);
                }
                regset_shutdown_done(&h->regset, ios);
        }
        handle_unpark(h);
}

bool handle_is_shutdown(struct handle *h)
{
        return atomic_load(&h->is_shutdown);
}
