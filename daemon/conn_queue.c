/* The waiting clients of conn_queue.h: bookkeeping only (list, per-route bound, back-off,
 * deadline, counters); conn.c owns the connections, their timers and their runs. */
#include <assert.h>

#include <evproxy/config.h>

#include "conn_queue.h"
#include "route.h"

void cq_init(struct conn_queue *q)
{
        TAILQ_INIT(&q->list);
        q->n = 0;
}

/* One unit of the route's queue_size, or false when it is all taken. */
static bool take(struct route_stats *st, unsigned max)
{
        unsigned cur = atomic_load_explicit(&st->queued, memory_order_relaxed);

        do {
                if (cur >= max)
                        return false;
        } while (!atomic_compare_exchange_weak_explicit(
            &st->queued, &cur, cur + 1, memory_order_relaxed, memory_order_relaxed));
        return true;
}

static enum cq_verdict enter(struct conn_queue *q, struct cq_entry *e, struct route_stats *st,
                             const struct cfg_route *rc, uint64_t now)
{
        if (rc->queue_timeout_ms == 0)
                return CQ_OFF;
        if (!take(st, rc->queue_size)) {
                atomic_fetch_add_explicit(&st->queue_full, 1, memory_order_relaxed);
                return CQ_FULL;
        }
        e->st = st;
        e->deadline_ms = now + rc->queue_timeout_ms;
        e->backoff_ms = CQ_BACKOFF_FIRST_MS;
        e->linked = true;
        TAILQ_INSERT_TAIL(&q->list, e, link);
        q->n++;
        return CQ_WAIT;
}

enum cq_verdict cq_wait(struct conn_queue *q, struct cq_entry *e, struct route_stats *st,
                        const struct cfg_route *rc, uint64_t now, uint64_t *retry_at)
{
        enum cq_verdict v;

        if (!e->linked) {
                v = enter(q, e, st, rc, now);
                if (v != CQ_WAIT)
                        return v;
        } else if (now >= e->deadline_ms) {
                cq_leave(q, e);
                atomic_fetch_add_explicit(&st->queue_timeouts, 1, memory_order_relaxed);
                return CQ_EXPIRED;
        } else {
                e->backoff_ms *= 2;
                if (e->backoff_ms > CQ_BACKOFF_MAX_MS)
                        e->backoff_ms = CQ_BACKOFF_MAX_MS;
        }
        e->retrying = false;
        *retry_at = now + e->backoff_ms < e->deadline_ms ? now + e->backoff_ms : e->deadline_ms;
        return CQ_WAIT;
}

void cq_retrying(struct cq_entry *e)
{
        e->retrying = e->linked;
}

void cq_leave(struct conn_queue *q, struct cq_entry *e)
{
        unsigned prev;

        if (!e->linked)
                return;
        assert(q->n > 0);
        TAILQ_REMOVE(&q->list, e, link);
        q->n--;
        prev = atomic_fetch_sub_explicit(&e->st->queued, 1, memory_order_relaxed);
        assert(prev > 0);
        (void)prev;
        e->linked = false;
        e->retrying = false;
}

struct cq_entry *cq_oldest(struct conn_queue *q, const struct route_stats *st)
{
        struct cq_entry *e;

        TAILQ_FOREACH(e, &q->list, link)
        {
                if (e->st == st && !e->retrying)
                        return e;
        }
        return NULL;
}
