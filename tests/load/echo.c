/* evload --echo: the echo server behind the load test. epoll, any number of connections; a
 * peer's EOF closes the connection once everything read has been written back; accepting pauses
 * for ECHO_PAUSE ms on EMFILE/ENFILE. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "evload.h"

#define ECHO_PAUSE 100 /* ms without accepting after EMFILE/ENFILE */

struct econn {
        uint8_t *buf; /* bytes read but not yet written back (allocated only then) */
        uint32_t off, len;
        bool open;
};

struct echo {
        int ep, lfd;
        struct econn *c;
        size_t n_c;
        unsigned long long accepted, closed, open, max_open, bytes;
        double paused_until;
        bool listening;
};

static void echo_close(struct echo *e, int fd)
{
        struct econn *c = &e->c[fd];

        free(c->buf);
        c->buf = NULL;
        c->off = c->len = 0;
        c->open = false;
        close(fd);
        e->closed++;
        e->open--;
}

static void echo_watch(struct echo *e, int fd, int op, uint32_t events)
{
        struct epoll_event ev = {.events = events, .data.fd = fd};

        if (epoll_ctl(e->ep, op, fd, &ev) == -1) {
                fprintf(stderr, "evload-echo: epoll_ctl: %s\n", strerror(errno));
                exit(2);
        }
}

/* Write back what is pending; true when nothing is left. */
static bool echo_flush(struct echo *e, int fd, bool *dead)
{
        struct econn *c = &e->c[fd];

        while (c->off < c->len) {
                ssize_t r = send(fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);

                if (r < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return false;
                        *dead = true;
                        return false;
                }
                c->off += (uint32_t)r;
        }
        free(c->buf);
        c->buf = NULL;
        c->off = c->len = 0;
        return true;
}

static void echo_event(struct echo *e, int fd, uint32_t ev)
{
        static uint8_t buf[IO_CHUNK];
        struct econn *c = &e->c[fd];
        bool dead = false;

        (void)ev;
        if (c->len > c->off) {
                if (!echo_flush(e, fd, &dead)) {
                        if (dead)
                                echo_close(e, fd);
                        return;
                }
                echo_watch(e, fd, EPOLL_CTL_MOD, EPOLLIN); /* read again */
        }
        for (unsigned i = 0; i < 16; i++) {
                ssize_t r = recv(fd, buf, sizeof(buf), 0), w;

                if (r < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (r <= 0) { /* EOF: everything read has been written back */
                        echo_close(e, fd);
                        return;
                }
                e->bytes += (unsigned long long)r;
                w = send(fd, buf, (size_t)r, MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN && errno != EINTR) {
                        echo_close(e, fd);
                        return;
                }
                if (w < 0)
                        w = 0;
                if (w < r) { /* backpressure: keep the rest, stop reading until it is out */
                        c->buf = malloc((size_t)(r - w));
                        if (!c->buf) {
                                echo_close(e, fd);
                                return;
                        }
                        memcpy(c->buf, buf + w, (size_t)(r - w));
                        c->off = 0;
                        c->len = (uint32_t)(r - w);
                        echo_watch(e, fd, EPOLL_CTL_MOD, EPOLLOUT);
                        return;
                }
        }
        /* Level-triggered: whatever is left to read is reported again. */
}

static void echo_accept(struct echo *e, double now)
{
        for (unsigned i = 0; i < 256; i++) {
                int fd = accept4(e->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK), one = 1;

                if (fd < 0) {
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                            errno == ENOMEM) {
                                /* Not level-triggered spinning: stop watching for a moment. */
                                echo_watch(e, e->lfd, EPOLL_CTL_DEL, 0);
                                e->listening = false;
                                e->paused_until = now + ECHO_PAUSE / 1000.0;
                        }
                        return;
                }
                if ((size_t)fd >= e->n_c) {
                        close(fd);
                        continue;
                }
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                e->c[fd].open = true;
                e->accepted++;
                if (++e->open > e->max_open)
                        e->max_open = e->open;
                echo_watch(e, fd, EPOLL_CTL_ADD, EPOLLIN);
        }
}

static int echo_listen(const char *text, struct sockaddr_storage *sa, socklen_t len)
{
        struct sockaddr_un *un = (struct sockaddr_un *)sa;
        struct stat st;
        int fd, one = 1;

        fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd == -1)
                return -errno;
        if (sa->ss_family != AF_UNIX)
                (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        else if (un->sun_path[0] && lstat(un->sun_path, &st) == 0 && S_ISSOCK(st.st_mode))
                unlink(un->sun_path);
        if (sa->ss_family == AF_INET6)
                (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)sa, len) == -1 || listen(fd, 4096) == -1) {
                int r = -errno;

                fprintf(stderr, "evload-echo: %s: %s\n", text, strerror(errno));
                close(fd);
                return r;
        }
        return fd;
}

static void on_stop(int sig)
{
        (void)sig;
        stop_requested = 1;
}

int run_echo(const char *text, struct sockaddr_storage *sa, socklen_t len)
{
        struct epoll_event evs[MAX_EVENTS];
        struct sigaction act = {.sa_handler = on_stop};
        struct rlimit rl;
        struct echo e = {0};

        sigaction(SIGTERM, &act, NULL);
        sigaction(SIGINT, &act, NULL);
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
                rl.rlim_cur = 1 << 20;
        e.n_c = (size_t)rl.rlim_cur;
        e.c = calloc(e.n_c, sizeof(*e.c));
        e.ep = epoll_create1(EPOLL_CLOEXEC);
        e.lfd = echo_listen(text, sa, len);
        if (!e.c || e.ep == -1 || e.lfd < 0)
                return 2;
        echo_watch(&e, e.lfd, EPOLL_CTL_ADD, EPOLLIN);
        e.listening = true;
        printf("evload-echo: listening on %s\n", text);
        fflush(stdout);
        while (!stop_requested) {
                int n = epoll_wait(e.ep, evs, MAX_EVENTS, e.listening ? 1000 : ECHO_PAUSE);
                double now = now_s();

                if (n < 0 && errno != EINTR) {
                        fprintf(stderr, "evload-echo: epoll_wait: %s\n", strerror(errno));
                        return 2;
                }
                if (!e.listening && now >= e.paused_until) {
                        echo_watch(&e, e.lfd, EPOLL_CTL_ADD, EPOLLIN);
                        e.listening = true;
                }
                for (int i = 0; i < n; i++) {
                        if (evs[i].data.fd == e.lfd)
                                echo_accept(&e, now);
                        else if (e.c[evs[i].data.fd].open)
                                echo_event(&e, evs[i].data.fd, evs[i].events);
                }
        }
        printf("evload-echo: accepted=%llu closed=%llu open=%llu max_open=%llu bytes=%llu\n",
               e.accepted, e.closed, e.open, e.max_open, e.bytes);
        fflush(stdout);
        if (sa->ss_family == AF_UNIX && ((struct sockaddr_un *)sa)->sun_path[0])
                unlink(((struct sockaddr_un *)sa)->sun_path);
        for (size_t fd = 0; fd < e.n_c; fd++)
                if (e.c[fd].open)
                        echo_close(&e, (int)fd);
        free(e.c);
        close(e.lfd);
        close(e.ep);
        return 0;
}
