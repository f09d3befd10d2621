/* Readiness vocabulary of the driver: Ready bits, Interest, Direction and the tick-stamped
 * snapshot (struct ready_event) a consumer takes before doing I/O and hands back to clear.
 * READ_CLOSED and WRITE_CLOSED are sticky: once seen they are never cleared. */
#ifndef EVPROXY_READY_H
#define EVPROXY_READY_H

#include <stdbool.h>
#include <stdint.h>

enum {
        READY_READABLE = 1u << 0,
        READY_WRITABLE = 1u << 1,
        READY_READ_CLOSED = 1u << 2,
        READY_WRITE_CLOSED = 1u << 3,
        READY_PRIORITY = 1u << 4,
        READY_ERROR = 1u << 5,
        READY_ALL = (1u << 6) - 1,
        READY_STICKY = READY_READ_CLOSED | READY_WRITE_CLOSED,
};

enum {
        INTEREST_READABLE = 1u << 0,
        INTEREST_WRITABLE = 1u << 1,
        INTEREST_PRIORITY = 1u << 2,
        INTEREST_ERROR = 1u << 3,
};

enum direction {
        DIRECTION_READ = 0,
        DIRECTION_WRITE = 1,
};

/* A snapshot of one resource's readiness: the bits the consumer asked about, the tick at which
 * they were read (57 bits wide: it never wraps in practice and is never truncated), and whether
 * the resource was shut down. */
struct ready_event {
        uint32_t ready;
        uint64_t tick;
        bool is_shutdown;
};

/* Ready bits from epoll event flags (EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLHUP, EPOLLERR,
 * EPOLLPRI), mapped as mio/Tokio do: HUP closes both directions, RDHUP closes reading,
 * ERR with OUT (or ERR alone) closes writing. */
uint32_t ready_from_epoll(uint32_t epoll_events);

/* The Ready bits that can satisfy an interest (readable also means read-closed, etc.). */
uint32_t ready_from_interest(uint32_t interest);

/* epoll flags to ask for, edge-triggered, for an interest. */
uint32_t interest_to_epoll(uint32_t interest);

/* Mask of a direction: READ = READABLE|READ_CLOSED, WRITE = WRITABLE|WRITE_CLOSED. */
uint32_t direction_mask(enum direction dir);

#endif
