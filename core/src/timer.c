/* Timers: a 4-ary min-heap of intrusive records ordered by deadline (ms, monotonic). Each record
 * knows its heap index, so cancel and re-arm are O(log n) without searching; the nearest
 * deadline is the root and bounds evio_driver_turn()'s wait. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"

#define ARITY 4

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
        struct evio_timer *last = th->items[--th->n];

        th->items[i]->heap_index = SIZE_MAX;
        if (i == th->n)
                return;
        place(th, i, last);
        sift_up(th, i);
        sift_down(th, last->heap_index);
}

int evio_timer_arm(struct evio_driver *d, struct evio_timer *t, uint64_t deadline_ms)
{
        struct evio__timer_heap *th = &d->timers;

        if (evio_timer_armed(t)) {
                t->deadline_ms = deadline_ms;
                sift_up(th, t->heap_index);
                sift_down(th, t->heap_index);
                return 0;
        }
        if (th->n == th->cap) {
                size_t cap = th->cap ? th->cap * 2 : 64;
                struct evio_timer **items = realloc(th->items, cap * sizeof(*items));
                if (!items)
                        return -ENOMEM;
                th->items = items;
                th->cap = cap;
        }
        t->deadline_ms = deadline_ms;
        place(th, th->n++, t);
        sift_up(th, t->heap_index);
        return 0;
}

void evio_timer_cancel(struct evio_driver *d, struct evio_timer *t)
{
        if (evio_timer_armed(t))
                heap_remove(&d->timers, t->heap_index);
}

struct evio_timer *evio__timer_heap_peek(const struct evio__timer_heap *th)
{
        return th->n ? th->items[0] : NULL;
}

/* Fire every timer due at now_ms, earliest first. A callback may arm timers again; one re-armed
 * in the past waits for the next turn, so this loop is bounded by the timers due on entry. */
size_t evio__timer_heap_fire(struct evio__timer_heap *th, uint64_t now_ms)
{
        size_t budget = th->n, fired = 0;

        while (fired < budget && th->n && th->items[0]->deadline_ms <= now_ms) {
                struct evio_timer *t = th->items[0];
                heap_remove(th, 0);
                fired++;
                t->fn(t, t->arg);
        }
        return fired;
}

void evio__timer_heap_free(struct evio__timer_heap *th)
{
        for (size_t i = 0; i < th->n; i++)
                th->items[i]->heap_index = SIZE_MAX;
        free(th->items);
        *th = (struct evio__timer_heap){0};
}
