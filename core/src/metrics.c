/* Driver metrics: monotonic counters, updated with relaxed atomics on the hot path and readable
 * from any thread at any time. */
#include "internal.h"

void evio__metrics_inc_registered(struct evio__metrics *m)
{
        atomic_fetch_add_explicit(&m->registered, 1, memory_order_relaxed);
}

void evio__metrics_inc_deregistered(struct evio__metrics *m)
{
        atomic_fetch_add_explicit(&m->deregistered, 1, memory_order_relaxed);
}

void evio__metrics_add_ready(struct evio__metrics *m, uint64_t n)
{
        if (n)
                atomic_fetch_add_explicit(&m->ready, n, memory_order_relaxed);
}

void evio__metrics_read(const struct evio__metrics *m, struct evio_driver_metrics *out)
{
        out->registered_count = atomic_load_explicit(&m->registered, memory_order_relaxed);
        out->deregistered_count = atomic_load_explicit(&m->deregistered, memory_order_relaxed);
        out->ready_count = atomic_load_explicit(&m->ready, memory_order_relaxed);
}
