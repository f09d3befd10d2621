/* RegistrationSet: owns every ScheduledIo of a driver. The epoll token is the record's address,
 * so a deregistered record goes to a pending list and is freed only at the start of the next
 * turn, when no event array that may hold its address is being walked.
 *   register: (mutex) shut down? -> epoll ADD -> published in `registered`; else freed at once
 *   registered --deregister--> pending --next turn--> freed */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "internal.h"

int evio__regset_init(struct evio__registration_set *s)
{
        *s = (struct evio__registration_set){0};
        return -pthread_mutex_init(&s->lock, NULL);
}

static void free_list(struct evio_scheduled_io *io)
{
        while (io) {
                struct evio_scheduled_io *next = io->next;
                free(io);
                io = next;
        }
}

void evio__regset_destroy(struct evio__registration_set *s)
{
        free_list(s->registered);
        free_list(s->pending);
        s->registered = s->pending = NULL;
        pthread_mutex_destroy(&s->lock);
}

static void unlink_registered(struct evio__registration_set *s, struct evio_scheduled_io *io)
{
        assert(s->n_registered > 0);
        assert(io->prev ? io->prev->next == io : s->registered == io); /* in this list */
        if (io->prev)
                io->prev->next = io->next;
        else
                s->registered = io->next;
        if (io->next)
                io->next->prev = io->prev;
        if (s->wake_next == io)
                s->wake_next = io->next;
        io->prev = io->next = NULL;
        s->n_registered--;
}

/* The epoll ADD happens under the mutex, so a shutdown (which takes it too) comes either before
 * (nothing is added) or after (the record is in the list it marks). The kernel serialises
 * epoll_ctl calls on one epoll instance anyway, so holding the mutex across it costs little. */
int evio__regset_register(struct evio__registration_set *s, int epfd, int fd, uint32_t interest,
                          const struct evio_waker *w, struct evio_scheduled_io **out)
{
        struct evio_scheduled_io *io = aligned_alloc(64, sizeof(*io));
        struct epoll_event ev = {.events = evio__interest_to_epoll(interest), .data.ptr = io};
        int r = 0;

        if (!io)
                return -ENOMEM;
        evio__sio_init(io, fd, interest, w);
        pthread_mutex_lock(&s->lock);
        if (s->is_shutdown)
                r = -ESHUTDOWN;
        else if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
                r = -errno;
        if (r < 0) {
                pthread_mutex_unlock(&s->lock);
                free(io); /* never in epoll nor in the list: nobody else saw it */
                return r;
        }
        io->next = s->registered;
        if (io->next)
                io->next->prev = io;
        s->registered = io;
        s->n_registered++;
        pthread_mutex_unlock(&s->lock);
        *out = io;
        return 0;
}

bool evio__regset_deregister(struct evio__registration_set *s, struct evio_scheduled_io *io,
                             size_t batch)
{
        bool wake;

        assert(evio__sio_is_released(io)); /* its wakers are gone before it leaves the list */
        pthread_mutex_lock(&s->lock);
        unlink_registered(s, io);
        io->next = s->pending;
        s->pending = io;
        s->n_pending++;
        wake = s->n_pending == batch;
        pthread_mutex_unlock(&s->lock);
        return wake;
}

size_t evio__regset_release(struct evio__registration_set *s)
{
        struct evio_scheduled_io *list;
        size_t n;

        if (atomic_load_explicit(&s->n_pending, memory_order_relaxed) == 0)
                return 0; /* a release racing this check is freed on the next turn */
        pthread_mutex_lock(&s->lock);
        if (!s->pending) {
                pthread_mutex_unlock(&s->lock);
                return 0;
        }
        list = s->pending;
        n = s->n_pending;
        s->pending = NULL;
        s->n_pending = 0;
        pthread_mutex_unlock(&s->lock);
        free_list(list);
        return n;
}

size_t evio__regset_pending(struct evio__registration_set *s)
{
        size_t n;

        pthread_mutex_lock(&s->lock);
        n = s->n_pending;
        pthread_mutex_unlock(&s->lock);
        return n;
}

/* Under the mutex: no registration is half-way, so every record that will ever be published
 * is in the list and gets its shutdown bit here. The wakers are left to the driver's thread. */
bool evio__regset_shutdown(struct evio__registration_set *s)
{
        bool first;

        pthread_mutex_lock(&s->lock);
        first = !s->is_shutdown;
        if (first) {
                s->is_shutdown = true;
                for (struct evio_scheduled_io *io = s->registered; io; io = io->next)
                        evio__sio_set_shutdown(io);
                s->wake_next = s->registered;
        }
        pthread_mutex_unlock(&s->lock);
        return first;
}

/* The next record whose wakers the shutdown calls, or NULL. No record is published after the
 * shutdown and a deregistered one moves the cursor past itself, so each is handed out once.
 * Records are freed only by the driver's thread, which is the caller: the one returned stays
 * allocated until the caller's next turn even if another thread deregisters it meanwhile. */
struct evio_scheduled_io *evio__regset_next_to_wake(struct evio__registration_set *s)
{
        struct evio_scheduled_io *io;

        pthread_mutex_lock(&s->lock);
        io = s->wake_next;
        if (io)
                s->wake_next = io->next;
        pthread_mutex_unlock(&s->lock);
        return io;
}
