/* ScheduledIo: the readiness word of one registered resource and its two waker slots.
 * The driver sets readiness (OR bits in, advance the tick); a consumer clears what its snapshot
 * saw only if the tick is unchanged, so readiness that arrived meanwhile is never lost.
 * Wakers: live --release--> released (dropped for good); a wake copies them under the lock and
 * marks the record `waking` until they returned, which a release from another thread waits out. */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "internal.h"

static uint64_t pack(uint64_t tick, uint64_t flags)
{
        return (tick << SIO_TICK_SHIFT) | flags;
}

static uint64_t tick_of(uint64_t state)
{
        return state >> SIO_TICK_SHIFT;
}

/* A released record's read waker: no function, this argument. Set under the lock for good, so
 * no waker can be installed afterwards; needs no bit of its own in the 64-byte record. */
static char released_mark;

/* The record's spinlock. Held for a few stores at most; after a short spin the waiter yields, so
 * a holder preempted on a busy machine gets the CPU back. */
static inline void sio_lock(struct evio_scheduled_io *io)
{
        unsigned spins = 0;

        while (atomic_exchange_explicit(&io->lock, 1, memory_order_acquire))
                while (atomic_load_explicit(&io->lock, memory_order_relaxed))
                        if (++spins % 64 == 0)
                                sched_yield();
}

static inline void sio_unlock(struct evio_scheduled_io *io)
{
        atomic_store_explicit(&io->lock, 0, memory_order_release);
}

/* Under the lock. */
static bool released(const struct evio_scheduled_io *io)
{
        return !io->wakers[EVIO_DIRECTION_READ].fn &&
               io->wakers[EVIO_DIRECTION_READ].arg == &released_mark;
}

void evio__sio_init(struct evio_scheduled_io *io, int fd, uint32_t interest,
                    const struct evio_waker *w)
{
        memset(io, 0, sizeof(*io));
        atomic_init(&io->state, 0);
        io->fd = fd;
        atomic_init(&io->interest, (uint16_t)interest);
        atomic_init(&io->waking, 0);
        atomic_init(&io->lock, 0);
        if (w) {
                io->wakers[EVIO_DIRECTION_READ] = *w;
                io->wakers[EVIO_DIRECTION_WRITE] = *w;
        }
}

uint64_t evio__sio_tick(const struct evio_scheduled_io *io)
{
        return tick_of(atomic_load(&io->state));
}

uint32_t evio__sio_set_readiness(struct evio_scheduled_io *io, uint32_t ready)
{
        uint64_t cur = atomic_load(&io->state), next;

        do {
                uint64_t tick = (tick_of(cur) + 1) & SIO_TICK_MAX;
                next =
                    pack(tick, (cur & (SIO_READY_MASK | SIO_SHUTDOWN)) | (ready & EVIO_READY_ALL));
        } while (!atomic_compare_exchange_weak(&io->state, &cur, next));
        return (uint32_t)(next & SIO_READY_MASK);
}

bool evio_sio_clear_readiness(struct evio_scheduled_io *io, struct evio_ready_event ev)
{
        uint64_t cur = atomic_load(&io->state), next;
        uint64_t clear = ev.ready & EVIO_READY_ALL & ~(uint64_t)EVIO_READY_STICKY;

        do {
                if (tick_of(cur) != ev.tick)
                        return false;
                next = cur & ~clear; /* tick and shutdown bit stay as they are */
        } while (!atomic_compare_exchange_weak(&io->state, &cur, next));
        return true;
}

void evio__sio_set_shutdown(struct evio_scheduled_io *io)
{
        atomic_fetch_or(&io->state, SIO_SHUTDOWN);
}

struct evio_ready_event evio_sio_ready(const struct evio_scheduled_io *io, uint32_t interest)
{
        uint64_t cur = atomic_load(&io->state);
        struct evio_ready_event ev = {
            .ready = (uint32_t)(cur & SIO_READY_MASK) & evio_ready_from_interest(interest),
            .tick = tick_of(cur),
            .is_shutdown = (cur & SIO_SHUTDOWN) != 0,
        };
        return ev;
}

/* A direction's bits only, as Tokio's masks: ERROR alone satisfies neither direction (an error
 * shows on the write side as WRITE_CLOSED, see evio__ready_from_epoll). */
static bool snapshot(struct evio_scheduled_io *io, enum evio_direction dir,
                     struct evio_ready_event *ev)
{
        uint64_t cur = atomic_load(&io->state);

        ev->ready = (uint32_t)(cur & SIO_READY_MASK) & evio_direction_mask(dir);
        ev->tick = tick_of(cur);
        ev->is_shutdown = (cur & SIO_SHUTDOWN) != 0;
        return ev->ready != 0 || ev->is_shutdown;
}

int evio_sio_poll_ready(struct evio_scheduled_io *io, enum evio_direction dir,
                        const struct evio_waker *w, struct evio_ready_event *ev)
{
        struct evio_ready_event tmp;

        if (!ev)
                ev = &tmp;
        if (!snapshot(io, dir, ev)) {
                if (!w)
                        return -EAGAIN;
                evio_sio_set_waker(io, dir, w);
                /* The driver stores readiness before it takes the lock to read the wakers, so a
                 * second look after installing ours cannot miss a wake-up. */
                if (!snapshot(io, dir, ev))
                        return -EAGAIN;
        }
        return ev->is_shutdown ? -ESHUTDOWN : 0;
}

void evio_sio_set_waker(struct evio_scheduled_io *io, enum evio_direction dir,
                        const struct evio_waker *w)
{
        sio_lock(io);
        if (!released(io)) {
                if (w)
                        io->wakers[dir] = *w;
                else
                        memset(&io->wakers[dir], 0, sizeof(io->wakers[dir]));
        }
        sio_unlock(io);
}

int evio_sio_fd(const struct evio_scheduled_io *io)
{
        return io->fd;
}

bool evio__sio_is_released(struct evio_scheduled_io *io)
{
        bool r;

        sio_lock(io);
        r = released(io);
        sio_unlock(io);
        return r;
}

void evio__sio_release(struct evio_scheduled_io *io, bool wait_wake)
{
        unsigned spins = 0;
        bool waking;

        sio_lock(io);
        assert(!released(io)); /* deregistered twice */
        memset(io->wakers, 0, sizeof(io->wakers));
        io->wakers[EVIO_DIRECTION_READ].arg = &released_mark;
        /* acquire: a wake that finished before us happened before our return, too */
        waking = atomic_load_explicit(&io->waking, memory_order_acquire);
        sio_unlock(io);
        /* A wake that copied the wakers before us is still calling them: the caller may free
         * what they point at as soon as we return. */
        if (waking && wait_wake)
                while (atomic_load_explicit(&io->waking, memory_order_acquire))
                        if (++spins % 64 == 0)
                                sched_yield();
}

void evio__sio_wake(struct evio_scheduled_io *io, uint32_t ready)
{
        struct evio_waker call[2] = {0};
        uint32_t bits[2];
        size_t n = 0;

        sio_lock(io);
        for (int dir = EVIO_DIRECTION_READ; dir <= EVIO_DIRECTION_WRITE; dir++) {
                struct evio_waker *w = &io->wakers[dir];
                /* ERROR and PRIORITY wake both: a waker must tolerate finding nothing. */
                uint32_t mine =
                    ready & (evio_direction_mask(dir) | EVIO_READY_ERROR | EVIO_READY_PRIORITY);

                if (!w->fn || !mine)
                        continue;
                /* One waker serving both directions is called once, with the union. */
                if (n == 1 && call[0].fn == w->fn && call[0].arg == w->arg) {
                        bits[0] |= mine;
                        continue;
                }
                call[n] = *w;
                bits[n++] = mine;
        }
        if (n)
                atomic_store_explicit(&io->waking, 1, memory_order_relaxed);
        sio_unlock(io);
        if (!n)
                return;
        for (size_t i = 0; i < n; i++)
                call[i].fn(call[i].arg, bits[i]);
        atomic_store_explicit(&io->waking, 0, memory_order_release);
}
