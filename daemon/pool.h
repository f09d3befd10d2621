/* Per-worker pools of what a connection holds only while data is in flight: pipes for splice
 * and buffers for the copy path. Single-threaded (one pool per worker); a bounded number of
 * free items is kept for reuse, the rest are released. */
#ifndef EVPROXYD_POOL_H
#define EVPROXYD_POOL_H

#include <stddef.h>

struct pipe_pair {
        int rfd, wfd;
        size_t cap; /* bytes the pipe holds */
        struct pipe_pair *next;
};

struct pipe_pool {
        struct pipe_pair *free;
        unsigned n_free, max_free;
        size_t size; /* requested capacity (F_SETPIPE_SZ) */
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

void pipe_pool_init(struct pipe_pool *p, size_t size, unsigned max_free);
void pipe_pool_destroy(struct pipe_pool *p);
/* A pipe with nothing in it: 0, or -errno (EMFILE, ENFILE, ENOMEM). */
int pipe_pool_get(struct pipe_pool *p, struct pipe_pair **out);
/* Give back an empty pipe. */
void pipe_pool_put(struct pipe_pool *p, struct pipe_pair *pp);
/* Close a pipe that may still hold data. Accepts NULL. */
void pipe_pool_discard(struct pipe_pair *pp);

void buf_pool_init(struct buf_pool *p, size_t size, unsigned max_free);
void buf_pool_destroy(struct buf_pool *p);
struct buf *buf_pool_get(struct buf_pool *p);
/* The pool's scratch buffer (size bytes), for a read whose data is sent on at once; NULL if
 * it cannot be allocated. Never held across runs. */
unsigned char *buf_pool_scratch(struct buf_pool *p);
void buf_pool_put(struct buf_pool *p, struct buf *b);

#endif
