/* Messages of the handover socket and the record's memfd (handover_msg.h). The socket is
 * non-blocking; each send or receive waits with poll() for at most its timeout, so a successor
 * or predecessor that hangs costs a bounded wait, never a stuck daemon. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "handover_msg.h"

#define HO_MSG_MAGIC 0x31485645u /* "EVH1" */

static int wait_fd(int fd, short events, int timeout_ms)
{
        struct pollfd p = {.fd = fd, .events = events};
        int n;

        do
                n = poll(&p, 1, timeout_ms);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        return n == 0 ? -ETIMEDOUT : 0;
}

int ho_msg_send(int fd, uint32_t type, uint32_t a, uint32_t b, const int *fds, size_t n_fds,
                int timeout_ms)
{
        struct ho_msg m = {.magic = HO_MSG_MAGIC, .type = type, .a = a, .b = b};
        union {
                char buf[CMSG_SPACE(sizeof(int) * HO_FDS_PER_MSG)];
                struct cmsghdr align;
        } u;
        struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        ssize_t n;
        int r;

        if (n_fds > HO_FDS_PER_MSG)
                return -EINVAL;
        if (n_fds) {
                struct cmsghdr *c;

                memset(&u, 0, sizeof(u));
                mh.msg_control = u.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
        }
        for (;;) {
                n = sendmsg(fd, &mh, MSG_NOSIGNAL);
                if (n == (ssize_t)sizeof(m))
                        return 0;
                if (n >= 0)
                        return -EIO; /* a seqpacket message goes whole or not at all */
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return -errno;
                r = wait_fd(fd, POLLOUT, timeout_ms);
                if (r < 0)
                        return r;
        }
}

static void close_all(int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++)
                close(fds[i]);
}

/* The fds of mh's control data into fds[0..max); -EBADMSG (all closed) if more or truncated. */
static int take_fds(struct msghdr *mh, int *fds, size_t max, size_t *n_fds)
{
        size_t n = 0;
        int err = (mh->msg_flags & MSG_CTRUNC) ? -EBADMSG : 0;

        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                size_t k;
                int *p = (int *)CMSG_DATA(c);

                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                        int fd;

                        memcpy(&fd, p + i, sizeof(int));
                        if (n < max)
                                fds[n++] = fd;
                        else {
                                close(fd);
                                err = -EBADMSG;
                        }
                }
        }
        if (err) {
                close_all(fds, n);
                n = 0;
        }
        *n_fds = n;
        return err;
}

int ho_msg_recv(int fd, struct ho_msg *m, int *fds, size_t max, size_t *n_fds, int timeout_ms)
{
        union {
                char buf[CMSG_SPACE(sizeof(int) * HO_FDS_PER_MSG)];
                struct cmsghdr align;
        } u;
        struct iovec iov = {.iov_base = m, .iov_len = sizeof(*m)};
        struct msghdr mh;
        ssize_t n;
        int r;

        *n_fds = 0;
        for (;;) {
                memset(&mh, 0, sizeof(mh));
                mh.msg_iov = &iov;
                mh.msg_iovlen = 1;
                mh.msg_control = u.buf;
                mh.msg_controllen = sizeof(u.buf);
                n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
                if (n >= 0)
                        break;
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return -errno;
                r = wait_fd(fd, POLLIN, timeout_ms);
                if (r < 0)
                        return r;
        }
        r = take_fds(&mh, fds, max, n_fds);
        if (r < 0)
                return r;
        if (n == 0 && *n_fds == 0)
                return -ECONNRESET;
        if (n != (ssize_t)sizeof(*m) || (mh.msg_flags & MSG_TRUNC) || m->magic != HO_MSG_MAGIC) {
                close_all(fds, *n_fds);
                *n_fds = 0;
                return -EBADMSG;
        }
        return 0;
}

int ho_memfd_write(const unsigned char *buf, size_t len)
{
        int fd = memfd_create("evproxy-handover", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        size_t off = 0;

        if (fd < 0)
                return -errno;
        while (off < len) {
                ssize_t n = write(fd, buf + off, len - off);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        int r = n < 0 ? -errno : -EIO;

                        close(fd);
                        return r;
                }
                off += (size_t)n;
        }
        /* The successor reads what we wrote, nothing else: no one may change it. */
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        return fd;
}

int ho_memfd_read(int fd, size_t max, unsigned char **buf, size_t *len)
{
        struct stat st;
        unsigned char *p;
        size_t off = 0;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_size < 0 || (uint64_t)st.st_size > max)
                return -EFBIG;
        p = malloc(st.st_size ? (size_t)st.st_size : 1);
        if (!p)
                return -ENOMEM;
        while (off < (size_t)st.st_size) {
                ssize_t n = pread(fd, p + off, (size_t)st.st_size - off, (off_t)off);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        int r = n < 0 ? -errno : -EIO;

                        free(p);
                        return r;
                }
                off += (size_t)n;
        }
        *buf = p;
        *len = off;
        return 0;
}
