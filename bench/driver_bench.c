/* Driver micro-benchmark: N socketpairs in a ring pass one-byte tokens around through evproxy's
 * driver, libevent and libuv; prints events/s and ns/event per backend (median of a few
 * repetitions, interleaved) and the ratios evproxy/libevent and evproxy/libuv from one run.
 * Not a test: it never fails on a timing. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "driver_bench.h"

#define DEFAULT_EVENTS 400000 /* about 2 s per run at ~5 us per event */
#define DEFAULT_REPS   3
#define DEFAULT_TOKENS 100
#define MAX_SIZES      16
#define MAX_REPS       15
#define FD_RESERVE     20 /* stdio, epoll fds, wake/signal tokens of the three loops */

struct options {
        uint64_t events;
        int reps;
        int max_tokens;
        int sizes[MAX_SIZES];
        int n_sizes;
        int only; /* index of the one backend to run (for profiling), or -1 for all */
};

/* Median of one cell, over the repetitions. */
struct cell {
        double ns_per_event;
        double cpu_ns_per_event;
        double empty_share;    /* callbacks that read nothing, per event */
        double hops_per_event; /* > 1 when tokens merged into one read */
};

static const struct bench_backend *const backends[] = {&bench_evproxy, &bench_libevent,
                                                       &bench_libuv};
#define N_BACKENDS ((int)(sizeof(backends) / sizeof(backends[0])))

static uint64_t clock_ns(clockid_t id)
{
        struct timespec ts;

        clock_gettime(id, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct bench_time bench_time_now(void)
{
        return (struct bench_time){.wall_ns = clock_ns(CLOCK_MONOTONIC),
                                   .cpu_ns = clock_ns(CLOCK_PROCESS_CPUTIME_ID)};
}

struct bench_time bench_time_since(struct bench_time start)
{
        struct bench_time now = bench_time_now();

        return (struct bench_time){.wall_ns = now.wall_ns - start.wall_ns,
                                   .cpu_ns = now.cpu_ns - start.cpu_ns};
}

void ring_close(struct ring *r)
{
        if (!r->fds)
                return;
        for (int i = 0; i < r->n; i++) {
                if (r->fds[i][0] >= 0)
                        close(r->fds[i][0]);
                if (r->fds[i][1] >= 0)
                        close(r->fds[i][1]);
        }
        free(r->fds);
        r->fds = NULL;
}

/* Put the tokens on evenly spaced nodes, before any backend registers the read ends: epoll
 * reports data already queued at registration, so the first turn finds them. */
static int ring_inject(struct ring *r)
{
        for (int t = 0; t < r->tokens; t++) {
                int node = (int)((int64_t)t * r->n / r->tokens);

                if (write(r->fds[node][1], "x", 1) != 1)
                        return -errno;
        }
        return 0;
}

int ring_open(struct ring *r, int n, int tokens, uint64_t target)
{
        int err;

        *r = (struct ring){.n = n, .tokens = tokens, .target = target};
        r->fds = malloc((size_t)n * sizeof(*r->fds));
        if (!r->fds)
                return -ENOMEM;
        for (int i = 0; i < n; i++)
                r->fds[i][0] = r->fds[i][1] = -1;
        for (int i = 0; i < n; i++) {
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, r->fds[i]) ==
                    -1) {
                        err = -errno;
                        ring_close(r);
                        return err;
                }
        }
        err = ring_inject(r);
        if (err < 0)
                ring_close(r);
        return err;
}

/* Read node i until EAGAIN and forward every byte to node i+1 in one write. */
void ring_on_readable(struct ring *r, int i)
{
        char buf[RING_MAX_TOKENS];
        size_t got = 0;

        while (got < sizeof(buf)) {
                ssize_t k = read(r->fds[i][0], buf + got, sizeof(buf) - got);

                if (k > 0) {
                        got += (size_t)k;
                        continue;
                }
                if (k == 0) {
                        r->err = -EPIPE;
                        return;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        r->err = -errno;
                break;
        }
        if (got == 0) {
                r->empty++;
                return;
        }
        if (write(r->fds[(i + 1) % r->n][1], buf, got) != (ssize_t)got) {
                r->err = -EIO;
                return;
        }
        r->hops += got;
        if (++r->events >= r->target)
                r->done = true;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return (x > y) - (x < y);
}

static double median(double *v, int n)
{
        qsort(v, (size_t)n, sizeof(*v), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* At most one token per two nodes: a token written into a node that still holds one would be
 * read together with it, and the two would travel as one from then on. */
static int ring_tokens(const struct options *o, int n)
{
        return n / 2 < o->max_tokens ? n / 2 : o->max_tokens;
}

/* One repetition of one backend on a fresh ring. */
static int run_once(const struct bench_backend *b, int n, int tokens, uint64_t events,
                    struct cell *c)
{
        struct ring r;
        struct bench_time elapsed = {0};
        int err = ring_open(&r, n, tokens, events);

        if (err < 0)
                return err;
        err = b->run(&r, &elapsed);
        if (err == 0 && r.hops < r.events)
                err = -EPROTO;
        if (err == 0) {
                c->ns_per_event = (double)elapsed.wall_ns / (double)r.events;
                c->cpu_ns_per_event = (double)elapsed.cpu_ns / (double)r.events;
                c->empty_share = (double)r.empty / (double)r.events;
                c->hops_per_event = (double)r.hops / (double)r.events;
        }
        ring_close(&r);
        return err;
}

/* Repetitions interleave the backends and rotate which goes first, so drift from other load
 * and any first-run effect spread over all three. */
static int run_size(const struct options *o, int n, struct cell cells[N_BACKENDS])
{
        struct cell runs[N_BACKENDS][MAX_REPS] = {0};
        double v[MAX_REPS];
        int tokens = ring_tokens(o, n);

        for (int rep = 0; rep < o->reps; rep++) {
                for (int k = 0; k < N_BACKENDS; k++) {
                        int b = (rep + k) % N_BACKENDS, err;

                        if (o->only >= 0 && b != o->only)
                                continue;
                        err = run_once(backends[b], n, tokens, o->events, &runs[b][rep]);
                        if (err < 0) {
                                fprintf(stderr, "driver_bench: %s, N=%d: %s\n", backends[b]->name,
                                        n, strerror(-err));
                                return err;
                        }
                }
        }
        for (int b = 0; b < N_BACKENDS; b++) {
                for (int rep = 0; rep < o->reps; rep++)
                        v[rep] = runs[b][rep].ns_per_event;
                cells[b].ns_per_event = median(v, o->reps);
                for (int rep = 0; rep < o->reps; rep++)
                        v[rep] = runs[b][rep].cpu_ns_per_event;
                cells[b].cpu_ns_per_event = median(v, o->reps);
                for (int rep = 0; rep < o->reps; rep++)
                        v[rep] = runs[b][rep].empty_share;
                cells[b].empty_share = median(v, o->reps);
                for (int rep = 0; rep < o->reps; rep++)
                        v[rep] = runs[b][rep].hops_per_event;
                cells[b].hops_per_event = median(v, o->reps);
        }
        return 0;
}

/* Raise the soft fd limit to the hard one; return how many nodes fit (two fds each). */
static int max_nodes(rlim_t *limit)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
                return -errno;
        if (rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
                        getrlimit(RLIMIT_NOFILE, &rl);
        }
        *limit = rl.rlim_cur;
        if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 2u * 1000000u)
                return 1000000;
        return rl.rlim_cur > FD_RESERVE ? (int)((rl.rlim_cur - FD_RESERVE) / 2) : 0;
}

static void print_header(const struct options *o)
{
        printf(
            "driver_bench: ring of N AF_UNIX socketpairs, min(N/2, %d) one-byte tokens in flight;"
            "\n  event = one readiness callback that read >= 1 byte (read until EAGAIN, one "
            "write on);\n  %llu events per run, median of %d runs, backends interleaved; "
            "%ld CPUs online.\n",
            o->max_tokens, (unsigned long long)o->events, o->reps, sysconf(_SC_NPROCESSORS_ONLN));
        printf("  libevent %s, libuv %s (uv_poll, level-triggered), evproxy driver "
               "(edge-triggered).\n",
               bench_libevent_version(), bench_libuv_version());
}

static void print_table_header(const char *title)
{
        printf("\n%s\n", title);
        printf("%7s %6s | %12s %8s | %13s %8s | %12s %8s | %10s %9s\n", "N", "tokens",
               "evproxy ev/s", "ns/ev", "libevent ev/s", "ns/ev", "libuv ev/s", "ns/ev",
               "evp/levent", "evp/libuv");
}

static double cell_ns(const struct cell *c, bool cpu)
{
        return cpu ? c->cpu_ns_per_event : c->ns_per_event;
}

static void print_row(int n, int tokens, const struct cell c[N_BACKENDS], bool cpu)
{
        double evp = cell_ns(&c[0], cpu);

        printf("%7d %6d |", n, tokens);
        for (int b = 0; b < N_BACKENDS; b++) {
                double ns = cell_ns(&c[b], cpu);

                if (ns > 0)
                        printf(" %*.0f %8.1f |", b == 1 ? 13 : 12, 1e9 / ns, ns);
                else
                        printf(" %*s %8s |", b == 1 ? 13 : 12, "-", "-");
        }
        /* events/s ratio: > 1 means evproxy is faster */
        for (int b = 1; b < N_BACKENDS; b++) {
                double ns = cell_ns(&c[b], cpu);

                if (evp > 0 && ns > 0)
                        printf(" %*.2f", b == 1 ? 10 : 9, ns / evp);
                else
                        printf(" %*s", b == 1 ? 10 : 9, "-");
        }
        printf("\n");
        fflush(stdout);
}

/* The work per event is only comparable if no backend had many empty callbacks (a read for
 * nothing) or merged tokens (several hops in one read); say so if one did. */
static void print_notes(const struct cell c[N_BACKENDS])
{
        bool any = false;

        for (int b = 0; b < N_BACKENDS; b++)
                any |= c[b].empty_share > 0.01 || c[b].hops_per_event > 1.01;
        if (!any)
                return;
        printf("%15s   per event, empty callbacks / hops:", "");
        for (int b = 0; b < N_BACKENDS; b++)
                printf(" %s %.3f / %.3f", backends[b]->name, c[b].empty_share, c[b].hops_per_event);
        printf("\n");
}

static int parse_sizes(struct options *o, char *list)
{
        o->n_sizes = 0;
        for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
                if (o->n_sizes == MAX_SIZES || atoi(tok) < 2)
                        return -EINVAL;
                o->sizes[o->n_sizes++] = atoi(tok);
        }
        return o->n_sizes ? 0 : -EINVAL;
}

static void usage(FILE *f)
{
        fprintf(f,
                "usage: driver_bench [-n N,N,...] [-e events] [-r reps] [-t max_tokens]\n"
                "                    [-b evproxy|libevent|libuv (run only that one)]\n"
                "  defaults: -n 10,1000,10000 -e %d -r %d -t %d\n",
                DEFAULT_EVENTS, DEFAULT_REPS, DEFAULT_TOKENS);
}

static int parse_backend(struct options *o, const char *name)
{
        for (int b = 0; b < N_BACKENDS; b++) {
                if (strcmp(backends[b]->name, name) == 0) {
                        o->only = b;
                        return 0;
                }
        }
        return -EINVAL;
}

static int parse_options(struct options *o, int argc, char **argv)
{
        char sizes[] = "10,1000,10000";
        int c;

        *o = (struct options){.events = DEFAULT_EVENTS,
                              .reps = DEFAULT_REPS,
                              .max_tokens = DEFAULT_TOKENS,
                              .only = -1};
        parse_sizes(o, sizes);
        while ((c = getopt(argc, argv, "n:e:r:t:b:h")) != -1) {
                if (c == 'n' && parse_sizes(o, optarg) < 0)
                        return -EINVAL;
                else if (c == 'e')
                        o->events = strtoull(optarg, NULL, 10);
                else if (c == 'r')
                        o->reps = atoi(optarg);
                else if (c == 'b' && parse_backend(o, optarg) < 0)
                        return -EINVAL;
                else if (c == 't')
                        o->max_tokens = atoi(optarg);
                else if (c == 'h' || c == '?')
                        return -EINVAL;
        }
        if (o->events == 0 || o->reps < 1 || o->reps > MAX_REPS || o->max_tokens < 1 ||
            o->max_tokens > RING_MAX_TOKENS)
                return -EINVAL;
        return 0;
}

int main(int argc, char **argv)
{
        static struct cell cells[MAX_SIZES][N_BACKENDS];
        struct options o;
        rlim_t limit = 0;
        int cap;

        if (parse_options(&o, argc, argv) < 0) {
                usage(stderr);
                return 2;
        }
        cap = max_nodes(&limit);
        if (cap < 2) {
                fprintf(stderr, "driver_bench: fd limit too low\n");
                return 1;
        }
        print_header(&o);
        print_table_header("Wall time (CLOCK_MONOTONIC):");
        for (int s = 0; s < o.n_sizes; s++) {
                int n = o.sizes[s] < cap ? o.sizes[s] : cap;

                if (n != o.sizes[s])
                        printf("  note: N=%d capped to %d: the fd limit is %llu (hard), N "
                               "socketpairs need 2N fds + %d spare\n",
                               o.sizes[s], n, (unsigned long long)limit, FD_RESERVE);
                o.sizes[s] = n;
                if (run_size(&o, n, cells[s]) < 0)
                        return 1;
                print_row(n, ring_tokens(&o, n), cells[s], false);
                print_notes(cells[s]);
        }
        print_table_header(
            "Process CPU time (user + system; leaves out time other processes ran):");
        for (int s = 0; s < o.n_sizes; s++)
                print_row(o.sizes[s], ring_tokens(&o, o.sizes[s]), cells[s], true);
        printf("\nevp/x = x ns/event / evproxy ns/event = evproxy events/s / x events/s "
               "(> 1: evproxy faster).\nShared 2-CPU machine: figures are noisy; compare "
               "ratios, not absolutes.\n");
        return 0;
}
