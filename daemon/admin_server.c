/* The admin socket on the main thread's driver. A connection's life:
 *   accept --peer not root, not our uid, not in the socket's group--> closed, no answer
 *   READING --a line--> answer --> WRITING --all sent--> closed
 *   READING --"reload"--> WAITING --the reload applied or failed (admin_reload_done)--> WRITING
 *   READING --conns, kill, maint --kill--> WAITING --every worker walked its connections
 *                                                     (admin_conns.c)--> WRITING
 *   READING --over 4 KiB: error answer; EOF, error or 5 s: closed--> ...
 *   WAITING --60 s--> WRITING (a timeout error); WRITING --10 s--> closed
 * Wakers and timers run inside evio_driver_turn(); a reload runs from a timer (reload_kick) so
 * that no waker of a connection calls into the reload, which answers connections itself. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin.h"
#include "admin_int.h"
#include "daemon.h"
#include "gen.h"
#include "log.h"

#define ACCEPT_RETRY_MS 100
#define MAX_GROUPS      256 /* the peer's groups SO_PEERGROUPS reports, at most */

enum aconn_state { AC_READING, AC_WAITING, AC_WRITING };

struct admin_conn {
        TAILQ_ENTRY(admin_conn) link;
        struct admin_server *a;
        int fd;
        struct evio_scheduled_io *io;
        struct evio_timer timer;
        enum aconn_state state;
        struct conns_query *query; /* WAITING for the workers (admin_conns.c), or NULL */
        unsigned skip; /* WAITING for a reload: reloads to let pass before the one that answers */
        bool counted;  /* WAITING: skip was set when the reload was started */
        size_t in_len, out_len, out_off;
        char *out;
        char in[ADMIN_MAX_REQUEST];
};

static void aconn_close(struct admin_conn *c)
{
        struct admin_server *a = c->a;

        evio_timer_cancel(a->d->drv, &c->timer);
        if (c->query)
                admin_conns_forget(c->query);
        if (c->io)
                evio_handle_deregister(evio_driver_handle(a->d->drv), c->io);
        close(c->fd);
        free(c->out);
        TAILQ_REMOVE(&a->conns, c, link);
        a->n_conns--;
        free(c);
}

/* Send what is left of the answer; false if the connection was closed. */
static bool aconn_write(struct admin_conn *c)
{
        while (c->out_off < c->out_len) {
                ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return true;
                if (n < 0)
                        break;
                c->out_off += (size_t)n;
        }
        aconn_close(c); /* all sent, or the client went away */
        return false;
}

/* Answer with resp (consumed) and start writing; false if the connection was closed. */
static bool aconn_answer(struct admin_conn *c, json_t *resp)
{
        char *text = resp ? json_dumps(resp, JSON_COMPACT) : NULL;

        json_decref(resp);
        if (c->query) {
                admin_conns_forget(c->query);
                c->query = NULL;
        }
        if (!text) {
                log_warning("admin: out of memory answering a request");
                aconn_close(c);
                return false;
        }
        c->out_len = strlen(text);
        c->out = realloc(text, c->out_len + 1);
        if (!c->out) {
                c->out = text;
        } else {
                c->out[c->out_len++] = '\n'; /* replaces the NUL: out is not a string */
        }
        c->state = AC_WRITING;
        if (evio_timer_arm(c->a->d->drv, &c->timer, evio_now_ms() + ADMIN_WRITE_TIMEOUT_MS) < 0) {
                aconn_close(c);
                return false;
        }
        return aconn_write(c);
}

void admin_conn_answer(struct admin_conn *c, json_t *resp)
{
        c->query = NULL; /* done: it answers once, then is freed */
        aconn_answer(c, resp);
}

/* conns, kill, maint --kill (with answer, the maint answer): wait for every worker. */
static bool aconn_ask_workers(struct admin_conn *c, const struct admin_request *req, json_t *answer)
{
        char why[300];

        if (c->a->d->phase != DAEMON_RUNNING) {
                json_decref(answer);
                return aconn_answer(c, admin_error("the daemon is stopping"));
        }
        c->query = admin_conns_start(c->a, c, req, answer, why, sizeof(why));
        if (!c->query)
                return aconn_answer(c, admin_error("%s", why));
        c->state = AC_WAITING;
        if (evio_timer_arm(c->a->d->drv, &c->timer, evio_now_ms() + ADMIN_RELOAD_TIMEOUT_MS) < 0) {
                aconn_close(c);
                return false;
        }
        return true;
}

static void aconn_wait_reload(struct admin_conn *c)
{
        struct admin_server *a = c->a;

        c->state = AC_WAITING;
        c->counted = false;
        if (evio_timer_arm(a->d->drv, &c->timer, evio_now_ms() + ADMIN_RELOAD_TIMEOUT_MS) < 0) {
                aconn_answer(c, admin_error("out of memory"));
                return;
        }
        a->reload_asked = true;
        (void)evio_timer_arm(a->d->drv, &a->reload_kick, evio_now_ms());
}

/* A whole request line is in c->in[0..len). */
static bool aconn_request(struct admin_conn *c, size_t len)
{
        struct admin_request req;
        char err[256];
        json_t *resp;

        if (admin_request_parse(c->in, len, &req, err, sizeof(err)) < 0)
                return aconn_answer(c, admin_error("bad request: %s", err));
        if (req.cmd == ADMIN_CMD_KILL)
                log_info("admin: kill %llu", (unsigned long long)req.id);
        else
                log_info("admin: %s%s%s%s%s%s", admin_cmd_name(req.cmd), req.kill ? " --kill" : "",
                         req.route[0] ? " " : "", req.route, req.server[0] ? " " : "", req.server);
        if (req.cmd == ADMIN_CMD_RELOAD) {
                if (c->a->d->phase != DAEMON_RUNNING)
                        return aconn_answer(c, admin_error("the daemon is stopping"));
                aconn_wait_reload(c);
                return true;
        }
        if (req.cmd == ADMIN_CMD_CONNS || req.cmd == ADMIN_CMD_KILL)
                return aconn_ask_workers(c, &req, NULL);
        resp = admin_answer(c->a, &req);
        if (req.cmd == ADMIN_CMD_MAINT && req.kill && json_is_true(json_object_get(resp, "ok")))
                return aconn_ask_workers(c, &req, resp); /* maint is set: now the resets */
        return aconn_answer(c, resp);
}

/* Read what is there; false if the connection was closed. */
static bool aconn_read(struct admin_conn *c)
{
        for (;;) {
                ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
                char *nl;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return true;
                if (n <= 0) {
                        aconn_close(c);
                        return false;
                }
                nl = memchr(c->in + c->in_len, '\n', (size_t)n);
                c->in_len += (size_t)n;
                if (nl)
                        return aconn_request(c, (size_t)(nl - c->in));
                if (c->in_len == sizeof(c->in))
                        return aconn_answer(c, admin_error("bad request: request too large (at "
                                                           "most %d bytes with its newline)",
                                                           ADMIN_MAX_REQUEST));
        }
}

static void aconn_wake(void *arg, uint32_t ready)
{
        struct admin_conn *c = arg;

        if (c->state == AC_READING)
                (void)aconn_read(c);
        else if (c->state == AC_WRITING)
                (void)aconn_write(c);
}

static void aconn_timeout(struct evio_timer *t, void *arg)
{
        struct admin_conn *c = arg;

        if (c->state == AC_WAITING && c->query)
                aconn_answer(c, admin_error("not every worker answered within %d s",
                                            ADMIN_RELOAD_TIMEOUT_MS / 1000));
        else if (c->state == AC_WAITING)
                aconn_answer(c, admin_error("no answer within %d s: the reload is still under "
                                            "way (see the daemon's log)",
                                            ADMIN_RELOAD_TIMEOUT_MS / 1000));
        else
                aconn_close(c);
}

static bool in_groups(gid_t gid, const gid_t *groups, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (groups[i] == gid)
                        return true;
        return false;
}

/* root, our own uid, or a member of the socket file's group (primary or supplementary). */
static bool peer_allowed(struct admin_server *a, int fd, struct ucred *cred)
{
        const char *path = ((const struct sockaddr_un *)&a->addr.sa)->sun_path;
        socklen_t len = sizeof(*cred);
        gid_t groups[MAX_GROUPS], gid = a->gid;
        struct stat st;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) == -1)
                return false;
        if (cred->uid == 0 || cred->uid == geteuid())
                return true;
        if (stat(path, &st) == 0)
                gid = st.st_gid; /* the operator may have changed it since */
        if (cred->gid == gid)
                return true;
        len = sizeof(groups);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == -1)
                return false;
        return in_groups(gid, groups, len / sizeof(gid_t));
}

static void admin_add_conn(struct admin_server *a, int fd)
{
        struct evio_waker wk = {.fn = aconn_wake};
        struct admin_conn *c;
        struct ucred cred = {0};
        int r;

        if (!peer_allowed(a, fd, &cred)) {
                log_warning("admin: refused a client with uid %u gid %u (pid %d): not root, "
                            "not uid %u, not in the group of %s",
                            (unsigned)cred.uid, (unsigned)cred.gid, (int)cred.pid,
                            (unsigned)geteuid(), a->addr.text);
                close(fd);
                return;
        }
        if (a->n_conns >= ADMIN_MAX_CLIENTS || !(c = calloc(1, sizeof(*c)))) {
                log_warning("admin: %u clients connected, closing a new one", a->n_conns);
                close(fd);
                return;
        }
        c->a = a;
        c->fd = fd;
        evio_timer_init(&c->timer, aconn_timeout, c);
        TAILQ_INSERT_TAIL(&a->conns, c, link);
        a->n_conns++;
        r = evio_timer_arm(a->d->drv, &c->timer, evio_now_ms() + ADMIN_REQUEST_TIMEOUT_MS);
        wk.arg = c;
        if (r == 0)
                r = evio_handle_register(evio_driver_handle(a->d->drv), fd,
                                         EVIO_INTEREST_READABLE | EVIO_INTEREST_WRITABLE, &wk,
                                         &c->io);
        if (r < 0) {
                log_warning_errno(r, "admin: accepting");
                aconn_close(c);
        }
}

static void admin_accept(void *arg, uint32_t ready)
{
        struct admin_server *a = arg;

        for (unsigned i = 0; i < 64; i++) {
                int fd = accept4(a->lreg.fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

                if (fd >= 0) {
                        admin_add_conn(a, fd);
                        continue;
                }
                if (errno == EAGAIN)
                        return;
                if (errno == EINTR || errno == ECONNABORTED)
                        continue;
                break;
        }
        /* Out of fds, or a budget spent: edge-triggered, so look again a little later. */
        (void)evio_timer_arm(a->d->drv, &a->retry, evio_now_ms() + ACCEPT_RETRY_MS);
}

static void admin_retry(struct evio_timer *t, void *arg)
{
        admin_accept(arg, 0);
}

/* Runs the reload a client asked for. Clients that wait count the reload under way, if any:
 * the one asked for runs after it (reload.c) and is the one that answers them. */
static void admin_reload_kick(struct evio_timer *t, void *arg)
{
        struct admin_server *a = arg;
        struct admin_conn *c;

        if (!a->reload_asked)
                return;
        a->reload_asked = false;
        TAILQ_FOREACH(c, &a->conns, link)
        {
                if (c->state == AC_WAITING && !c->query && !c->counted) {
                        c->counted = true;
                        c->skip = a->d->reloading ? 1 : 0;
                }
        }
        daemon_reload(a->d);
}

void admin_reload_done(struct daemon *d, const char *error)
{
        struct admin_server *a = d->admin;
        struct admin_conn *c, *next;
        char why[512];

        if (!a)
                return;
        a->reloaded = true;
        a->reload_ok = !error;
        a->reload_time = time(NULL);
        snprintf(a->reload_error, sizeof(a->reload_error), "%s", error ? error : "");
        if (!error) {
                const struct cfg_admin *now = &d->gen->cfg->admin;

                if (!now->enabled || !cfg_addr_equal(&now->listen, &a->addr) ||
                    strcmp(now->state_file, a->state_file) != 0 || now->mode != a->mode)
                        log_warning("reload: \"admin\" changes take effect at the next restart");
                /* Servers that left the configuration lose their state. */
                if (admin_state_save(a, why, sizeof(why)) < 0)
                        log_warning("admin: %s", why);
        }
        for (c = TAILQ_FIRST(&a->conns); c; c = next) {
                next = TAILQ_NEXT(c, link);
                if (c->state != AC_WAITING || c->query || !c->counted)
                        continue;
                if (c->skip > 0) {
                        c->skip--;
                        continue;
                }
                aconn_answer(c, admin_reload_answer(a));
        }
}

/* Owner and group of the socket file: as root, the configured user (it must reach its own
 * socket after dropping privileges) and group (default: the user's); else what we are. */
static int socket_owner(const struct cfg *cfg, uid_t *uid, gid_t *gid)
{
        struct passwd *pw;
        struct group *gr;

        *uid = geteuid();
        *gid = getegid();
        if (*uid == 0 && cfg->user && (pw = getpwnam(cfg->user))) {
                *uid = pw->pw_uid;
                *gid = pw->pw_gid;
        }
        if (cfg->admin.group) {
                gr = getgrnam(cfg->admin.group);
                if (!gr) {
                        log_error("admin: group %s: no such group", cfg->admin.group);
                        return -ESRCH;
                }
                *gid = gr->gr_gid;
        }
        return 0;
}

/* The socket (sock.h: the stale-socket rule, the file created with the configured mode, never
 * touching the umask), then given to its owner and group. */
static int admin_open(struct admin_server *a, const struct cfg *cfg)
{
        uid_t uid;
        int fd = -1, r;

        r = socket_owner(cfg, &uid, &a->gid);
        if (r < 0)
                return r;
        r = sock_listen(&a->addr, 0, a->mode, ADMIN_MAX_CLIENTS * 4, "admin: ", &a->file, &fd);
        if (r < 0)
                return r;
        evio_reg_init(&a->lreg, evio_driver_handle(a->d->drv), fd);
        if (uid != geteuid() || a->gid != getegid())
                return sock_file_chown(&a->file, &a->addr, uid, a->gid, "admin: ");
        return 0;
}

int admin_server_start(struct daemon *d)
{
        const struct cfg *cfg = d->gen->cfg;
        struct evio_waker wk = {.fn = admin_accept};
        struct admin_server *a;
        int r;

        if (!cfg->admin.enabled)
                return 0;
        a = calloc(1, sizeof(*a));
        if (!a || !(a->state_file = strdup(cfg->admin.state_file))) {
                free(a);
                return log_error_errno(-ENOMEM, "admin");
        }
        d->admin = a;
        a->d = d;
        a->addr = cfg->admin.listen;
        a->mode = cfg->admin.mode;
        a->lreg = EVIO_REGISTRATION_INIT;
        a->started = time(NULL);
        a->started_ms = evio_now_ms();
        TAILQ_INIT(&a->conns);
        TAILQ_INIT(&a->queries);
        evio_timer_init(&a->retry, admin_retry, a);
        evio_timer_init(&a->reload_kick, admin_reload_kick, a);
        r = admin_state_load(a);
        if (r == 0)
                r = admin_open(a, cfg);
        wk.arg = a;
        if (r == 0) {
                r = evio_reg_register(&a->lreg, EVIO_INTEREST_READABLE, &wk);
                if (r < 0)
                        log_error_errno(r, "admin: registering %s", a->addr.text);
        }
        if (r < 0) {
                admin_server_stop(d);
                return r;
        }
        log_info("admin: listening on %s (mode %04o), state file %s", a->addr.text,
                 (unsigned)a->mode, a->state_file);
        return 0;
}

void admin_server_stop(struct daemon *d)
{
        struct admin_server *a = d->admin;
        struct admin_conn *c;

        if (!a)
                return;
        /* aconn_close unlinks c before freeing it; the analyzer does not follow TAILQ_REMOVE. */
        while ((c = TAILQ_FIRST(&a->conns)))
                aconn_close(c); // NOLINT(clang-analyzer-unix.Malloc)
        admin_conns_stop(a);
        evio_timer_cancel(d->drv, &a->retry);
        evio_timer_cancel(d->drv, &a->reload_kick);
        evio_reg_close(&a->lreg);
        sock_file_remove(&a->file, &a->addr, "admin: ");
        free(a->saved);
        json_decref(a->pending);
        free(a->state_file);
        free(a);
        d->admin = NULL;
}
