/* rateload: request/response load at a fixed total rate (open loop) or flat out (closed loop)
 * over N kept connections to an echo server, for bench/cost-curves. A request is SIZE bytes;
 * it is answered when as many bytes came back. Open loop: request k is due at t0 + k/RATE on
 * connection k mod N; its latency counts from when it was due (so a stall is not hidden), and a
 * connection still busy when its next one is due sends it right after. Before the clock starts,
 * every connection carries one request and its answer (so the proxy has accepted and connected
 * them all: connect() returns once the kernel queued it). Prints one JSON line.
 *   rateload ADDR CONNS RATE(0 = flat out) SECONDS [SIZE]          ADDR = 127.0.0.1:PORT */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES (1u << 22)

struct rconn {
        int fd;
        unsigned got;    /* bytes of the answer so far */
        unsigned queued; /* requests due but not sent yet */
        uint64_t due_ns; /* when the request in flight was due (0: none in flight) */
};

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint32_t *samples; /* latency in µs */
static size_t n_samples, n_failed;

static int cmp_u32(const void *a, const void *b)
{
        uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

        return x < y ? -1 : x > y;
}

static int open_conn(const struct sockaddr_in *sa, int ep, struct rconn *c)
{
        int one = 1;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};

        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0 || connect(c->fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0)
                return -errno;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0 ? -errno : 0;
}

static void send_req(struct rconn *c, const char *msg, unsigned size, uint64_t due)
{
        c->due_ns = due;
        c->got = 0;
        if (write(c->fd, msg, size) != (ssize_t)size)
                n_failed++;
}

static void on_readable(struct rconn *c, const char *msg, unsigned size, uint64_t interval,
                        uint64_t now)
{
        char buf[4096];
        ssize_t n = read(c->fd, buf, sizeof(buf));

        if (n <= 0) {
                n_failed++;
                c->due_ns = 0;
                return;
        }
        c->got += (unsigned)n;
        if (c->got < size || !c->due_ns)
                return;
        if (n_samples < MAX_SAMPLES)
                samples[n_samples++] = (uint32_t)((now - c->due_ns) / 1000);
        c->due_ns = 0;
        if (!interval) /* closed loop: the next one at once */
                send_req(c, msg, size, now);
        else if (c->queued) {
                c->queued--;
                send_req(c, msg, size, now);
        }
}

/* One request on every connection, all answered: then the measured part starts. */
static int warm_up(struct rconn *cs, unsigned conns, int ep, const char *msg, unsigned size)
{
        uint64_t end = now_ns() + 60000000000u;
        size_t before = n_samples;
        struct epoll_event evs[256];

        for (unsigned i = 0; i < conns; i++)
                send_req(&cs[i], msg, size, now_ns());
        while (n_samples - before < conns && n_failed == 0 && now_ns() < end) {
                int n = epoll_wait(ep, evs, 256, 100);

                for (int i = 0; i < n; i++)
                        on_readable(evs[i].data.ptr, msg, size, 1, now_ns());
        }
        n_samples = before;
        return n_failed == 0 && now_ns() < end ? 0 : -1;
}

int main(int argc, char **argv)
{
        struct sockaddr_in sa = {.sin_family = AF_INET};
        struct rlimit rl = {20000, 20000};
        unsigned conns, size = 64;
        double rate, secs;
        char *colon, msg[4096];
        struct rconn *cs;
        int ep;

        if (argc < 5 || !(colon = strrchr(argv[1], ':'))) {
                fprintf(stderr, "usage: rateload 127.0.0.1:PORT CONNS RATE SECONDS [SIZE]\n");
                return 2;
        }
        *colon = 0;
        inet_pton(AF_INET, argv[1], &sa.sin_addr);
        sa.sin_port = htons((uint16_t)atoi(colon + 1));
        conns = (unsigned)atoi(argv[2]);
        rate = atof(argv[3]);
        secs = atof(argv[4]);
        if (argc > 5)
                size = (unsigned)atoi(argv[5]);
        if (size == 0 || size > sizeof(msg) || conns == 0)
                return 2;
        setrlimit(RLIMIT_NOFILE, &rl);
        memset(msg, 'r', size);
        samples = malloc(MAX_SAMPLES * sizeof(*samples));
        cs = calloc(conns, sizeof(*cs));
        ep = epoll_create1(EPOLL_CLOEXEC);
        if (!samples || !cs || ep < 0)
                return 1;
        for (unsigned i = 0; i < conns; i++) {
                int r = open_conn(&sa, ep, &cs[i]);

                if (r < 0) {
                        fprintf(stderr, "rateload: connection %u: %s\n", i, strerror(-r));
                        return 1;
                }
        }
        if (warm_up(cs, conns, ep, msg, size) < 0) {
                fprintf(stderr, "rateload: not every connection answered within 60 s\n");
                return 1;
        }
        uint64_t interval = rate > 0 ? (uint64_t)(1e9 / rate) : 0;
        uint64_t t0 = now_ns(), end = t0 + (uint64_t)(secs * 1e9), next = t0;
        uint64_t k = 0, sent_due = 0;
        struct epoll_event evs[256];

        if (!interval)
                for (unsigned i = 0; i < conns; i++)
                        send_req(&cs[i], msg, size, t0);
        for (uint64_t now = t0; now < end; now = now_ns()) {
                struct timespec ts = {0, 1000000}; /* closed loop: 1 ms */
                int n;

                while (interval && next <= now) { /* everything due by now */
                        struct rconn *c = &cs[k++ % conns];

                        if (c->due_ns)
                                c->queued++;
                        else
                                send_req(c, msg, size, next);
                        next += interval;
                        sent_due++;
                }
                if (interval) /* sleep until the next one is due, to the ns: no spinning */
                        ts = (struct timespec){(time_t)((next - now) / 1000000000u),
                                               (long)((next - now) % 1000000000u)};
                n = epoll_pwait2(ep, evs, 256, &ts, NULL);
                now = now_ns();
                for (int i = 0; i < n; i++)
                        on_readable(evs[i].data.ptr, msg, size, interval, now);
        }
        double el = (double)(now_ns() - t0) / 1e9;

        qsort(samples, n_samples, sizeof(*samples), cmp_u32);
#define PCT(q) (n_samples ? samples[(size_t)((double)(n_samples - 1) * (q))] : 0)
        printf("{\"conns\": %u, \"rate\": %.0f, \"seconds\": %.2f, \"done\": %zu, "
               "\"rps\": %.1f, \"failed\": %zu, \"p50_us\": %u, \"p99_us\": %u, "
               "\"p999_us\": %u, \"due\": %llu}\n",
               conns, rate, el, n_samples, (double)n_samples / el, n_failed, PCT(0.5), PCT(0.99),
               PCT(0.999), (unsigned long long)sent_due);
        return 0;
}
