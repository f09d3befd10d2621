/* Handover, the main thread's part (handover.h): the old process serves a successor's request
 * from its main loop, the new one takes over during start-up. The old one's states:
 *   IDLE --TAKE--> QUIESCING (workers export) --all acked--> send; OK? --yes--> COMMIT, DONE
 *   (workers stop, exit 0)                                          --no--> RESUMING --> IDLE
 * Listener sockets are never closed by the exchange; a connection's sockets stay open in the
 * old process until COMMIT, so a failed successor loses nothing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <evproxy/registration.h>

#include "daemon.h"
#include "gen.h"
#include "handover.h"
#include "handover_int.h"
#include "handover_msg.h"
#include "handover_wire.h"
#include "listener.h"
#include "log.h"
#include "worker.h"

static const char *ho_path;

void handover_configure(const char *path)
{
        ho_path = path;
}

int ho_new(struct daemon *d)
{
        const char *path = ho_path ? ho_path : d->gen->cfg->handover.socket;
        struct handover *ho;

        if (d->ho)
                return 0;
        if (strlen(path) >= sizeof(ho->sun.sun_path)) {
                log_error("handover socket %s: path too long", path);
                return -ENAMETOOLONG;
        }
        ho = calloc(1, sizeof(*ho));
        if (!ho)
                return log_error_errno(-ENOMEM, "handover");
        ho->sun.sun_family = AF_UNIX;
        memcpy(ho->sun.sun_path, path, strlen(path) + 1); /* "": no handover socket */
        ho->lfd = ho->peer = -1;
        ho->lreg = EVIO_REGISTRATION_INIT;
        d->ho = ho;
        return 0;
}

uint64_t ho_cookie(int fd)
{
        uint64_t c = 0;
        socklen_t len = sizeof(c);

        return getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len) == 0 ? c : 0;
}

pid_t ho_peer_pid(int fd)
{
        struct ucred uc;
        socklen_t len = sizeof(uc);

        return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0 ? uc.pid : 0;
}

/* ---- the new process ---- */

/* The fds of the FDS messages, n_fds in all, into fds[]. */
static int recv_fds(struct handover *ho, int *fds, size_t n_fds)
{
        size_t got = 0, n;
        struct ho_msg m;
        int r;

        while (got < n_fds) {
                r = ho_msg_recv(ho->peer, &m, fds + got, n_fds - got, &n, HO_TIMEOUT_MS);
                if (r < 0)
                        return r;
                got += n;
                if (m.type != HO_MSG_FDS || m.a != got - n || m.b != n || n == 0)
                        r = -EBADMSG;
                if (r < 0) {
                        for (size_t i = 0; i < got; i++)
                                close(fds[i]);
                        return r;
                }
        }
        return 0;
}

/* The STATE message and its memfd, then the fds; decoded and checked into ho->st. */
static int recv_state(struct handover *ho)
{
        unsigned char *buf = NULL;
        size_t len = 0, n;
        struct ho_msg m;
        int mfd = -1, *fds = NULL, r;

        r = ho_msg_recv(ho->peer, &m, &mfd, 1, &n, HO_TIMEOUT_MS);
        if (r < 0)
                return log_error_errno(r, "handover: waiting for pid %d", ho->peer_pid);
        if (m.type == HO_MSG_FAIL) {
                log_error_errno(-(int)m.a, "handover: pid %d refused", ho->peer_pid);
                return -EBUSY;
        }
        if (m.type != HO_MSG_STATE || n != 1 || m.a > HO_MAX_FDS) {
                if (n)
                        close(mfd);
                return log_error_errno(-EBADMSG, "handover: pid %d", ho->peer_pid);
        }
        r = ho_memfd_read(mfd, HO_MAX_SIZE, &buf, &len);
        close(mfd);
        if (r < 0)
                return log_error_errno(r, "handover: reading the record");
        fds = malloc((m.a ? m.a : 1) * sizeof(int));
        r = fds ? recv_fds(ho, fds, m.a) : -ENOMEM;
        if (r < 0) {
                free(buf);
                free(fds);
                return log_error_errno(r, "handover: receiving %u fds", m.a);
        }
        r = ho_decode(buf, len, m.a, &ho->st);
        free(buf);
        for (size_t i = 0; r == 0 && i < m.a; i++) /* in order: each fd is the one named */
                if (ho->st.cookies[i] && ho_cookie(fds[i]) != ho->st.cookies[i])
                        r = -EBADMSG;
        if (r < 0) {
                ho_state_free(&ho->st);
                for (size_t i = 0; i < m.a; i++)
                        close(fds[i]);
                free(fds);
                return log_error_errno(r, "handover: the record of pid %d is not valid",
                                       ho->peer_pid);
        }
        ho_state_map_fds(&ho->st, fds, m.a);
        free(fds);
        return 0;
}

int handover_take(struct daemon *d)
{
        struct handover *ho;
        int fd, r;

        r = ho_new(d);
        if (r < 0)
                return r;
        ho = d->ho;
        if (!ho->sun.sun_path[0])
                return 0;
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(-errno, "handover: socket");
        if (connect(fd, (struct sockaddr *)&ho->sun, sizeof(ho->sun)) < 0) {
                r = -errno;
                close(fd);
                if (r == -ENOENT || r == -ECONNREFUSED) {
                        log_info("handover: no evproxyd at %s: starting afresh", ho->sun.sun_path);
                        return 0;
                }
                return log_error_errno(r, "handover: connecting to %s", ho->sun.sun_path);
        }
        ho->peer = fd;
        ho->peer_pid = ho_peer_pid(fd);
        r = ho_msg_send(fd, HO_MSG_TAKE, 0, 0, NULL, 0, HO_TIMEOUT_MS);
        if (r < 0)
                return log_error_errno(r, "handover: asking pid %d", ho->peer_pid);
        r = recv_state(ho);
        if (r < 0)
                return r;
        ho->took = true;
        log_info("handover: pid %d gave %zu listeners, %zu connections, %llu bytes in flight",
                 ho->peer_pid, ho->st.n_ls, ho->st.n_cs,
                 (unsigned long long)ho_state_pending(&ho->st));
        return 0;
}

/* An old listener's sockets as a socket set of ours for address a (the new configuration's). */
static int adopt(struct daemon *d, const struct cfg_addr *a, struct ho_listener *hl)
{
        struct lsockset *s = calloc(1, sizeof(*s));

        if (s)
                s->socks = calloc(hl->n_socks, sizeof(*s->socks));
        if (!s || !s->socks) {
                free(s);
                return log_error_errno(-ENOMEM, "handover: listen %s", a->text);
        }
        s->addr = *a;
        s->shared = a->kind != CFG_ADDR_INET;
        s->n_socks = hl->n_socks;
        for (unsigned i = 0; i < s->n_socks; i++) {
                s->socks[i].fd = hl->fds[i];
                s->socks[i].owner = s;
                atomic_init(&s->socks[i].users, 0);
                hl->fds[i] = -1;
        }
        if (a->kind == CFG_ADDR_INET && s->n_socks > d->n_workers)
                log_warning("handover: listen %s: %u sockets from %u workers, now %u workers: "
                            "some sockets are not accepted on",
                            a->text, s->n_socks, s->n_socks, d->n_workers);
        s->next = d->sets;
        d->sets = s;
        return 0;
}

int handover_adopt_listeners(struct daemon *d)
{
        const struct cfg *cfg = d->gen->cfg;
        struct handover *ho;
        int r;

        if ((r = ho_new(d)) < 0)
                return r;
        ho = d->ho;
        if (!ho->took && (r = ho_fdstore_take(d, ho)) < 0)
                return r;
        if (!ho->took)
                return 0;
        for (size_t ri = 0; ri < cfg->n_routes; ri++) {
                for (size_t j = 0; j < cfg->routes[ri].n_listen; j++) {
                        const struct cfg_addr *a = &cfg->routes[ri].listen[j];

                        for (size_t k = 0; a->kind != CFG_ADDR_SYSTEMD && k < ho->st.n_ls; k++) {
                                struct ho_listener *hl = &ho->st.ls[k];

                                if (hl->fds[0] >= 0 && strcmp(hl->text, a->text) == 0) {
                                        (void)adopt(d, a, hl); /* else bound afresh */
                                        break;
                                }
                        }
                }
        }
        return 0;
}

int handover_confirm(struct daemon *d)
{
        struct handover *ho = d->ho;
        struct ho_msg m;
        size_t n;
        int dummy, r;

        if (!ho || !ho->took)
                return 0;
        r = ho->peer < 0 ? 0 : ho_msg_send(ho->peer, HO_MSG_OK, 0, 0, NULL, 0, HO_TIMEOUT_MS);
        if (r == 0 && ho->peer >= 0)
                r = ho_msg_recv(ho->peer, &m, &dummy, 0, &n, HO_TIMEOUT_MS);
        if (r == 0 && ho->peer >= 0 && m.type != HO_MSG_COMMIT)
                r = -EBADMSG;
        if (r < 0)
                return log_error_errno(r, "handover: pid %d did not let go (it keeps serving)",
                                       ho->peer_pid);
        for (size_t i = 0; i < ho->st.n_ls; i++) {
                struct ho_listener *hl = &ho->st.ls[i];

                if (hl->fds[0] < 0)
                        continue;
                log_notice("handover: listen %s (route %s) is not in the configuration: closed",
                           hl->text, hl->route);
                for (unsigned j = 0; j < hl->n_socks; j++) {
                        close(hl->fds[j]);
                        hl->fds[j] = -1;
                }
        }
        /* A unix listener's file is ours to remove at exit now (before COMMIT it was not: a
         * failed start must leave it to the old process). Sets we bound ourselves know theirs. */
        for (struct lsockset *s = d->sets; s; s = s->next) {
                struct stat st;

                if (s->addr.kind == CFG_ADDR_UNIX && !s->file.created && !s->passed &&
                    stat(((const struct sockaddr_un *)&s->addr.sa)->sun_path, &st) == 0 &&
                    S_ISSOCK(st.st_mode))
                        s->file =
                            (struct sock_file){.created = true, .dev = st.st_dev, .ino = st.st_ino};
        }
        if (ho->peer < 0) /* from the fd store: the old process is gone already */
                return 0;
        /* Its metrics and admin sockets are ours to open once it is gone: wait for EOF. */
        r = ho_msg_recv(ho->peer, &m, &dummy, 0, &n, HO_TIMEOUT_MS);
        if (r != -ECONNRESET)
                log_warning("handover: pid %d still running after COMMIT", ho->peer_pid);
        close(ho->peer);
        ho->peer = -1;
        return 0;
}

static bool route_exists(const struct gen *g, const char *name)
{
        for (size_t i = 0; i < g->n_routes; i++)
                if (strcmp(g->routes[i].cfg->name, name) == 0)
                        return true;
        return false;
}

/* The ghost generation of a dropped route (made on first use, kept in ghosts[]). */
static struct listener *ghost_listener(struct daemon *d, const char *route, struct gen **ghosts,
                                       size_t *n)
{
        struct gen *g;

        for (size_t i = 0; i < *n; i++)
                if (ghosts[i] && strcmp(ghosts[i]->routes[0].cfg->name, route) == 0)
                        return &ghosts[i]->listeners[0];
        g = ho_ghost_gen(d, route, &d->ho->st);
        ghosts[(*n)++] = g;
        return g ? &g->listeners[0] : NULL;
}

void handover_import(struct daemon *d)
{
        struct handover *ho = d->ho;
        struct gen **ghosts;
        size_t ok = 0, n_ghosts = 0;

        if (!ho || !ho->took)
                return;
        ghosts = calloc(ho->st.n_cs ? ho->st.n_cs : 1, sizeof(*ghosts));
        for (size_t i = 0; i < ho->st.n_cs; i++) {
                struct ho_conn *c = &ho->st.cs[i];
                struct listener *l = NULL;

                if (!route_exists(d->gen, c->route) && ghosts)
                        l = ghost_listener(d, c->route, ghosts, &n_ghosts);
                if (worker_handover_import(d->workers[i % d->n_workers], c, l) == 0)
                        ok++;
        }
        for (size_t i = 0; i < n_ghosts; i++)
                gen_unref(ghosts[i]);                  /* its connections hold it */
        atomic_store(&d->shared.handover_resumed, ok); /* metrics */
        atomic_store(&d->shared.handover_resumed_bytes, ho_state_pending(&ho->st));
        free(ghosts);
        log_notice("handover: took over %zu listeners and %zu connections (%llu bytes in "
                   "flight) from %s; %zu resumed",
                   ho->st.n_ls, ho->st.n_cs, (unsigned long long)ho_state_pending(&ho->st),
                   ho->from_store ? "the fd store" : "the old process", ok);
        ho_state_free(&ho->st);
        ho->took = false;
}
