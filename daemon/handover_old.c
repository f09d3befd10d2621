/* Handover, the old process's side (handover.h): listen for a successor; on its TAKE, quiesce
 * every worker (listeners deregistered, connections exported), send the record and the fds,
 * and on OK commit (COMMIT, workers stop, exit 0 with unix socket files left in place for the
 * successor) or, on anything else, give every connection back to the workers and go on.
 *   IDLE --TAKE--> QUIESCING --acks--> exchange --OK--> DONE
 *                                               --else--> RESUMING --acks--> IDLE */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "gen.h"
#include "handover.h"
#include "handover_int.h"
#include "handover_msg.h"
#include "listener.h"
#include "log.h"
#include "worker.h"

int handover_listen(struct daemon *d)
{
        struct handover *ho;
        struct stat st;
        int fd, r;

        r = ho_new(d);
        if (r < 0)
                return r;
        ho = d->ho;
        ho_fdstore_release(ho); /* we run: the store must not keep what we took from it */
        if (!ho->sun.sun_path[0])
                return 0;
        /* Whoever had it before is gone (we took over from it, or it was not answering). */
        if (lstat(ho->sun.sun_path, &st) == 0 && S_ISSOCK(st.st_mode))
                (void)unlink(ho->sun.sun_path);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(-errno, "handover socket %s", ho->sun.sun_path);
        if (bind(fd, (struct sockaddr *)&ho->sun, sizeof(ho->sun)) < 0 ||
            chmod(ho->sun.sun_path, 0600) < 0 || listen(fd, 4) < 0 ||
            stat(ho->sun.sun_path, &st) < 0) {
                r = -errno;
                close(fd);
                return log_error_errno(r, "handover socket %s", ho->sun.sun_path);
        }
        ho->own_file = true;
        ho->dev = st.st_dev;
        ho->ino = st.st_ino;
        r = evio_reg_open(&ho->lreg, evio_driver_handle(d->drv), fd, EVIO_INTEREST_READABLE, NULL);
        if (r < 0)
                return log_error_errno(r, "handover socket %s: registering", ho->sun.sun_path);
        ho->lfd = fd;
        return 0;
}

static void remove_own_file(struct handover *ho)
{
        struct stat st;

        if (ho->own_file && lstat(ho->sun.sun_path, &st) == 0 && st.st_dev == ho->dev &&
            st.st_ino == ho->ino)
                (void)unlink(ho->sun.sun_path);
        ho->own_file = false;
}

void handover_free(struct daemon *d)
{
        struct handover *ho = d->ho;

        if (!ho)
                return;
        evio_reg_close(&ho->lreg);
        remove_own_file(ho);
        if (ho->peer >= 0)
                close(ho->peer);
        ho_state_close_fds(&ho->st); /* new process: what it received and did not use */
        ho_state_free(&ho->st);
        free(ho);
        d->ho = NULL;
}

static ssize_t accept_one(int lfd, void *arg)
{
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        (void)arg;
        return fd < 0 ? -errno : fd;
}

static void quiesce(struct daemon *d, struct handover *ho)
{
        atomic_store(&d->shared.handover_acks, 0);
        ho->phase = HO_QUIESCING;
        for (unsigned i = 0; i < d->n_workers; i++)
                worker_handover_quiesce(d->workers[i]);
}

bool handover_defer_signal(struct daemon *d, int sig)
{
        struct handover *ho = d->ho;

        if (!ho || (ho->phase != HO_QUIESCING && ho->phase != HO_RESUMING))
                return false;
        ho->deferred |= UINT64_C(1) << (sig - 1);
        return true;
}

bool handover_stop_signal(struct daemon *d)
{
        struct handover *ho = d->ho;

        if (!ho || ho->phase != HO_IDLE || d->reloading || !ho_fdstore_wanted(d) ||
            !ho_fdstore_restarting())
                return false;
        log_notice("stopping: handing %u connections to the fd store",
                   atomic_load(&d->shared.active));
        ho->to_store = true;
        daemon_notify_stopping(d);
        quiesce(d, ho);
        return true;
}

static void serve_request(struct daemon *d, struct handover *ho)
{
        struct ho_msg m;
        size_t n;
        int dummy, r;
        ssize_t fd = evio_reg_try_io(&ho->lreg, EVIO_DIRECTION_READ, accept_one, NULL, NULL);

        if (fd < 0)
                return;
        r = ho_msg_recv((int)fd, &m, &dummy, 0, &n, 2000);
        if (r == 0 && m.type != HO_MSG_TAKE)
                r = -EBADMSG;
        if (r == 0 && (d->phase != DAEMON_RUNNING || d->reloading))
                r = -EBUSY;
        if (r < 0) {
                log_warning_errno(r, "handover: request from pid %d refused", ho_peer_pid((int)fd));
                (void)ho_msg_send((int)fd, HO_MSG_FAIL, (uint32_t)-r, 0, NULL, 0, 100);
                close((int)fd);
                return;
        }
        ho->peer = (int)fd;
        ho->peer_pid = ho_peer_pid((int)fd);
        log_notice("handover: pid %d takes over; %u workers stop accepting and reading",
                   ho->peer_pid, d->n_workers);
        quiesce(d, ho);
}

static bool set_seen(const struct gen *g, size_t upto, const struct lsockset *s)
{
        for (size_t i = 0; i < upto; i++)
                if (g->listeners[i].set == s)
                        return true;
        return false;
}

/* Every listener's open sockets (not those systemd passed: it passes them to the successor). */
static int add_listeners(struct daemon *d, struct ho_state *st)
{
        const struct gen *g = d->gen;

        for (size_t i = 0; i < g->n_listeners; i++) {
                const struct listener *l = &g->listeners[i];
                struct ho_listener *hl;
                unsigned n = 0;

                if (l->set->passed || set_seen(g, i, l->set))
                        continue;
                for (unsigned j = 0; j < l->set->n_socks; j++)
                        n += l->set->socks[j].fd >= 0;
                if (n == 0)
                        continue;
                if (ho_state_add_listener(st, n, &hl) < 0)
                        return -ENOMEM;
                snprintf(hl->text, sizeof(hl->text), "%s", l->set->addr.text);
                snprintf(hl->route, sizeof(hl->route), "%s", l->route->cfg->name);
                n = 0;
                for (unsigned j = 0; j < l->set->n_socks; j++)
                        if (l->set->socks[j].fd >= 0)
                                hl->fds[n++] = l->set->socks[j].fd;
        }
        return 0;
}

/* Record, fds, then wait for OK and say COMMIT. */
static int send_all(struct handover *ho)
{
        unsigned char *buf;
        size_t len, n_fds, n;
        struct ho_msg m;
        int *fds, mfd, dummy, r;

        r = ho_encode(&ho->st, ho_cookie, &buf, &len, &fds, &n_fds);
        if (r < 0)
                return r;
        mfd = ho_memfd_write(buf, len);
        free(buf);
        r = mfd < 0 ? mfd
                    : ho_msg_send(ho->peer, HO_MSG_STATE, (uint32_t)n_fds, (uint32_t)ho->st.n_cs,
                                  &mfd, 1, HO_TIMEOUT_MS);
        if (mfd >= 0)
                close(mfd);
        for (size_t off = 0; r == 0 && off < n_fds; off += n) {
                n = n_fds - off < HO_FDS_PER_MSG ? n_fds - off : HO_FDS_PER_MSG;
                r = ho_msg_send(ho->peer, HO_MSG_FDS, (uint32_t)off, (uint32_t)n, fds + off, n,
                                HO_TIMEOUT_MS);
        }
        free(fds);
        if (r == 0)
                r = ho_msg_recv(ho->peer, &m, &dummy, 0, &n, HO_TIMEOUT_MS);
        if (r == 0 && m.type != HO_MSG_OK)
                r = m.type == HO_MSG_FAIL ? -(int)m.a : -EBADMSG;
        if (r == 0)
                r = ho_msg_send(ho->peer, HO_MSG_COMMIT, 0, 0, NULL, 0, HO_TIMEOUT_MS);
        return r;
}

/* The successor has them all: our copies go, the workers stop (they hold nothing), and the
 * unix socket files stay for the successor. The peer stays open until exit: its EOF tells the
 * successor we are gone. */
static void commit(struct daemon *d, struct handover *ho)
{
        uint64_t pending = ho_state_pending(&ho->st);

        for (size_t i = 0; i < ho->st.n_cs; i++) {
                close(ho->st.cs[i].cfd);
                if (ho->st.cs[i].ufd >= 0)
                        close(ho->st.cs[i].ufd);
        }
        for (struct lsockset *s = d->sets; s; s = s->next)
                memset(&s->file, 0, sizeof(s->file));
        if (ho->to_store)
                log_notice("handover: gave %zu listeners and %zu connections (%llu bytes in "
                           "flight) to the fd store; exiting",
                           ho->st.n_ls, ho->st.n_cs, (unsigned long long)pending);
        else
                log_notice("handover: gave %zu listeners and %zu connections (%llu bytes in "
                           "flight) to pid %d; exiting",
                           ho->st.n_ls, ho->st.n_cs, (unsigned long long)pending, ho->peer_pid);
        ho_state_free(&ho->st);
        evio_reg_close(&ho->lreg);
        ho->lfd = -1;
        remove_own_file(ho);
        ho->phase = HO_DONE;
        d->phase = DAEMON_STOPPING;
        for (unsigned i = 0; i < d->n_workers; i++)
                worker_stop(d->workers[i]);
}

/* The handover failed: every record goes back to a worker, which resumes it. */
static void give_back(struct daemon *d, struct handover *ho, int r)
{
        size_t n = ho->st.n_cs;

        if (ho->to_store)
                log_error_errno(r, "handover to the fd store failed: draining %zu connections", n);
        else
                log_error_errno(r, "handover to pid %d failed: resuming %zu connections",
                                ho->peer_pid, n);
        assert(d->n_workers > 0);
        for (size_t i = 0; i < n; i++) {
                struct worker *w = d->workers[i % d->n_workers];
                struct ho_conn *c;

                if (ho_state_add_conn(&w->ho, &c) == 0) {
                        *c = ho->st.cs[i];
                        continue;
                }
                log_error("handover: no memory to resume a connection of route %s",
                          ho->st.cs[i].route);
                close(ho->st.cs[i].cfd);
                if (ho->st.cs[i].ufd >= 0)
                        close(ho->st.cs[i].ufd);
                free(ho->st.cs[i].up.data);
                free(ho->st.cs[i].down.data);
        }
        ho->st.n_cs = 0; /* moved; listener entries only name the sets' sockets */
        ho_state_free(&ho->st);
        if (ho->peer >= 0)
                close(ho->peer);
        ho->peer = -1;
        atomic_store(&d->shared.handover_acks, 0);
        ho->phase = HO_RESUMING;
        for (unsigned i = 0; i < d->n_workers; i++)
                worker_handover_resume(d->workers[i]);
}

static void exchange(struct daemon *d, struct handover *ho)
{
        int r = 0;

        for (unsigned i = 0; i < d->n_workers; i++) {
                struct worker *w = d->workers[i];

                if (w->ho_err && !r)
                        r = w->ho_err;
                if (ho_state_move(&ho->st, &w->ho) < 0 && !r)
                        r = -ENOMEM; /* what stays with w is resumed by w */
        }
        if (r == 0)
                r = add_listeners(d, &ho->st);
        if (r == 0)
                r = ho->to_store ? ho_fdstore_push(ho) : send_all(ho);
        if (r < 0 && ho->to_store) {
                /* The stop goes on as a drain of everything given back. */
                give_back(d, ho, r);
                ho->to_store = false;
                d->phase = DAEMON_DRAINING;
                for (unsigned i = 0; i < d->n_workers; i++)
                        worker_drain(d->workers[i]);
                return;
        }
        if (r < 0) {
                give_back(d, ho, r);
                return;
        }
        commit(d, ho);
}

void handover_progress(struct daemon *d)
{
        struct handover *ho = d->ho;

        if (!ho)
                return;
        switch (ho->phase) {
        case HO_IDLE:
                if (ho->lfd >= 0)
                        serve_request(d, ho);
                break;
        case HO_QUIESCING:
                if (atomic_load(&d->shared.handover_acks) >= d->n_workers)
                        exchange(d, ho);
                break;
        case HO_RESUMING:
                if (atomic_load(&d->shared.handover_acks) >= d->n_workers) {
                        ho->phase = HO_IDLE;
                        log_notice("handover: resumed; serving as before");
                        for (int sig = 1; sig <= 64; sig++) /* back through the signal token */
                                if (ho->deferred & (UINT64_C(1) << (sig - 1)))
                                        (void)kill(getpid(), sig);
                        ho->deferred = 0;
                }
                break;
        case HO_DONE:
                break;
        }
}
