/* The consumer's side of one registered resource (struct evio_scheduled_io, owned by the driver).
 * Pattern: take a snapshot with evio_sio_poll_ready(); do I/O until EAGAIN; then hand the snapshot
 * to evio_sio_clear_readiness(), which clears only if no newer readiness arrived meanwhile. */
#ifndef EVPROXY_SCHEDULED_IO_H
#define EVPROXY_SCHEDULED_IO_H

#include "api.h"

#include "ready.h"

struct evio_scheduled_io;

/* A waker: called by the driver, on the driver's thread, with the new Ready bits, outside any
 * lock. Wakers are persistent: one stays set until replaced or the resource is deregistered.
 * A direction's waker is called for that direction's bits and also for ERROR and PRIORITY, so it
 * may find nothing when it polls its direction: a spurious wake-up, to be tolerated (as Tokio's
 * are). evio_handle_deregister() guarantees no waker runs after it returned; replacing a waker
 * does not: one already copied by a wake in progress on the driver's thread may still run. */
struct evio_waker {
        void (*fn)(void *arg, uint32_t ready);
        void *arg;
};

/* Snapshot of readiness for a direction: its mask only (ready.h), as Tokio's. ERROR is in
 * neither direction: an error shows on the write side as WRITE_CLOSED, and the bit itself is
 * read with evio_sio_ready(io, EVIO_INTEREST_ERROR). Returns 0 when some bit of the direction is
 * set (ev filled), -EAGAIN when none is (and, if w is not NULL, installs w as that direction's
 * waker), -ESHUTDOWN once the driver was shut down. Any thread. */
EVIO_API int evio_sio_poll_ready(struct evio_scheduled_io *io, enum evio_direction dir,
                                 const struct evio_waker *w, struct evio_ready_event *ev);

/* Snapshot for an interest without touching wakers. */
EVIO_API struct evio_ready_event evio_sio_ready(const struct evio_scheduled_io *io,
                                                uint32_t interest);

/* Clear ev.ready, unless the tick moved since ev was taken. Never clears READ_CLOSED,
 * WRITE_CLOSED or the shutdown bit. Returns true if it cleared. */
EVIO_API bool evio_sio_clear_readiness(struct evio_scheduled_io *io, struct evio_ready_event ev);

/* Install (or with w == NULL remove) the persistent waker of one direction; a no-op once the
 * record was deregistered. */
EVIO_API void evio_sio_set_waker(struct evio_scheduled_io *io, enum evio_direction dir,
                                 const struct evio_waker *w);

/* The file descriptor this record was registered for. */
EVIO_API int evio_sio_fd(const struct evio_scheduled_io *io);

#endif
