/* The deferred-task queue (libuv's pending queue): an intrusive circular list of the driver's,
 * touched on its thread only. A turn runs it after dispatch, tasks and timers; one pass runs
 * what was queued when it started, and what gets queued meanwhile waits for the next turn.
 *   idle --defer--> queued --pass starts--> in this pass --its turn--> idle, then fn runs
 *   queued / in this pass --undefer--> idle */
#include "internal.h"

static void queue_clear(struct evio_driver *d)
{
        d->deferred.next = d->deferred.prev = &d->deferred;
}

void evio__deferred_init(struct evio_driver *d)
{
        queue_clear(d);
        d->n_deferred = 0;
}

static void link_tail(struct evio_deferred *head, struct evio_deferred *t)
{
        t->prev = head->prev;
        t->next = head;
        head->prev->next = t;
        head->prev = t;
}

/* Unlinks from whichever list holds t: the queue, or a pass's list on the stack. */
static void unlink_task(struct evio_deferred *t)
{
        t->prev->next = t->next;
        t->next->prev = t->prev;
        t->prev = t->next = NULL;
}

void evio_driver_defer(struct evio_driver *d, struct evio_deferred *task)
{
        assert(evio__driver_may_touch(d));
        if (task->queued) {
                assert(task->next && task->prev); /* queued means linked */
                return;
        }
        link_tail(&d->deferred, task);
        task->queued = true;
        d->n_deferred++;
}

void evio_driver_undefer(struct evio_driver *d, struct evio_deferred *task)
{
        assert(evio__driver_may_touch(d));
        if (!task->queued)
                return;
        assert(d->n_deferred > 0);
        unlink_task(task);
        task->queued = false;
        d->n_deferred--;
}

void evio__deferred_run(struct evio_driver *d)
{
        struct evio_deferred pass;

        if (evio__deferred_empty(d))
                return;
        /* Move the whole queue to this pass's list: the queue starts empty again. */
        pass.next = d->deferred.next;
        pass.prev = d->deferred.prev;
        pass.next->prev = &pass;
        pass.prev->next = &pass;
        queue_clear(d); /* n_deferred still counts the pass's tasks */
        while (pass.next != &pass) {
                struct evio_deferred *t = pass.next;

                assert(t->queued && d->n_deferred > 0);
                unlink_task(t);
                t->queued = false;
                d->n_deferred--;
                t->fn(t);
        }
}
