/* Opening sockets (sock.h). A unix path listener, whoever opens it:
 *   lstat --absent--> bind
 *     |  --not a socket--> refused ("exists and is not a socket")
 *     |  --a socket: connect probe --refused (nobody listens)--> unlink (stale), bind
 *     |                            --accepted or backlog full--> refused ("in use")
 *     |                            --anything else--> refused (cannot tell)
 *   bind: Linux creates the file with the socket inode's mode less the umask, so the socket is
 *   fchmod'ed to unix_mode first: the file is never more open than unix_mode, and the umask
 *   (process-wide: worker threads run during a reload) is never changed. Bits the umask took are
 *   given back by a chmod through an O_PATH fd (no symlink followed, only on a socket), whose
 *   fstat also gives the dev/ino that sock_file_remove() checks before it unlinks. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "sock.h"

static const char *unix_path(const struct cfg_addr *a)
{
        return ((const struct sockaddr_un *)&a->sa)->sun_path;
}

int sock_set_int(int fd, int level, int name, int value)
{
        if (setsockopt(fd, level, name, &value, sizeof(value)) == -1)
                return -errno;
        return 0;
}

/* The stale-socket rule (top of file): 0 when the path is free to bind, or -errno (logged). */
static int remove_stale(const struct cfg_addr *a, const char *who)
{
        const char *path = unix_path(a);
        struct stat st;
        int fd, r;

        if (lstat(path, &st) == -1) {
                if (errno == ENOENT)
                        return 0;
                return log_error_errno(-errno, "%slisten %s: stat %s", who, a->text, path);
        }
        if (!S_ISSOCK(st.st_mode)) {
                log_error("%slisten %s: %s exists and is not a socket; not replacing it", who,
                          a->text, path);
                return -EEXIST;
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd == -1)
                return log_error_errno(-errno, "%slisten %s: socket", who, a->text);
        r = connect(fd, (const struct sockaddr *)&a->sa, a->sa_len) == -1 ? -errno : 0;
        close(fd);
        if (r == 0 || r == -EAGAIN || r == -EINPROGRESS) {
                log_error("%slisten %s: another process is listening on %s", who, a->text, path);
                return -EADDRINUSE;
        }
        if (r == -ENOENT)
                return 0; /* gone meanwhile */
        if (r != -ECONNREFUSED)
                return log_error_errno(r, "%slisten %s: cannot tell whether %s is in use", who,
                                       a->text, path);
        if (unlink(path) == -1 && errno != ENOENT)
                return log_error_errno(-errno, "%slisten %s: removing stale socket %s", who,
                                       a->text, path);
        log_info("%slisten %s: removed stale socket file %s", who, a->text, path);
        return 0;
}

/* Right after bind: remember the file, and give it the bits of mode that the umask took. */
static int adopt_file(const struct cfg_addr *a, mode_t mode, struct sock_file *file)
{
        char proc[40];
        struct stat st;
        int fd, r = 0;

        fd = open(unix_path(a), O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd == -1)
                return -errno;
        if (fstat(fd, &st) == -1)
                r = -errno;
        else if (!S_ISSOCK(st.st_mode))
                r = -ESTALE; /* replaced between bind and open: not ours to touch */
        if (r == 0) {
                *file = (struct sock_file){.created = true, .dev = st.st_dev, .ino = st.st_ino};
                snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
                if ((st.st_mode & 07777) != mode && chmod(proc, mode) == -1)
                        r = -errno;
        }
        close(fd);
        return r;
}

static int set_inet_opts(const struct cfg_addr *a, int fd, unsigned flags)
{
        int r = sock_set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);

        if (r == 0 && (flags & SOCKF_REUSEPORT))
                r = sock_set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
        if (r == 0 && a->sa.ss_family == AF_INET6)
                r = sock_set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, a->wildcard ? 0 : 1);
        if (r == 0 && (flags & SOCKF_NODELAY))
                r = sock_set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
        return r;
}

/* Socket options, bind, and the unix file; on failure what was done is undone and logged. */
static int bind_one(const struct cfg_addr *a, int fd, unsigned flags, mode_t mode, const char *who,
                    struct sock_file *file)
{
        bool is_path = a->kind == CFG_ADDR_UNIX;
        int r;

        if (a->sa.ss_family != AF_UNIX && (r = set_inet_opts(a, fd, flags)) < 0)
                return log_error_errno(r, "%slisten %s: setsockopt", who, a->text);
        /* The file gets this mode less the umask at bind (top of file). */
        if (is_path && fchmod(fd, mode) == -1)
                return log_error_errno(-errno, "%slisten %s: fchmod %04o", who, a->text,
                                       (unsigned)mode);
        if (bind(fd, (const struct sockaddr *)&a->sa, a->sa_len) == -1)
                return log_error_errno(-errno, "%slisten %s: bind", who, a->text);
        if (is_path && (r = adopt_file(a, mode, file)) < 0) {
                log_error_errno(r, "%slisten %s: chmod %04o", who, a->text, (unsigned)mode);
                sock_file_remove(file, a, who);
                return r;
        }
        return 0;
}

int sock_listen(const struct cfg_addr *a, unsigned flags, mode_t unix_mode, int backlog,
                const char *who, struct sock_file *file, int *out)
{
        int fd, r;

        *file = (struct sock_file){0};
        if (a->kind == CFG_ADDR_UNIX && (r = remove_stale(a, who)) < 0)
                return r;
        fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd == -1)
                return log_error_errno(-errno, "%slisten %s: socket", who, a->text);
        r = bind_one(a, fd, flags, unix_mode, who, file);
        if (r == 0 && listen(fd, backlog) == -1) {
                r = log_error_errno(-errno, "%slisten %s: listen", who, a->text);
                sock_file_remove(file, a, who);
        }
        if (r < 0) {
                close(fd);
                return r;
        }
        *out = fd;
        return 0;
}

/* An O_PATH fd on the file if it is still the one we created; -errno otherwise (-ESTALE:
 * replaced). */
static int open_own_file(const struct sock_file *file, const struct cfg_addr *a)
{
        struct stat st;
        int fd = open(unix_path(a), O_PATH | O_NOFOLLOW | O_CLOEXEC);

        if (fd == -1)
                return -errno;
        if (fstat(fd, &st) == -1 || !S_ISSOCK(st.st_mode) || st.st_dev != file->dev ||
            st.st_ino != file->ino) {
                close(fd);
                return -ESTALE;
        }
        return fd;
}

int sock_file_chown(const struct sock_file *file, const struct cfg_addr *a, uid_t uid, gid_t gid,
                    const char *who)
{
        int fd, r = 0;

        if (!file->created)
                return 0;
        fd = open_own_file(file, a);
        if (fd < 0)
                return log_error_errno(fd, "%slisten %s: chown %s", who, a->text, unix_path(a));
        if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH) == -1)
                r = log_error_errno(-errno, "%slisten %s: chown %s", who, a->text, unix_path(a));
        close(fd);
        return r;
}

void sock_file_remove(struct sock_file *file, const struct cfg_addr *a, const char *who)
{
        struct stat st;

        if (!file->created)
                return;
        file->created = false;
        /* lstat then unlink: a file put there in between by someone who may write the directory
         * is lost, but such a user could remove ours as well. */
        if (lstat(unix_path(a), &st) == -1)
                return; /* gone already */
        if (st.st_dev != file->dev || st.st_ino != file->ino) {
                log_info("%slisten %s: %s is no longer our socket; leaving it", who, a->text,
                         unix_path(a));
                return;
        }
        if (unlink(unix_path(a)) == -1 && errno != ENOENT)
                log_warning_errno(-errno, "%slisten %s: removing socket file %s", who, a->text,
                                  unix_path(a));
}

int sock_connect(const struct cfg_addr *a, unsigned flags, int *fd_out)
{
        int family = a->sa.ss_family;
        int fd;

        *fd_out = -1;
        fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd == -1)
                return -errno;
        *fd_out = fd;
        if (family != AF_UNIX && (flags & SOCKF_NODELAY))
                (void)sock_set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
        if (connect(fd, (const struct sockaddr *)&a->sa, a->sa_len) == 0)
                return 0;
        return -errno;
}

int sock_connect_result(int fd)
{
        int err = 0;
        socklen_t len = sizeof(err);

        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
                return -errno;
        return -err;
}
