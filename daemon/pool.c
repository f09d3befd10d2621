/* Pipe and buffer pools of one worker. A pipe is returned only when empty (the data path
 * checks), so a pooled pipe never carries one connection's bytes into another's. A pipe is
 * made only if its capacity fits in the daemon-wide budget (pool.h): reserved by a
 * compare-and-swap before pipe2(), given back when the pipe is closed. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "pool.h"

#define RELAXED memory_order_relaxed

/* What F_SETPIPE_SZ makes of size: a power of two, at least a page (round_pipe_size()). */
static size_t kernel_pipe_size(size_t size)
{
        size_t n = (size_t)sysconf(_SC_PAGESIZE);

        while (n < size)
                n <<= 1;
        return n;
}

void pipe_budget_set_limit(struct pipe_budget *b, size_t limit)
{
        atomic_store_explicit(&b->limit, limit, RELAXED);
}

/* Reserve n bytes (within the limit, by compare-and-swap); a new pipe also counts itself. */
static bool budget_take(struct pipe_budget *b, size_t n, bool new_pipe)
{
        size_t limit = atomic_load_explicit(&b->limit, RELAXED);
        size_t cur = atomic_load_explicit(&b->bytes, RELAXED);

        do {
                if (cur > limit || n > limit - cur)
                        return false;
        } while (
            !atomic_compare_exchange_weak_explicit(&b->bytes, &cur, cur + n, RELAXED, RELAXED));
        if (new_pipe)
                atomic_fetch_add_explicit(&b->pipes, 1, RELAXED);
        return true;
}

static void budget_give(struct pipe_budget *b, size_t n)
{
        atomic_fetch_sub_explicit(&b->bytes, n, RELAXED);
        atomic_fetch_sub_explicit(&b->pipes, 1, RELAXED);
}

/* A connection takes (+1) or lets go of (-1) a pipe of cap bytes. */
static void budget_use(struct pipe_budget *b, size_t cap, int dir)
{
        if (!b)
                return;
        if (dir > 0) {
                atomic_fetch_add_explicit(&b->pipes_in_use, 1, RELAXED);
                atomic_fetch_add_explicit(&b->bytes_in_use, cap, RELAXED);
        } else {
                atomic_fetch_sub_explicit(&b->pipes_in_use, 1, RELAXED);
                atomic_fetch_sub_explicit(&b->bytes_in_use, cap, RELAXED);
        }
}

/* The kernel made the pipe smaller than the reservation: keep only what it holds. */
static void budget_shrunk(struct pipe_budget *b, size_t asked, size_t cap)
{
        atomic_fetch_sub_explicit(&b->bytes, asked - cap, RELAXED);
        atomic_fetch_add_explicit(&b->shrunk, 1, RELAXED);
        if (!atomic_exchange_explicit(&b->warned_shrunk, true, RELAXED))
                log_warning("splice: the kernel gives pipes of %zu bytes instead of %zu (per-user "
                            "pipe limit: fs.pipe-user-pages-soft); splicing goes on through them, "
                            "at more system calls per byte",
                            cap, asked);
}

void pipe_pool_init(struct pipe_pool *p, size_t size, unsigned max_free)
{
        p->free = NULL;
        p->n_free = 0;
        p->max_free = max_free;
        p->size = kernel_pipe_size(size);
        p->budget = NULL;
}

void pipe_pool_set_budget(struct pipe_pool *p, struct pipe_budget *b)
{
        p->budget = b;
}

/* Close a pipe no connection holds, and give its capacity back to the budget. */
static void pipe_close(struct pipe_pair *pp)
{
        close(pp->rfd);
        close(pp->wfd);
        if (pp->budget)
                budget_give(pp->budget, pp->cap);
        free(pp);
}

void pipe_pool_discard(struct pipe_pair *pp)
{
        if (!pp)
                return;
        budget_use(pp->budget, pp->cap, -1);
        pipe_close(pp);
}

void pipe_pool_destroy(struct pipe_pool *p)
{
        while (p->free) {
                struct pipe_pair *pp = p->free;

                p->free = pp->next;
                pipe_close(pp);
        }
        p->n_free = 0;
}

static int pipe_new(struct pipe_pool *p, struct pipe_pair **out)
{
        struct pipe_budget *b = p->budget;
        struct pipe_pair *pp;
        int fds[2], sz, r;

        if (b && !budget_take(b, p->size, true)) {
                atomic_fetch_add_explicit(&b->refused, 1, RELAXED);
                return -ENOBUFS;
        }
        pp = malloc(sizeof(*pp));
        if (!pp) {
                r = -ENOMEM;
                goto err_budget;
        }
        if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) == -1) {
                r = -errno;
                goto err_free;
        }
        *pp = (struct pipe_pair){.rfd = fds[0], .wfd = fds[1], .budget = b};
        /* Refused past pipe-max-size, or (EPERM) once the user's pipes pass
         * fs.pipe-user-pages-soft, when pipe2() has also made this one 2 pages: use what the
         * pipe holds. */
        sz = fcntl(pp->wfd, F_SETPIPE_SZ, (int)p->size);
        if (sz < 0)
                sz = fcntl(pp->wfd, F_GETPIPE_SZ);
        pp->cap = sz > 0 && (size_t)sz < p->size ? (size_t)sz : p->size;
        if (b && pp->cap < p->size)
                budget_shrunk(b, p->size, pp->cap);
        *out = pp;
        return 0;

err_free:
        free(pp);
err_budget:
        if (b) {
                budget_give(b, p->size);
                atomic_fetch_add_explicit(&b->failed, 1, RELAXED);
        }
        assert(r < 0); /* *out is set on success only */
        return r;
}

/* A pooled pipe the kernel had shrunk: ask for the full size again (granted once the user's
 * pipes are back under the kernel's limit), one fcntl per reuse instead of a new pipe each
 * time. */
static void pipe_regrow(struct pipe_pool *p, struct pipe_pair *pp)
{
        size_t more = p->size - pp->cap;

        if (pp->budget && !budget_take(pp->budget, more, false))
                return;
        if (fcntl(pp->wfd, F_SETPIPE_SZ, (int)p->size) >= (int)p->size)
                pp->cap = p->size;
        else if (pp->budget)
                atomic_fetch_sub_explicit(&pp->budget->bytes, more, RELAXED);
}

int pipe_pool_get(struct pipe_pool *p, struct pipe_pair **out)
{
        struct pipe_pair *pp = p->free;
        int r;

        if (pp) {
                p->free = pp->next;
                p->n_free--;
                pp->next = NULL;
                if (pp->cap < p->size)
                        pipe_regrow(p, pp);
        } else {
                r = pipe_new(p, &pp);
                if (r < 0)
                        return r;
        }
        budget_use(pp->budget, pp->cap, +1);
        *out = pp;
        return 0;
}

/* Over three quarters of the budget in pipes: idle ones go back to the kernel. */
static bool budget_tight(const struct pipe_budget *b)
{
        size_t limit = atomic_load_explicit(&b->limit, RELAXED);

        return atomic_load_explicit(&b->bytes, RELAXED) > limit / 4 * 3;
}

void pipe_pool_put(struct pipe_pool *p, struct pipe_pair *pp)
{
        budget_use(pp->budget, pp->cap, -1);
        if (p->n_free >= p->max_free || (pp->budget && budget_tight(pp->budget))) {
                pipe_close(pp);
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
