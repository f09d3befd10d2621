/* Timers: a 4-ary min-heap of intrusive records ordered by deadline (ms, monotonic). Each record
 * knows its index, so cancel and re-arm are O(log n) without searching; the nearest deadline is
 * the root and bounds evio_driver_turn()'s wait. A fire pass first moves the due timers to the
 * `due` array, then calls them: idle --arm--> in heap --due--> in due --called--> idle; a timer
 * armed or cancelled from a callback leaves `due`, so each fires at most once per turn. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"

#define ARITY 4
/* heap_index of a timer in the due array: this bit | its index there (SIZE_MAX: not armed). */
#define IN_DUE (~(SIZE_MAX >> 1))

uint64_t evio_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void evio_timer_init(struct evio_timer *t, evio_timer_fn *fn, void *arg)
{
        *t = (struct evio_timer){.heap_index = SIZE_MAX, .fn = fn, .arg = arg};
}

bool evio_timer_armed(const struct evio_timer *t)
{
        return t->heap_index != SIZE_MAX;
}

static void place(struct evio__timer_heap *th, size_t i, struct evio_timer *t)
{
        th->items[i] = t;
        t->heap_index = i;
}

static void sift_up(struct evio__timer_heap *th, size_t i)
{
        struct evio_timer *t = th->items[i];

        while (i > 0) {
                size_t parent = (i - 1) / ARITY;
                if (th->items[parent]->deadline_ms <= t->deadline_ms)
                        break;
                place(th, i, th->items[parent]);
                i = parent;
        }
        place(th, i, t);
}

static void sift_down(struct evio__timer_heap *th, size_t i)
{
        struct evio_timer *t = th->items[i];

        for (;;) {
                size_t first = i * ARITY + 1, best = i;
                uint64_t best_deadline = t->deadline_ms;

                for (size_t c = first; c < first + ARITY && c < th->n; c++) {
                        if (th->items[c]->deadline_ms < best_deadline) {
                                best = c;
                                best_deadline = th->items[c]->deadline_ms;
                        }
                }
                if (best == i)
                        break;
                place(th, i, th->items[best]);
                i = best;
        }
        place(th, i, t);
}

static void heap_remove(struct evio__timer_heap *th, size_t i)
{
        struct evio_timer *last;

        assert(th->n > 0 && i < th->n);
        last = th->items[--th->n];
        th->items[i]->heap_index = SIZE_MAX;
        if (i == th->n)
                return;
        place(th, i, last);
        sift_up(th, i);
        sift_down(th, last->heap_index);
}

static bool in_due(const struct evio_timer *t)
{
        return t->heap_index != SIZE_MAX && (t->heap_index & IN_DUE);
}

/* Take t out of the due array of the pass being run: it will not be called by it. */
static void due_remove(struct evio__timer_heap *th, struct evio_timer *t)
{
        size_t i = t->heap_index & ~IN_DUE;

        assert(i < th->n_due && th->due[i] == t);
        th->due[i] = NULL;
        t->heap_index = SIZE_MAX;
}

/* Room for one more timer in the heap, and for all of them in the due array. */
static int grow(struct evio__timer_heap *th)
{
        size_t cap = th->cap ? th->cap * 2 : 64;
        struct evio_timer **items, **due;

        items = realloc(th->items, cap * sizeof(*items));
        if (!items)
                return -ENOMEM;
        th->items = items;
        due = realloc(th->due, cap * sizeof(*due));
        if (!due)
                return -ENOMEM; /* items is larger, harmlessly: cap is still the old one */
        th->due = due;
        th->cap = cap;
        return 0;
}

int evio_timer_arm(struct evio_driver *d, struct evio_timer *t, uint64_t deadline_ms)
{
        struct evio__timer_heap *th = &d->timers;

        assert(evio__driver_may_touch(d));
        if (in_due(t))
                due_remove(th, t);
        if (evio_timer_armed(t)) {
                assert(t->heap_index < th->n && th->items[t->heap_index] == t); /* this heap */
                t->deadline_ms = deadline_ms;
                sift_up(th, t->heap_index);
                sift_down(th, t->heap_index);
                return 0;
        }
        if (th->n == th->cap && grow(th) < 0)
                return -ENOMEM;
        t->deadline_ms = deadline_ms;
        place(th, th->n++, t);
        sift_up(th, t->heap_index);
        return 0;
}

void evio_timer_cancel(struct evio_driver *d, struct evio_timer *t)
{
        assert(evio__driver_may_touch(d));
        if (in_due(t)) {
                due_remove(&d->timers, t);
        } else if (evio_timer_armed(t)) {
                assert(t->heap_index < d->timers.n && d->timers.items[t->heap_index] == t);
                heap_remove(&d->timers, t->heap_index);
        }
}

struct evio_timer *evio__timer_heap_peek(const struct evio__timer_heap *th)
{
        return th->n ? th->items[0] : NULL;
}

/* Fire every timer due at now_ms, earliest first, each once: the pass takes them all out of the
 * heap first, so one re-armed in the past (from any callback) waits for the next turn, and the
 * loop is bounded by the timers due on entry. The due array never grows here (cap >= n). */
size_t evio__timer_heap_fire(struct evio__timer_heap *th, uint64_t now_ms)
{
        size_t fired = 0;

        assert(th->n_due == 0); /* not re-entered from a callback */
        while (th->n && th->items[0]->deadline_ms <= now_ms) {
                struct evio_timer *t = th->items[0];

                heap_remove(th, 0);
                t->heap_index = IN_DUE | th->n_due;
                th->due[th->n_due++] = t;
        }
        for (size_t i = 0; i < th->n_due; i++) {
                struct evio_timer *t = th->due[i];

                if (!t)
                        continue; /* cancelled or re-armed by an earlier callback */
                th->due[i] = NULL;
                t->heap_index = SIZE_MAX;
                fired++;
                t->fn(t, t->arg);
        }
        th->n_due = 0;
        return fired;
}

void evio__timer_heap_free(struct evio__timer_heap *th)
{
        for (size_t i = 0; i < th->n; i++)
                th->items[i]->heap_index = SIZE_MAX;
        free(th->items);
        free(th->due);
        *th = (struct evio__timer_heap){0};
}
