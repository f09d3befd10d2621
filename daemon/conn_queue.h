/* Clients that wait for a server (a route's queue_timeout): one FIFO per worker, bounded per
 * route by queue_size (route_stats.queued, shared by the workers). A waiting client is read
 * nothing; its connection retries with back-off and when a connection of its route ends:
 *   walk found no server --queue off--> the caller closes as before (connect_failed)
 *                        --queue_size reached--> CQ_FULL (end=no_server, queue_full counted)
 *                        --else--> QUEUED: retry at +50 ms, doubling to 1 s, never past the
 * deadline QUEUED --retry time, or cq_oldest() after a slot freed--> RETRYING (a new walk; still
 * queued) RETRYING --connected--> cq_leave()      --no server, deadline passed--> CQ_EXPIRED
 * (no_server)
 *            --no server, deadline ahead--> QUEUED (back-off doubled) */
#ifndef EVPROXYD_CONN_QUEUE_H
#define EVPROXYD_CONN_QUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

struct cfg_route;
struct route_stats;

#define CQ_BACKOFF_FIRST_MS 50
#define CQ_BACKOFF_MAX_MS   1000

struct cq_entry {
        TAILQ_ENTRY(cq_entry) link;
        struct route_stats *st; /* the route whose queue_size it counts against */
        uint64_t deadline_ms;   /* driver clock: give up after this */
        uint64_t backoff_ms;    /* wait before the next retry */
        bool linked;            /* in the queue (QUEUED or RETRYING) */
        bool retrying;          /* RETRYING: cq_oldest() passes it over */
};

TAILQ_HEAD(cq_list, cq_entry);

/* One worker's waiting clients, oldest first. */
struct conn_queue {
        struct cq_list list;
        unsigned n;
};

void cq_init(struct conn_queue *q);

enum cq_verdict {
        CQ_OFF,     /* the route has no queue_timeout: not queued */
        CQ_WAIT,    /* queued: retry at *retry_at */
        CQ_FULL,    /* the route's queue_size is reached: not queued */
        CQ_EXPIRED, /* queue_timeout is over: left the queue */
};

/* The walk of e's connection on route rc (counters st) found no server at time now. */
enum cq_verdict cq_wait(struct conn_queue *q, struct cq_entry *e, struct route_stats *st,
                        const struct cfg_route *rc, uint64_t now, uint64_t *retry_at);
/* e's connection walks the servers again now: it keeps its place and its count. */
void cq_retrying(struct cq_entry *e);
/* Out of the queue (connected, or closed). Idempotent; accepts an entry never queued. */
void cq_leave(struct conn_queue *q, struct cq_entry *e);
/* The oldest entry of route st that is not retrying, or NULL. */
struct cq_entry *cq_oldest(struct conn_queue *q, const struct route_stats *st);

#endif
