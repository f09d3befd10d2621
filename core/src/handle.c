/* Handle: the thread-safe side of a driver. Registration goes through the RegistrationSet's
 * mutex, readiness itself is lock-free, and posted tasks and unpark reach the driver's thread
 * through the wake token. A task: idle --post--> queued --its turn--> idle (then fn runs; a post
 * while queued is a no-op, a post from fn queues it for the next turn). */
#include <errno.h>
#include <sys/epoll.h>

#include "internal.h"

int evio__handle_init(struct evio_handle *h, int epfd, int wake_fd, unsigned release_batch)
{
        int r;

        *h = (struct evio_handle){.epfd = epfd, .wake_fd = wake_fd, .release_batch = release_batch};
        atomic_init(&h->is_shutdown, false);
        r = evio__regset_init(&h->regset);
        if (r < 0)
                return r;
        r = pthread_mutex_init(&h->task_lock, NULL);
        if (r) {
                evio__regset_destroy(&h->regset);
                return -r;
        }
        return 0;
}

void evio__handle_destroy(struct evio_handle *h)
{
        evio__regset_destroy(&h->regset);
        pthread_mutex_destroy(&h->task_lock);
}

int evio_handle_register(struct evio_handle *h, int fd, uint32_t interest,
                         const struct evio_waker *w, struct evio_scheduled_io **out)
{
        int r;

        if (fd < 0)
                return -EBADF;
        r = evio__regset_register(&h->regset, h->epfd, fd, interest, w, out);
        if (r < 0)
                return r;
        evio__metrics_inc_registered(&h->metrics);
        return 0;
}

int evio_handle_reregister(struct evio_handle *h, struct evio_scheduled_io *io, uint32_t interest)
{
        struct epoll_event ev = {.events = evio__interest_to_epoll(interest), .data.ptr = io};

        if (atomic_load(&h->is_shutdown))
                return -ESHUTDOWN;
        if (epoll_ctl(h->epfd, EPOLL_CTL_MOD, io->fd, &ev) == -1)
                return -errno;
        atomic_store_explicit(&io->interest, (uint16_t)interest, memory_order_relaxed);
        return 0;
}

/* On the driver's thread a wake in progress is the caller's own (a waker deregistering): it is
 * not waited for. Anywhere else the release waits for it to return. */
void evio_handle_deregister_before_close(struct evio_handle *h, struct evio_scheduled_io *io)
{
        evio__sio_release(io, !evio__driver_turning_here(evio__driver_of(h)));
        evio__metrics_inc_deregistered(&h->metrics);
        if (evio__regset_deregister(&h->regset, io, h->release_batch))
                evio_handle_unpark(h);
}

int evio_handle_deregister(struct evio_handle *h, struct evio_scheduled_io *io)
{
        int r = 0;

        if (epoll_ctl(h->epfd, EPOLL_CTL_DEL, io->fd, NULL) == -1)
                r = -errno;
        /* Whatever epoll said, the record leaves the set: an fd closed before deregistration has
         * already left epoll, and keeping its record would leak it (tokio #7563, #6329). */
        evio_handle_deregister_before_close(h, io);
        return r;
}

int evio_handle_unpark(struct evio_handle *h)
{
        return evio__wake_token_signal(h->wake_fd);
}

int evio_handle_post(struct evio_handle *h, struct evio_driver_task *task)
{
        bool queued;

        pthread_mutex_lock(&h->task_lock);
        queued = task->queued;
        if (!queued) {
                task->queued = true;
                task->next = NULL;
                if (h->task_tail)
                        h->task_tail->next = task;
                else
                        h->task_head = task;
                h->task_tail = task;
                atomic_store_explicit(&h->tasks_posted, true, memory_order_relaxed);
        }
        pthread_mutex_unlock(&h->task_lock);
        /* Already queued: it runs anyway, and whoever queued it unparked the driver. */
        return queued ? 0 : evio_handle_unpark(h);
}

/* Run the tasks posted before this call; tasks they post run on the next turn. A task stays
 * queued (a post of it is a no-op) until just before its fn runs, and its links are read under
 * the lock, since a post from another thread may queue it again the moment it is idle. */
void evio__handle_run_tasks(struct evio_handle *h)
{
        struct evio_driver_task *t;

        /* A post racing this check also unparks the driver, so it runs on the next turn. */
        if (!atomic_load_explicit(&h->tasks_posted, memory_order_relaxed))
                return;
        pthread_mutex_lock(&h->task_lock);
        atomic_store_explicit(&h->tasks_posted, false, memory_order_relaxed);
        t = h->task_head;
        h->task_head = h->task_tail = NULL;
        pthread_mutex_unlock(&h->task_lock);
        while (t) {
                struct evio_driver_task *next;

                pthread_mutex_lock(&h->task_lock);
                assert(t->queued);
                next = t->next;
                t->next = NULL;
                t->queued = false;
                pthread_mutex_unlock(&h->task_lock);
                t->fn(t);
                t = next;
        }
}

void evio_handle_metrics(struct evio_handle *h, struct evio_driver_metrics *out)
{
        evio__metrics_read(&h->metrics, out);
}
