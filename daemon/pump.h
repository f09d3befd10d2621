/* One direction of a connection (src -> dst) with backpressure: at most one pipe or one buffer
 * of data in flight, read only while there is room, taken from the worker's pools only while
 * data is in flight. A pump's life:
 *   FLOWING --src EOF read, everything written--> shutdown(dst, SHUT_WR) --> DONE
 *   FLOWING --read error--> ERR_SRC   --write error--> ERR_DST
 * splice.c moves bytes through a pipe (zero copy); copy.c through a buffer (the fallback, and
 * the start of every direction in splice mode: small messages cost fewer syscalls copied, so a
 * direction switches to splice only once one read fills its buffer, like HAProxy's splice-auto). */
#ifndef EVPROXYD_PUMP_H
#define EVPROXYD_PUMP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <evproxy/registration.h>

#include "pool.h"

/* Syscall rounds a pump makes per run before yielding to other connections. */
#define PUMP_BUDGET 16

struct pump {
        struct pipe_pair *pipe; /* splice: held only while pending > 0 or mid-run */
        struct buf *buf;        /* copy: likewise */
        uint32_t pending;       /* bytes read from src, not yet written to dst */
        uint32_t off;           /* copy: where the pending bytes start in buf (splice: unread) */
        bool eof;               /* src said EOF */
        bool done;              /* EOF passed on: dst shut down for writing, or about to be
                                 * closed when the other direction is done already */
        bool copy;              /* use the buffer path */
        bool auto_splice;       /* copying for now; splice once a read fills the buffer */
        bool full_read;         /* the last read filled the whole buffer */
        uint64_t bytes;         /* bytes written to dst */
        bool shaped;            /* a bandwidth limit applies (ratelimit.h, shaper.c) ... */
        uint64_t allow;         /* ... and src may give this many more bytes this run */
};

struct pump_io {
        struct evio_registration *src, *dst; /* the connection's two sides */
        bool last;  /* the other direction is done: dst is closed as soon as this one is */
        bool moved; /* set when bytes moved or EOF was seen */
        int err;    /* -errno behind an ERR_* status */
};

enum pump_status {
        PUMP_WAIT,      /* waiting for readiness */
        PUMP_AGAIN,     /* budget spent: run again soon */
        PUMP_DONE,      /* EOF passed on */
        PUMP_FALLBACK,  /* splice cannot serve this pair: use copy */
        PUMP_NO_PIPE,   /* over the pipe budget: copy until the next bulk read, then retry */
        PUMP_ERR_SRC,   /* reading src failed (x->err) */
        PUMP_ERR_DST,   /* writing dst failed (x->err) */
        PUMP_ERR_LOCAL, /* out of a local resource (x->err) */
        PUMP_THROTTLED, /* shaped and allow spent: src's readiness kept for the next grant */
};

/* Run one direction: splice or copy, falling back from splice to copy when needed. A shaped
 * pump reads at most p->allow bytes (counted down) and says PUMP_THROTTLED when it would read
 * more. */
enum pump_status pump_run(struct pump *p, struct pump_io *x, struct pipe_pool *pipes,
                          struct buf_pool *bufs);
/* Return what the pump holds to the pools (a pipe still holding data is closed instead). */
void pump_release(struct pump *p, struct pipe_pool *pipes, struct buf_pool *bufs);
/* One write of p's pending bytes (wr's arg is p) to dst, if dst is writable: send from the
 * buffer, or splice from the pipe; write readiness is cleared on EAGAIN. 1: progress, 0: dst not
 * writable now, <0: -errno writing dst. The same step for both mechanisms. */
int pump_write_pending(struct pump *p, struct pump_io *x, evio_io_fn *wr);

/* How much a read may ask for when room bytes fit, and the count of a read of n bytes. */
static inline size_t pump_read_len(const struct pump *p, size_t room)
{
        return p->shaped && p->allow < room ? (size_t)p->allow : room;
}
static inline void pump_count_read(struct pump *p, size_t n)
{
        if (p->shaped)
                p->allow = n < p->allow ? p->allow - n : 0;
}

enum pump_status pump_splice(struct pump *p, struct pump_io *x, struct pipe_pool *pool);
enum pump_status pump_copy(struct pump *p, struct pump_io *x, struct buf_pool *pool);

#endif
