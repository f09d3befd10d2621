/* Listening sockets of every address kind: TCP v4/v6 (one SO_REUSEPORT socket per worker),
 * "*:port" dual-stack (IPV6_V6ONLY=0), unix paths (a stale socket file is replaced only if it
 * is a socket nobody listens on; mode set with a restrictive umask around bind so the file is
 * never more open than unix_mode), abstract names, and sockets passed by systemd. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "listener.h"
#include "log.h"

#define LISTEN_BACKLOG 4096

static int set_int_opt(int fd, int level, int name, int value)
{
        if (setsockopt(fd, level, name, &value, sizeof(value)) == -1)
                return -errno;
        return 0;
}

/* The common end of opening a listener: listen() unless a step before failed (r < 0), and
 * the fd closed on any failure. */
static int finish_listen(const struct cfg_addr *a, int fd, int r, int *out)
{
        if (r == 0 && listen(fd, LISTEN_BACKLOG) == -1)
                r = log_error_errno(-errno, "listen %s: listen", a->text);
        if (r < 0) {
                close(fd);
                return r;
        }
        *out = fd;
        return 0;
}

static int open_tcp(const struct cfg_addr *a, int *out)
{
        int family = a->sa.ss_family;
        int fd, r;

        fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd == -1)
                return log_error_errno(-errno, "listen %s: socket", a->text);
        r = set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
        if (r == 0)
                r = set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
        if (r == 0 && family == AF_INET6)
                r = set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, a->wildcard ? 0 : 1);
        /* Accepted sockets inherit TCP_NODELAY from the listener: one setsockopt per
         * listener instead of one per connection. */
        if (r == 0)
                r = set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
        if (r < 0) {
                log_error_errno(r, "listen %s: setsockopt", a->text);
                goto err_close_fd;
        }
        if (bind(fd, (const struct sockaddr *)&a->sa, a->sa_len) == -1) {
                r = log_error_errno(-errno, "listen %s: bind", a->text);
                goto err_close_fd;
        }
err_close_fd: /* r == 0 when every step above succeeded */
        return finish_listen(a, fd, r, out);
}

/* A socket file left by a previous run is removed only if nothing accepts on it any more. */
static int remove_stale_socket(const struct cfg_addr *a, const char *path)
{
        struct stat st;
        int fd, r;

        if (lstat(path, &st) == -1)
                return errno == ENOENT ? 0 : log_error_errno(-errno, "listen %s: stat", a->text);
        if (!S_ISSOCK(st.st_mode)) {
                log_error("listen %s: %s exists and is not a socket; not replacing it", a->text,
                          path);
                return -EEXIST;
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd == -1)
                return log_error_errno(-errno, "listen %s: socket", a->text);
        r = connect(fd, (const struct sockaddr *)&a->sa, a->sa_len) == -1 ? -errno : 0;
        close(fd);
        if (r == 0 || r == -EAGAIN || r == -EINPROGRESS) {
                log_error("listen %s: another process is listening on %s", a->text, path);
                return -EADDRINUSE;
        }
        if (unlink(path) == -1 && errno != ENOENT)
                return log_error_errno(-errno, "listen %s: removing stale socket", a->text);
        log_info("listen %s: removed stale socket file", a->text);
        return 0;
}

static int open_unix(struct lsockset *l, const struct cfg_addr *a, mode_t mode, int *out)
{
        const struct sockaddr_un *un = (const struct sockaddr_un *)&a->sa;
        bool is_path = a->kind == CFG_ADDR_UNIX;
        mode_t old_umask;
        struct stat st;
        int fd, r;

        if (is_path) {
                r = remove_stale_socket(a, un->sun_path);
                if (r < 0)
                        return r;
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd == -1)
                return log_error_errno(-errno, "listen %s: socket", a->text);
        /* Workers have not started when listeners open, so the process-wide umask is safe. */
        old_umask = umask(0177);
        r = bind(fd, (const struct sockaddr *)&a->sa, a->sa_len) == -1 ? -errno : 0;
        umask(old_umask);
        if (r < 0) {
                log_error_errno(r, "listen %s: bind", a->text);
                goto err_close_fd;
        }
        if (is_path) {
                if (chmod(un->sun_path, mode) == -1 || stat(un->sun_path, &st) == -1) {
                        r = log_error_errno(-errno, "listen %s: chmod %04o", a->text,
                                            (unsigned)mode);
                        unlink(un->sun_path);
                        goto err_close_fd;
                }
                l->unix_path = true;
                l->dev = st.st_dev;
                l->ino = st.st_ino;
        }
err_close_fd: /* r == 0 when every step above succeeded */
        return finish_listen(a, fd, r, out);
}

int lset_open(const struct cfg_addr *addr, mode_t unix_mode, unsigned n_workers, int passed_fd,
              struct lsockset **out)
{
        struct lsockset *l = calloc(1, sizeof(*l));
        int r = 0;

        if (!l)
                return log_error_errno(-ENOMEM, "listen %s", addr->text);
        l->addr = *addr;
        l->passed = passed_fd >= 0;
        l->shared = l->passed || addr->kind != CFG_ADDR_INET;
        l->n_socks = l->shared ? 1 : n_workers;
        l->socks = calloc(l->n_socks, sizeof(*l->socks));
        if (!l->socks) {
                free(l);
                return log_error_errno(-ENOMEM, "listen %s", addr->text);
        }
        for (unsigned i = 0; i < l->n_socks; i++) {
                l->socks[i].fd = -1;
                l->socks[i].owner = l;
                atomic_init(&l->socks[i].users, 0);
        }
        if (l->passed) {
                l->socks[0].fd = passed_fd;
                /* As for our own TCP listeners (open_tcp); a unix socket refuses it. */
                (void)set_int_opt(passed_fd, IPPROTO_TCP, TCP_NODELAY, 1);
        }
        for (unsigned i = 0; i < l->n_socks && r == 0 && !l->passed; i++) {
                if (l->shared)
                        r = open_unix(l, &l->addr, unix_mode, &l->socks[i].fd);
                else
                        r = open_tcp(&l->addr, &l->socks[i].fd);
        }
        if (r < 0) {
                lset_free(l);
                return r;
        }
        *out = l;
        return 0;
}

int lset_chown(struct lsockset *l, uid_t uid, gid_t gid)
{
        const struct sockaddr_un *un = (const struct sockaddr_un *)&l->addr.sa;

        if (l->unix_path && lchown(un->sun_path, uid, gid) == -1)
                return log_error_errno(-errno, "listen %s: chown", l->addr.text);
        return 0;
}

struct lsock *lset_sock(struct lsockset *l, unsigned worker)
{
        struct lsock *s = &l->socks[l->shared ? 0 : worker % l->n_socks];

        atomic_fetch_add(&s->users, 1);
        return s;
}

static void unlink_own_path(struct lsockset *l)
{
        const struct sockaddr_un *un = (const struct sockaddr_un *)&l->addr.sa;
        struct stat st;

        if (!l->unix_path)
                return;
        l->unix_path = false;
        /* Only the file we created: another instance may have replaced it meanwhile. */
        if (lstat(un->sun_path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino &&
            unlink(un->sun_path) == -1)
                log_warning_errno(-errno, "listen %s: removing socket file", l->addr.text);
}

static void lsock_close(struct lsock *s)
{
        if (s->fd < 0 || s->owner->passed)
                return; /* a passed socket stays open for a later configuration */
        close(s->fd);
        s->fd = -1;
        if (s->owner->shared)
                unlink_own_path(s->owner);
}

void lsock_release(struct lsock *s)
{
        if (atomic_fetch_sub(&s->users, 1) == 1)
                lsock_close(s);
}

bool lset_unused(struct lsockset *l)
{
        for (unsigned i = 0; i < l->n_socks; i++)
                if (atomic_load(&l->socks[i].users) > 0)
                        return false;
        return true;
}

void lset_free(struct lsockset *l)
{
        if (!l)
                return;
        for (unsigned i = 0; i < l->n_socks; i++)
                lsock_close(&l->socks[i]);
        unlink_own_path(l);
        free(l->socks);
        free(l);
}
