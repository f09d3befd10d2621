/* Pipe and buffer pools of one worker. A pipe is returned only when empty (the data path
 * checks), so a pooled pipe never carries one connection's bytes into another's. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "pool.h"

void pipe_pool_init(struct pipe_pool *p, size_t size, unsigned max_free)
{
        p->free = NULL;
        p->n_free = 0;
        p->max_free = max_free;
        p->size = size;
}

void pipe_pool_discard(struct pipe_pair *pp)
{
        if (!pp)
                return;
        close(pp->rfd);
        close(pp->wfd);
        free(pp);
}

void pipe_pool_destroy(struct pipe_pool *p)
{
        while (p->free) {
                struct pipe_pair *pp = p->free;

                p->free = pp->next;
                pipe_pool_discard(pp);
        }
        p->n_free = 0;
}

int pipe_pool_get(struct pipe_pool *p, struct pipe_pair **out)
{
        struct pipe_pair *pp = p->free;
        int fds[2], sz;

        if (pp) {
                p->free = pp->next;
                p->n_free--;
                pp->next = NULL;
                *out = pp;
                return 0;
        }
        pp = malloc(sizeof(*pp));
        if (!pp)
                return -ENOMEM;
        if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) == -1) {
                int r = -errno;

                free(pp);
                return r;
        }
        pp->rfd = fds[0];
        pp->wfd = fds[1];
        pp->next = NULL;
        /* A larger size may be refused (pipe-max-size, per-user pipe limits): keep the default. */
        sz = fcntl(pp->wfd, F_SETPIPE_SZ, (int)p->size);
        if (sz < 0)
                sz = fcntl(pp->wfd, F_GETPIPE_SZ);
        pp->cap = sz > 0 ? (size_t)sz : 4096;
        *out = pp;
        return 0;
}

void pipe_pool_put(struct pipe_pool *p, struct pipe_pair *pp)
{
        if (p->n_free >= p->max_free) {
                pipe_pool_discard(pp);
                return;
        }
        pp->next = p->free;
        p->free = pp;
        p->n_free++;
}

void buf_pool_init(struct buf_pool *p, size_t size, unsigned max_free)
{
        p->scratch = NULL;
        p->free = NULL;
        p->n_free = 0;
        p->max_free = max_free;
        p->size = size;
}

void buf_pool_destroy(struct buf_pool *p)
{
        while (p->free) {
                struct buf *b = p->free;

                p->free = b->next;
                free(b);
        }
        p->n_free = 0;
        free(p->scratch);
        p->scratch = NULL;
}

struct buf *buf_pool_get(struct buf_pool *p)
{
        struct buf *b = p->free;

        if (b) {
                p->free = b->next;
                p->n_free--;
                return b;
        }
        return malloc(sizeof(*b) + p->size);
}

void buf_pool_put(struct buf_pool *p, struct buf *b)
{
        if (!b)
                return;
        if (p->n_free >= p->max_free) {
                free(b);
                return;
        }
        b->next = p->free;
        p->free = b;
        p->n_free++;
}

unsigned char *buf_pool_scratch(struct buf_pool *p)
{
        if (!p->scratch)
                p->scratch = malloc(sizeof(*p->scratch) + p->size);
        return p->scratch ? p->scratch->data : NULL;
}
