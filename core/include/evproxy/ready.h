/* Readiness vocabulary of the driver: Ready bits, Interest, Direction and the tick-stamped
 * snapshot (struct evio_ready_event) a consumer takes before doing I/O and hands back to clear.
 * READ_CLOSED and WRITE_CLOSED are sticky: once seen they are never cleared. */
#ifndef EVPROXY_READY_H
#define EVPROXY_READY_H

#include "api.h"

#include <stdbool.h>
#include <stdint.h>

enum {
        EVIO_READY_READABLE = 1u << 0,
        EVIO_READY_WRITABLE = 1u << 1,
        EVIO_READY_READ_CLOSED = 1u << 2,
        EVIO_READY_WRITE_CLOSED = 1u << 3,
        EVIO_READY_PRIORITY = 1u << 4,
        EVIO_READY_ERROR = 1u << 5,
        EVIO_READY_ALL = (1u << 6) - 1,
        EVIO_READY_STICKY = EVIO_READY_READ_CLOSED | EVIO_READY_WRITE_CLOSED,
};

enum {
        EVIO_INTEREST_READABLE = 1u << 0,
        EVIO_INTEREST_WRITABLE = 1u << 1,
        EVIO_INTEREST_PRIORITY = 1u << 2,
        EVIO_INTEREST_ERROR = 1u << 3,
};

enum evio_direction {
        EVIO_DIRECTION_READ = 0,
        EVIO_DIRECTION_WRITE = 1,
};

/* A snapshot of one resource's readiness: the bits the consumer asked about, the tick at which
 * they were read (57 bits wide: it never wraps in practice and is never truncated), and whether
 * the resource was shut down. */
struct evio_ready_event {
        uint32_t ready;
        uint64_t tick;
        bool is_shutdown;
};

/* The Ready bits that can satisfy an interest (readable also means read-closed, etc.). */
EVIO_API uint32_t evio_ready_from_interest(uint32_t interest);

/* Mask of a direction: READ = READABLE|READ_CLOSED, WRITE = WRITABLE|WRITE_CLOSED. ERROR and
 * PRIORITY are in neither (Tokio's masks): an epoll error sets WRITE_CLOSED with ERROR, so a
 * consumer waiting to write (or for a connect) sees it; ask for ERROR itself by interest. */
EVIO_API uint32_t evio_direction_mask(enum evio_direction dir);

#endif
