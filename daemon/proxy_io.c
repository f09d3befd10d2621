/* PROXY protocol on sockets. Reading peeks first so the header is taken off the stream only
 * when it is whole and valid: the client's own data never lands in our buffer, and a header
 * that trickles in byte by byte costs nothing but its timer (the caller's proxy_timeout). */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include <evproxy/ready.h>

#include "proxy_io.h"

int proxy_read_header(int fd, struct evio_scheduled_io *io, struct pp_header *h)
{
        uint8_t buf[PP_MAX_LEN];
        struct evio_ready_event ev;
        ssize_t n;
        int r;

        if (evio_sio_poll_ready(io, EVIO_DIRECTION_READ, NULL, &ev) != 0)
                return 0;
        n = recv(fd, buf, sizeof(buf), MSG_PEEK);
        if (n < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        return -errno;
                if (errno == EAGAIN)
                        evio_sio_clear_readiness(io, ev);
                return 0;
        }
        if (n == 0)
                return -ENODATA;
        r = pp_parse(buf, (size_t)n, h);
        if (r < 0)
                return r;
        if (r == 0) {
                /* A full buffer or a half-closed client cannot complete a header any more. */
                if ((size_t)n == sizeof(buf) || (ev.ready & EVIO_READY_READ_CLOSED))
                        return -EPROTO;
                evio_sio_clear_readiness(io, ev);
                return 0;
        }
        /* Bytes already peeked are in the socket buffer: this takes exactly the header. */
        n = recv(fd, buf, (size_t)r, 0);
        if (n < 0)
                return -errno;
        return n == r ? 1 : -EIO;
}

int proxy_send_header(int fd, struct evio_scheduled_io *io, enum cfg_proxy_protocol v,
                      const struct sockaddr *src, const struct sockaddr *dst, uint8_t *sent)
{
        uint8_t buf[PP_V1_MAX + 1];
        struct evio_ready_event ev;
        ssize_t n;
        int len;

        if (v == CFG_PROXY_V1)
                len = pp_build_v1(src, dst, (char *)buf, sizeof(buf));
        else
                len = pp_build_v2(src, dst, buf, sizeof(buf));
        if (len < 0)
                return len;
        while (*sent < len) {
                if (evio_sio_poll_ready(io, EVIO_DIRECTION_WRITE, NULL, &ev) != 0)
                        return 0;
                n = send(fd, buf + *sent, (size_t)(len - *sent), MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                return -errno;
                        evio_sio_clear_readiness(io, ev);
                        return 0;
                }
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
