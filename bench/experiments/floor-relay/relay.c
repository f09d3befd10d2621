/* The floor for a user-space relay: the least a proxy can do per message. One thread, one epoll
 * set, level-triggered; per connection two sockets and a 16 KiB buffer per direction; per
 * readable event one recv() and one send() of what it got, nothing else (no timers, no
 * accounting, no backpressure beyond dropping EPOLLIN while a buffer holds bytes, no error
 * reporting). Not a product: a yardstick for bench/experiments/floor-relay/run.
 *
 *   relay LISTEN_PORT UPSTREAM_PORT      (both on 127.0.0.1)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 16384

struct side {
        int fd;
        struct side *peer;
        size_t len, off; /* bytes read from fd, waiting to go to peer */
        char buf[BUF];
};

static int ep;

static void set_events(struct side *s)
{
        /* Read while our buffer is empty; wait for writability of the peer otherwise. */
        struct epoll_event e = {.events = s->len ? 0 : EPOLLIN, .data.ptr = s};
        struct epoll_event p = {.events = (s->peer->len ? 0 : EPOLLIN) | (s->len ? EPOLLOUT : 0),
                                .data.ptr = s->peer};

        epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &e);
        epoll_ctl(ep, EPOLL_CTL_MOD, s->peer->fd, &p);
}

static void close_pair(struct side *s)
{
        close(s->fd);
        close(s->peer->fd);
        free(s->peer);
        free(s);
}

/* s readable: move one buffer to its peer. Returns -1 when the pair is done. */
static int pump(struct side *s)
{
        ssize_t n = recv(s->fd, s->buf, BUF, 0);

        if (n == 0 || (n < 0 && errno != EAGAIN))
                return -1;
        if (n < 0)
                return 0;
        ssize_t w = send(s->peer->fd, s->buf, (size_t)n, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN)
                return -1;
        if (w < 0)
                w = 0;
        if (w < n) {
                s->len = (size_t)n;
                s->off = (size_t)w;
                set_events(s);
        }
        return 0;
}

/* s's peer writable again: flush s's buffer. */
static int flush(struct side *s)
{
        ssize_t w = send(s->peer->fd, s->buf + s->off, s->len - s->off, MSG_NOSIGNAL);

        if (w < 0 && errno != EAGAIN)
                return -1;
        if (w > 0)
                s->off += (size_t)w;
        if (s->off == s->len) {
                s->len = s->off = 0;
                set_events(s);
        }
        return 0;
}

int main(int argc, char **argv)
{
        struct sockaddr_in la = {.sin_family = AF_INET}, ua = {.sin_family = AF_INET};
        struct epoll_event evs[256];
        int one = 1, l;

        if (argc != 3)
                return 2;
        la.sin_port = htons((uint16_t)atoi(argv[1]));
        ua.sin_port = htons((uint16_t)atoi(argv[2]));
        inet_pton(AF_INET, "127.0.0.1", &la.sin_addr);
        inet_pton(AF_INET, "127.0.0.1", &ua.sin_addr);
        l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(l, (struct sockaddr *)&la, sizeof(la)) || listen(l, 1024))
                return 1;
        ep = epoll_create1(0);
        struct epoll_event le = {.events = EPOLLIN, .data.ptr = NULL};
        epoll_ctl(ep, EPOLL_CTL_ADD, l, &le);
        for (;;) {
                int n = epoll_wait(ep, evs, 256, -1);

                for (int i = 0; i < n; i++) {
                        struct side *s = evs[i].data.ptr;

                        if (s == (void *)1) /* its pair closed earlier in this batch */
                                continue;
                        if (!s) { /* accept; a blocking connect on loopback is immediate */
                                int c = accept4(l, NULL, NULL, SOCK_NONBLOCK);
                                int u = c < 0 ? -1 : socket(AF_INET, SOCK_STREAM, 0);

                                if (u < 0 || connect(u, (struct sockaddr *)&ua, sizeof(ua))) {
                                        if (c >= 0)
                                                close(c);
                                        if (u >= 0)
                                                close(u);
                                        continue;
                                }
                                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                                setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                                fcntl(u, F_SETFL, O_NONBLOCK);
                                struct side *a = calloc(1, sizeof(*a));
                                struct side *b = calloc(1, sizeof(*b));
                                a->fd = c;
                                b->fd = u;
                                a->peer = b;
                                b->peer = a;
                                struct epoll_event ea = {.events = EPOLLIN, .data.ptr = a};
                                struct epoll_event eb = {.events = EPOLLIN, .data.ptr = b};
                                epoll_ctl(ep, EPOLL_CTL_ADD, c, &ea);
                                epoll_ctl(ep, EPOLL_CTL_ADD, u, &eb);
                                continue;
                        }
                        int r = 0;
                        if (evs[i].events & EPOLLOUT)
                                r = flush(s->peer);
                        if (r == 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                                r = pump(s);
                        if (r < 0) {
                                /* the pair may have later events in this batch: drop them */
                                for (int j = i + 1; j < n; j++)
                                        if (evs[j].data.ptr == s || evs[j].data.ptr == s->peer)
                                                evs[j].data.ptr = (void *)1;
                                close_pair(s->fd < s->peer->fd ? s : s->peer);
                        }
                }
        }
}
