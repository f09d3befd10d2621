/* evload: the load client of the evproxyd load test, and the echo server behind it.
 *   evload --echo ADDR      echo every byte back (epoll, any number of connections); a peer's EOF
 *                           closes the connection once everything read has been written back
 *   evload [options] ADDR   open, use, hold and close N connections to ADDR, then print figures
 * A client connection goes
 *   CONNECTING --connected--> ROUND1 (send BYTES seeded bytes, read them back, compare)
 *     --> HELD (nothing to do; an EOF, a byte or an error now is a failure)
 *     --every connection held (or failed), hold time over--> ROUND2 (64 more bytes each way)
 *     --> CLOSING (shutdown(SHUT_WR), wait for the echo's EOF) --> DONE (counted as verified)
 *   any error, mismatch, stray byte or the total deadline --> FAILED
 * ADDR: 127.0.0.1:PORT, [::1]:PORT, unix:/path or unix:@abstract. */
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

#define ROUND2_BYTES 64
#define MAX_REPORTS  10

enum lstate {
        ST_IDLE, /* not started yet */
        ST_CONNECTING,
        ST_ROUND1,
        ST_HELD,
        ST_ROUND2,
        ST_CLOSING,
        ST_DONE,
        ST_FAILED,
};

static const char *const state_names[] = {"idle",   "connecting", "round1", "held",
                                          "round2", "closing",    "done",   "failed"};

struct lconn {
        int fd;
        uint8_t state;
        uint32_t events; /* epoll interest now registered (0: not registered) */
        uint32_t base;   /* offset of this round's bytes in the connection's stream */
        uint32_t len;    /* bytes in this round */
        uint32_t sent, rcvd;
};

struct opts {
        unsigned n;
        unsigned bytes;
        unsigned inflight;
        double hold_s;
        double timeout_s;
        uint64_t seed;
        const char *addr;
        bool echo;
};

struct client {
        struct opts o;
        struct sockaddr_storage sa;
        socklen_t sa_len;
        int ep;
        struct lconn *c;
        unsigned next; /* next connection to start */
        unsigned n_connecting, n_held, n_failed, n_done, n_connected;
        unsigned reports;
        uint64_t bytes_verified;
        double t0, t_connected, t_held, t_hold_end, t_end;
        bool holding, released;
        unsigned fail_by_state[ST_FAILED + 1];
};

volatile sig_atomic_t stop_requested;

double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void raise_nofile(void)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void)setrlimit(RLIMIT_NOFILE, &rl);
        }
}

static int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
        struct sockaddr_un *un = (struct sockaddr_un *)ss;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        char host[64];
        const char *colon;
        size_t n;
        long port;

        memset(ss, 0, sizeof(*ss));
        if (strncmp(s, "unix:", 5) == 0) {
                s += 5;
                n = strlen(s);
                if (n == 0 || n >= sizeof(un->sun_path))
                        return -EINVAL;
                un->sun_family = AF_UNIX;
                memcpy(un->sun_path, s, n);
                if (s[0] == '@')
                        un->sun_path[0] = '\0';
                *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (s[0] != '@'));
                return 0;
        }
        colon = strrchr(s, ':');
        if (!colon || colon == s)
                return -EINVAL;
        port = strtol(colon + 1, NULL, 10);
        if (port <= 0 || port > 65535)
                return -EINVAL;
        if (s[0] == '[') {
                n = (size_t)(colon - s);
                if (n < 3 || s[n - 1] != ']' || n - 2 >= sizeof(host))
                        return -EINVAL;
                memcpy(host, s + 1, n - 2);
                host[n - 2] = '\0';
                s6->sin6_family = AF_INET6;
                s6->sin6_port = htons((uint16_t)port);
                if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
                        return -EINVAL;
                *len = sizeof(*s6);
                return 0;
        }
        n = (size_t)(colon - s);
        if (n >= sizeof(host))
                return -EINVAL;
        memcpy(host, s, n);
        host[n] = '\0';
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
                return -EINVAL;
        *len = sizeof(*s4);
        return 0;
}

/* --------------------------------------------------------------------------- seeded data */

static uint64_t splitmix64(uint64_t x)
{
        x += UINT64_C(0x9e3779b97f4a7c15);
        x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
        return x ^ (x >> 31);
}

/* Bytes [pos, pos+n) of connection k's stream: distinct per connection and per position, so a
 * byte delivered to the wrong connection or out of order fails the comparison. */
static void fill(uint64_t seed, unsigned k, uint32_t pos, uint8_t *out, size_t n)
{
        uint64_t key = seed ^ ((uint64_t)k << 32) * UINT64_C(0x9e3779b97f4a7c15);
        uint64_t word = 0;
        uint32_t have = UINT32_MAX;

        for (size_t i = 0; i < n; i++) {
                uint32_t p = pos + (uint32_t)i;

                if (p >> 3 != have) {
                        have = p >> 3;
                        word = splitmix64(key + have);
                }
                out[i] = (uint8_t)(word >> ((p & 7) * 8));
        }
}

/* --------------------------------------------------------------------------- client */

static void set_events(struct client *cl, struct lconn *c, unsigned k, uint32_t events)
{
        struct epoll_event ev = {.events = events, .data.u32 = k};
        int op = c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

        if (c->events == events)
                return;
        if (epoll_ctl(cl->ep, op, c->fd, &ev) == -1) {
                fprintf(stderr, "evload: epoll_ctl: %s\n", strerror(errno));
                exit(2);
        }
        c->events = events;
}

static void conn_fail(struct client *cl, unsigned k, const char *why, int err)
{
        struct lconn *c = &cl->c[k];

        if (c->state == ST_FAILED || c->state == ST_DONE)
                return;
        if (cl->reports++ < MAX_REPORTS)
                fprintf(stderr, "evload: connection %u failed in %s: %s%s%s\n", k,
                        state_names[c->state], why, err ? ": " : "", err ? strerror(err) : "");
        if (c->state == ST_CONNECTING)
                cl->n_connecting--;
        if (c->state == ST_HELD)
                cl->n_held--;
        cl->fail_by_state[c->state]++;
        c->state = ST_FAILED;
        cl->n_failed++;
        if (c->fd >= 0) {
                close(c->fd); /* also removes it from the epoll set */
                c->fd = -1;
        }
}

static void start_round(struct client *cl, unsigned k, uint8_t state, uint32_t len)
{
        struct lconn *c = &cl->c[k];

        c->state = state;
        c->base += c->len;
        c->len = len;
        c->sent = c->rcvd = 0;
        set_events(cl, c, k, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
}

static void start_connect(struct client *cl, unsigned k)
{
        struct lconn *c = &cl->c[k];
        int fd, one = 1;

        fd = socket(cl->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        c->state = ST_CONNECTING;
        cl->n_connecting++;
        if (fd == -1) {
                conn_fail(cl, k, "socket", errno);
                return;
        }
        c->fd = fd;
        if (cl->sa.ss_family != AF_UNIX)
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, (struct sockaddr *)&cl->sa, cl->sa_len) == -1 && errno != EINPROGRESS) {
                conn_fail(cl, k, "connect", errno);
                return;
        }
        set_events(cl, c, k, EPOLLOUT);
}

static void connected(struct client *cl, unsigned k)
{
        struct lconn *c = &cl->c[k];
        int err = 0;
        socklen_t len = sizeof(err);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
                err = errno;
        if (err) {
                conn_fail(cl, k, "connect", err);
                return;
        }
        cl->n_connecting--;
        if (++cl->n_connected == cl->o.n)
                cl->t_connected = now_s();
        start_round(cl, k, ST_ROUND1, cl->o.bytes);
}

/* Send what the round still has to send; false if the connection failed. */
static bool round_send(struct client *cl, unsigned k)
{
        struct lconn *c = &cl->c[k];
        uint8_t buf[IO_CHUNK];

        while (c->sent < c->len) {
                size_t n = c->len - c->sent < IO_CHUNK ? c->len - c->sent : IO_CHUNK;
                ssize_t r;

                fill(cl->o.seed, k, c->base + c->sent, buf, n);
                r = send(c->fd, buf, n, MSG_NOSIGNAL);
                if (r < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return true;
                        conn_fail(cl, k, "send", errno);
                        return false;
                }
                c->sent += (uint32_t)r;
        }
        return true;
}

/* Read and check what came back; false if the connection failed. */
static bool round_recv(struct client *cl, unsigned k)
{
        struct lconn *c = &cl->c[k];
        uint8_t buf[IO_CHUNK], want[IO_CHUNK];

        for (;;) {
                ssize_t r = recv(c->fd, buf, sizeof(buf), 0);

                if (r < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return true;
                        conn_fail(cl, k, "recv", errno);
                        return false;
                }
                if (r == 0) {
                        conn_fail(cl, k, "EOF before the whole echo", 0);
                        return false;
                }
                if ((uint32_t)r > c->len - c->rcvd) {
                        conn_fail(cl, k, "more bytes than were sent", 0);
                        return false;
                }
                fill(cl->o.seed, k, c->base + c->rcvd, want, (size_t)r);
                if (memcmp(buf, want, (size_t)r) != 0) {
                        conn_fail(cl, k, "echoed bytes differ from those sent", 0);
                        return false;
                }
                c->rcvd += (uint32_t)r;
                cl->bytes_verified += (uint64_t)r;
                if (c->rcvd == c->len)
                        return true;
        }
}

static void round_done(struct client *cl, unsigned k)
{
        struct lconn *c = &cl->c[k];

        if (c->state == ST_ROUND1) {
                c->state = ST_HELD;
                cl->n_held++;
                set_events(cl, c, k, EPOLLRDHUP); /* an early close shows as RDHUP/HUP/ERR */
                return;
        }
        c->state = ST_CLOSING;
        if (shutdown(c->fd, SHUT_WR) == -1) {
                conn_fail(cl, k, "shutdown", errno);
                return;
        }
        set_events(cl, c, k, EPOLLIN | EPOLLRDHUP);
}

static void closing(struct client *cl, unsigned k)
{
        struct lconn *c = &cl->c[k];
        uint8_t b;
        ssize_t r = recv(c->fd, &b, 1, 0);

        if (r < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (r < 0) {
                conn_fail(cl, k, "recv after shutdown", errno);
                return;
        }
        if (r > 0) {
                conn_fail(cl, k, "a byte after the last echo", 0);
                return;
        }
        close(c->fd);
        c->fd = -1;
        c->state = ST_DONE;
        cl->n_done++;
}

static void held_event(struct client *cl, unsigned k, uint32_t ev)
{
        struct lconn *c = &cl->c[k];
        uint8_t b;
        ssize_t r = recv(c->fd, &b, 1, MSG_PEEK);

        if (r > 0)
                conn_fail(cl, k, "a byte while held", 0);
        else if (r == 0)
                conn_fail(cl, k, "closed by the peer while held", 0);
        else if (errno != EAGAIN && errno != EINTR)
                conn_fail(cl, k, "while held", errno);
        else if (ev & (EPOLLERR | EPOLLHUP))
                conn_fail(cl, k, "error or hang-up while held", 0);
}

static void conn_event(struct client *cl, unsigned k, uint32_t ev)
{
        struct lconn *c = &cl->c[k];

        switch (c->state) {
        case ST_CONNECTING:
                connected(cl, k);
                return;
        case ST_HELD:
                held_event(cl, k, ev);
                return;
        case ST_CLOSING:
                closing(cl, k);
                return;
        case ST_ROUND1:
        case ST_ROUND2:
                break;
        default:
                return;
        }
        if ((ev & EPOLLOUT) && !round_send(cl, k))
                return;
        if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && !round_recv(cl, k))
                return;
        if (c->sent == c->len && c->rcvd < c->len)
                set_events(cl, c, k, EPOLLIN | EPOLLRDHUP);
        if (c->rcvd == c->len)
                round_done(cl, k);
}

static void release_held(struct client *cl)
{
        cl->released = true;
        cl->t_hold_end = now_s();
        for (unsigned k = 0; k < cl->o.n; k++) {
                if (cl->c[k].state != ST_HELD)
                        continue;
                cl->n_held--;
                start_round(cl, k, ST_ROUND2, ROUND2_BYTES);
        }
}

static void print_figures(struct client *cl)
{
        double end = cl->t_end;
        double t_conn = cl->t_connected ? cl->t_connected - cl->t0 : -1;
        double t_held = cl->t_held ? cl->t_held - cl->t0 : -1;
        double t_hold = cl->t_hold_end ? cl->t_hold_end - cl->t_held : -1;
        double t_close = cl->t_hold_end ? end - cl->t_hold_end : -1;

        printf("evload: connections=%u connected=%u verified=%u failed=%u bytes_verified=%" PRIu64
               " connect_s=%.3f held_s=%.3f hold_s=%.3f close_s=%.3f total_s=%.3f\n",
               cl->o.n, cl->n_connected, cl->n_done, cl->n_failed, cl->bytes_verified, t_conn,
               t_held, t_hold, t_close, end - cl->t0);
        if (cl->n_failed) {
                printf("evload: failed by state:");
                for (unsigned s = 0; s <= ST_FAILED; s++)
                        if (cl->fail_by_state[s])
                                printf(" %s=%u", state_names[s], cl->fail_by_state[s]);
                printf("\n");
        }
        fflush(stdout);
}

/* Where the run stands after each turn: start connections, enter and leave the hold. */
static void client_progress(struct client *cl, double now)
{
        while (cl->next < cl->o.n && cl->n_connecting < cl->o.inflight)
                start_connect(cl, cl->next++);
        if (!cl->holding && cl->next == cl->o.n && cl->n_held + cl->n_failed == cl->o.n) {
                cl->holding = true;
                cl->t_held = now;
                printf("evload: phase=held held=%u failed=%u t=%.3f\n", cl->n_held, cl->n_failed,
                       now - cl->t0);
                fflush(stdout);
        }
        if (cl->holding && !cl->released && now - cl->t_held >= cl->o.hold_s)
                release_held(cl);
}

static int run_client(struct client *cl)
{
        struct epoll_event evs[MAX_EVENTS];
        double deadline;

        cl->c = calloc(cl->o.n, sizeof(*cl->c));
        cl->ep = epoll_create1(EPOLL_CLOEXEC);
        if (!cl->c || cl->ep == -1) {
                fprintf(stderr, "evload: setting up: %s\n", strerror(errno));
                return 2;
        }
        for (unsigned k = 0; k < cl->o.n; k++)
                cl->c[k].fd = -1;
        cl->t0 = now_s();
        deadline = cl->t0 + cl->o.timeout_s;
        for (;;) {
                double now = now_s();
                int n, wait_ms = 100;

                client_progress(cl, now);
                if (cl->n_done + cl->n_failed == cl->o.n || stop_requested)
                        break;
                if (now >= deadline) {
                        fprintf(stderr, "evload: total time %.1fs over\n", cl->o.timeout_s);
                        for (unsigned k = 0; k < cl->o.n; k++)
                                conn_fail(cl, k, "total time over", 0);
                        break;
                }
                if (cl->holding && !cl->released)
                        wait_ms = (int)((cl->t_held + cl->o.hold_s - now) * 1000) + 1;
                if (wait_ms > 100 || wait_ms < 0)
                        wait_ms = 100;
                n = epoll_wait(cl->ep, evs, MAX_EVENTS, wait_ms);
                if (n < 0 && errno != EINTR) {
                        fprintf(stderr, "evload: epoll_wait: %s\n", strerror(errno));
                        return 2;
                }
                for (int i = 0; i < n; i++)
                        conn_event(cl, evs[i].data.u32, evs[i].events);
        }
        cl->t_end = now_s();
        print_figures(cl);
        return cl->n_done == cl->o.n ? 0 : 1;
}

/* --------------------------------------------------------------------------- main */

static void usage(FILE *f)
{
        fprintf(f, "usage: evload [-n CONNS] [-b BYTES] [--hold SECS] [--timeout SECS] "
                   "[--inflight K] [--seed N] ADDR\n"
                   "       evload --echo ADDR\n"
                   "ADDR: 127.0.0.1:PORT, [::1]:PORT, unix:/path, unix:@name\n");
}

static bool parse_num(const char *s, double lo, double hi, double *out)
{
        char *end;
        double v;

        if (!s)
                return false;
        errno = 0;
        v = strtod(s, &end);
        if (errno || end == s || *end || v < lo || v > hi)
                return false;
        *out = v;
        return true;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
        *o = (struct opts){.n = 100, .bytes = 4096, .inflight = 256, .timeout_s = 60, .seed = 1};
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                double d;

                if (strcmp(a, "--echo") == 0) {
                        o->echo = true;
                        continue;
                }
                if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
                        usage(stdout);
                        exit(0);
                }
                if (a[0] != '-') {
                        o->addr = a;
                        continue;
                }
                i++;
                if (strcmp(a, "-n") == 0 && parse_num(v, 1, 1e6, &d))
                        o->n = (unsigned)d;
                else if (strcmp(a, "-b") == 0 && parse_num(v, 1, 1 << 30, &d))
                        o->bytes = (unsigned)d;
                else if (strcmp(a, "--inflight") == 0 && parse_num(v, 1, 1e6, &d))
                        o->inflight = (unsigned)d;
                else if (strcmp(a, "--hold") == 0 && parse_num(v, 0, 1e6, &d))
                        o->hold_s = d;
                else if (strcmp(a, "--timeout") == 0 && parse_num(v, 0.001, 1e7, &d))
                        o->timeout_s = d;
                else if (strcmp(a, "--seed") == 0 && parse_num(v, 0, 1e18, &d))
                        o->seed = (uint64_t)d;
                else
                        return -EINVAL;
        }
        return o->addr ? 0 : -EINVAL;
}

int main(int argc, char **argv)
{
        struct client cl = {0};
        int r;

        if (parse_args(argc, argv, &cl.o) < 0) {
                usage(stderr);
                return 2;
        }
        if (parse_addr(cl.o.addr, &cl.sa, &cl.sa_len) < 0) {
                fprintf(stderr, "evload: bad address %s\n", cl.o.addr);
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        raise_nofile();
        if (cl.o.echo)
                return run_echo(cl.o.addr, &cl.sa, cl.sa_len);
        r = run_client(&cl);
        free(cl.c); /* the connections' fds are closed by then, or go with the process */
        if (cl.ep >= 0)
                close(cl.ep);
        return r;
}
