/* RegistrationSet: owns every ScheduledIo of a driver. The epoll token is the record's address,
 * so a deregistered record goes to a pending list and is freed only at the start of the next
 * turn, when no event array that may hold its address is being walked. */
#include <errno.h>
#include <stdlib.h>

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
        if (io->prev)
                io->prev->next = io->next;
        else
                s->registered = io->next;
        if (io->next)
                io->next->prev = io->prev;
        io->prev = io->next = NULL;
        s->n_registered--;
}

int evio__regset_allocate(struct evio__registration_set *s, int fd, uint32_t interest,
                          const struct evio_waker *w, struct evio_scheduled_io **out)
{
        struct evio_scheduled_io *io = aligned_alloc(64, sizeof(*io));

        if (!io)
                return -ENOMEM;
        evio__sio_init(io, fd, interest, w);
        pthread_mutex_lock(&s->lock);
        if (s->is_shutdown) {
                pthread_mutex_unlock(&s->lock);
                free(io);
                return -ESHUTDOWN;
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

void evio__regset_remove_unpublished(struct evio__registration_set *s, struct evio_scheduled_io *io)
{
        pthread_mutex_lock(&s->lock);
        unlink_registered(s, io);
        pthread_mutex_unlock(&s->lock);
        free(io);
}

bool evio__regset_deregister(struct evio__registration_set *s, struct evio_scheduled_io *io,
                             size_t batch)
{
        bool wake;

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
        if (s->release_holds || !s->pending) {
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

/* Mark the set shut down and hand back every live record; the records stay allocated (release
 * is held) until evio__regset_shutdown_done(), so the caller may wake them outside the lock. */
int evio__regset_shutdown(struct evio__registration_set *s, struct evio_scheduled_io ***out,
                          size_t *n)
{
        struct evio_scheduled_io **ios;
        size_t i = 0;

        pthread_mutex_lock(&s->lock);
        s->is_shutdown = true;
        ios = calloc(s->n_registered ? s->n_registered : 1, sizeof(*ios));
        if (!ios) {
                /* Still mark every record, so polls report the shutdown; only wakers go uncalled.
                 */
                for (struct evio_scheduled_io *io = s->registered; io; io = io->next)
                        evio__sio_set_shutdown(io);
                pthread_mutex_unlock(&s->lock);
                return -ENOMEM;
        }
        for (struct evio_scheduled_io *io = s->registered; io; io = io->next)
                ios[i++] = io;
        s->release_holds++;
        pthread_mutex_unlock(&s->lock);
        *out = ios;
        *n = i;
        return 0;
}

void evio__regset_shutdown_done(struct evio__registration_set *s, struct evio_scheduled_io **ios)
{
        pthread_mutex_lock(&s->lock);
        s->release_holds--;
        pthread_mutex_unlock(&s->lock);
        free(ios);
}
