/* Per-worker pools of what a connection holds only while data is in flight: pipes for splice
 * and buffers for the copy path. Single-threaded (one pool per worker); a bounded number of
 * free items is kept for reuse, the rest are released. Every worker's pipes, pooled ones
 * included, count against one daemon-wide budget of pipe capacity (pipe_memory): a pipe that
 * does not fit is not made, and the caller copies instead. */
#ifndef EVPROXYD_POOL_H
#define EVPROXYD_POOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The daemon-wide budget, shared by every worker's pool (atomics: O(1) per pipe get/put, no
 * lock). bytes is the capacity of every open pipe, what the kernel may have to hold for them;
 * it only grows by compare-and-swap within limit, so it is never seen above it (unless a reload
 * lowered the limit: then it shrinks as pipes close). */
struct pipe_budget {
        atomic_size_t limit;
        atomic_size_t bytes;        /* capacity of the open pipes, in use and pooled */
        atomic_size_t bytes_in_use; /* ... of those a connection holds */
        atomic_uint pipes, pipes_in_use;
        atomic_uint_least64_t refused; /* pipes not made: over the budget, a direction copied */
        atomic_uint_least64_t failed;  /* pipes not made: pipe2() failed (EMFILE...), copied */
        atomic_uint_least64_t shrunk;  /* pipes the kernel made smaller than asked */
        atomic_bool warned_shrunk;
};

struct pipe_pair {
        int rfd, wfd;
        size_t cap; /* bytes the pipe holds */
        struct pipe_budget *budget;
        struct pipe_pair *next;
};

struct pipe_pool {
        struct pipe_pair *free;
        unsigned n_free, max_free;
        size_t size; /* capacity asked of the kernel (F_SETPIPE_SZ), as it rounds it */
        struct pipe_budget *budget; /* NULL: no budget (tests) */
};

struct buf {
        struct buf *next;
        unsigned char data[];
};

struct buf_pool {
        struct buf *free;
        unsigned n_free, max_free;
        size_t size;
        struct buf *scratch; /* the worker's one read buffer for data that goes straight on */
};

void pipe_budget_set_limit(struct pipe_budget *b, size_t limit);

/* Pipes of size bytes (rounded up as the kernel rounds: a power of two of pages). */
void pipe_pool_init(struct pipe_pool *p, size_t size, unsigned max_free);
/* Count this pool's pipes against b from now on; before its first pipe. */
void pipe_pool_set_budget(struct pipe_pool *p, struct pipe_budget *b);
void pipe_pool_destroy(struct pipe_pool *p);
/* A pipe with nothing in it: 0, or -errno: -ENOBUFS when it would not fit in the budget (then
 * copy for now: pipes come back as connections let go of theirs), EMFILE, ENFILE, ENOMEM. The
 * kernel may make a pipe smaller than asked (per-user pipe limits): pp->cap says what it holds. */
int pipe_pool_get(struct pipe_pool *p, struct pipe_pair **out);
/* Give back an empty pipe. It is kept for reuse only if the pool is not full and the budget
 * is not nearly spent (so idle pipes do not starve other workers); a shrunk one asks for the
 * full size again when it is reused. */
void pipe_pool_put(struct pipe_pool *p, struct pipe_pair *pp);
/* Close a pipe taken with pipe_pool_get() that may still hold data. Accepts NULL. */
void pipe_pool_discard(struct pipe_pair *pp);

void buf_pool_init(struct buf_pool *p, size_t size, unsigned max_free);
void buf_pool_destroy(struct buf_pool *p);
struct buf *buf_pool_get(struct buf_pool *p);
/* The pool's scratch buffer (size bytes), for a read whose data is sent on at once; NULL if
 * it cannot be allocated. Never held across runs. */
unsigned char *buf_pool_scratch(struct buf_pool *p);
void buf_pool_put(struct buf_pool *p, struct buf *b);

#endif
