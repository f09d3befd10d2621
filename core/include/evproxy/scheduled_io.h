/* The consumer's side of one registered resource (struct scheduled_io, owned by the driver).
 * Pattern: take a snapshot with sio_poll_ready(); do I/O until EAGAIN; then hand the snapshot
 * to sio_clear_readiness(), which clears only if no newer readiness arrived meanwhile. */
#ifndef EVPROXY_SCHEDULED_IO_H
#define EVPROXY_SCHEDULED_IO_H

#include "ready.h"

struct scheduled_io;

/* A waker: called by the driver, on the driver's thread, with the new Ready bits, outside any
 * lock. Wakers are persistent: one stays set until replaced or the resource is deregistered. */
struct waker {
        void (*fn)(void *arg, uint32_t ready);
        void *arg;
};

/* Snapshot of readiness for a direction. Returns 0 when some bit is set (ev filled),
 * -EAGAIN when none is (and, if w is not NULL, installs w as that direction's waker),
 * -ESHUTDOWN once the driver was shut down. */
int sio_poll_ready(struct scheduled_io *io, enum direction dir, const struct waker *w,
                   struct ready_event *ev);

/* Snapshot for an interest without touching wakers. */
struct ready_event sio_ready(const struct scheduled_io *io, uint32_t interest);

/* Clear ev.ready, unless the tick moved since ev was taken. Never clears READ_CLOSED,
 * WRITE_CLOSED or the shutdown bit. Returns true if it cleared. */
bool sio_clear_readiness(struct scheduled_io *io, struct ready_event ev);

/* Install (or with w == NULL remove) the persistent waker of one direction. */
void sio_set_waker(struct scheduled_io *io, enum direction dir, const struct waker *w);

/* The file descriptor this record was registered for. */
int sio_fd(const struct scheduled_io *io);

#endif
