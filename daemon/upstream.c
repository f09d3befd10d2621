/* Upstream choice (round-robin for now: a shared cursor gives each connection its first server,
 * the walk goes on from there) and the non-blocking connect. TCP upstreams get TCP_NODELAY:
 * the proxy must not add Nagle delays on top of the client's own. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon.h"
#include "upstream.h"

void upstream_begin(struct route *r, struct upstream_pick *p)
{
        size_t n = r->cfg->n_upstreams;

        p->start = n ? atomic_fetch_add_explicit(&r->rr_next, 1, memory_order_relaxed) % n : 0;
        p->tried = 0;
        p->current = -1;
}

const struct cfg_addr *upstream_next(struct route *r, struct upstream_pick *p)
{
        size_t n = r->cfg->n_upstreams;

        if (p->tried >= n)
                return NULL;
        p->current = (int)((p->start + p->tried) % n);
        p->tried++;
        return &r->cfg->upstreams[p->current];
}

void upstream_report(struct route *r, const struct upstream_pick *p, int result)
{
        if (result < 0)
                atomic_fetch_add_explicit(&r->connect_failures, 1, memory_order_relaxed);
}

bool upstream_error_is_local(int r)
{
        return r == -EMFILE || r == -ENFILE || r == -ENOMEM || r == -ENOBUFS;
}

int upstream_connect(const struct cfg_addr *a, int *fd_out)
{
        int family = a->sa.ss_family;
        int fd, one = 1;

        *fd_out = -1;
        fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd == -1)
                return -errno;
        *fd_out = fd;
        if (family != AF_UNIX)
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, (const struct sockaddr *)&a->sa, a->sa_len) == 0)
                return 0;
        /* EAGAIN from a unix socket means its backlog is full: that server failed. */
        return -errno;
}

int upstream_connect_result(int fd)
{
        int err = 0;
        socklen_t len = sizeof(err);

        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
                return -errno;
        return -err;
}
