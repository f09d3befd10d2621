/* PROXY protocol on sockets. Reading peeks first so the header is taken off the stream only
 * when it is whole and valid: the client's own data never lands in our buffer, and a header
 * that trickles in byte by byte costs nothing but its timer (the caller's proxy_timeout). */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include <evproxy/registration.h>

#include "proxy_io.h"

struct span {
        void *data;
        size_t len;
};

static ssize_t recv_peek(int fd, void *arg)
{
        struct span *b = arg;
        ssize_t n = recv(fd, b->data, b->len, MSG_PEEK);

        return n < 0 ? -errno : n;
}

static ssize_t send_span(int fd, void *arg)
{
        struct span *b = arg;
        ssize_t n = send(fd, b->data, b->len, MSG_NOSIGNAL);

        return n < 0 ? -errno : n;
}

int proxy_read_header(struct evio_registration *reg, struct pp_header *h)
{
        uint8_t buf[PP_MAX_LEN];
        struct span b = {buf, sizeof(buf)};
        struct evio_ready_event ev;
        ssize_t n;
        int r;

        n = evio_reg_try_io(reg, EVIO_DIRECTION_READ, recv_peek, &b, &ev);
        if (n == -EAGAIN)
                return 0;
        if (n < 0)
                return (int)n;
        if (n == 0)
                return -ENODATA;
        r = pp_parse(buf, (size_t)n, h);
        if (r < 0)
                return r;
        if (r == 0) {
                /* A full buffer or a half-closed client cannot complete a header any more. */
                if ((size_t)n == sizeof(buf) || (ev.ready & EVIO_READY_READ_CLOSED))
                        return -EPROTO;
                evio_reg_clear_readiness(reg, ev); /* the peek saw all there is */
                return 0;
        }
        /* Bytes already peeked are in the socket buffer: this takes exactly the header. */
        n = recv(reg->fd, buf, (size_t)r, 0);
        if (n < 0)
                return -errno;
        return n == r ? 1 : -EIO;
}

int proxy_send_header(struct evio_registration *reg, enum cfg_proxy_protocol v,
                      const struct sockaddr *src, const struct sockaddr *dst, uint8_t *sent)
{
        uint8_t buf[PP_V1_MAX + 1];
        struct span b;
        ssize_t n;
        int len;

        if (v == CFG_PROXY_V1)
                len = pp_build_v1(src, dst, (char *)buf, sizeof(buf));
        else
                len = pp_build_v2(src, dst, buf, sizeof(buf));
        if (len < 0)
                return len;
        while (*sent < len) {
                b = (struct span){buf + *sent, (size_t)(len - *sent)};
                n = evio_reg_try_io(reg, EVIO_DIRECTION_WRITE, send_span, &b, NULL);
                if (n == -EAGAIN)
                        return 0; /* not writable, or full: readiness cleared */
                if (n < 0)
                        return (int)n;
                *sent += (uint8_t)n;
        }
        return 1;
}

socklen_t proxy_unmap_v4(struct sockaddr_storage *ss, socklen_t len)
{
        static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        struct sockaddr_in sin = {.sin_family = AF_INET};

        if (ss->ss_family != AF_INET6 || memcmp(&s6->sin6_addr, v4mapped, 12) != 0)
                return len;
        sin.sin_port = s6->sin6_port;
        memcpy(&sin.sin_addr, s6->sin6_addr.s6_addr + 12, 4);
        memset(ss, 0, sizeof(*ss));
        memcpy(ss, &sin, sizeof(sin));
        return sizeof(sin);
}
