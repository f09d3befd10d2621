/* Driver micro-benchmark, shared part: a ring of N nonblocking AF_UNIX socketpairs around which
 * a few one-byte tokens travel. Every backend (evproxy, libevent, libuv) calls ring_on_readable()
 * from its readiness callback, so all three do exactly the same syscalls per event. */
#ifndef EVPROXY_DRIVER_BENCH_H
#define EVPROXY_DRIVER_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#define RING_MAX_TOKENS 256

struct ring {
        int n;           /* nodes (socketpairs) */
        int tokens;      /* one-byte tokens in flight */
        int (*fds)[2];   /* fds[i][0]: read end of node i (registered); fds[i][1]: its write end */
        uint64_t target; /* stop once this many events were handled */
        uint64_t events; /* callbacks that moved at least one byte */
        uint64_t hops;   /* bytes moved from one node to the next */
        uint64_t empty;  /* callbacks that found nothing to read */
        int err;         /* first I/O error seen in a callback, as -errno */
        bool done;
};

/* Wall time (CLOCK_MONOTONIC) and this process's CPU time (user + system): on a shared machine
 * the second leaves out the time other processes held the CPU. */
struct bench_time {
        uint64_t wall_ns;
        uint64_t cpu_ns;
};

struct bench_backend {
        const char *name;
        /* Register every read end, start the clocks, loop until r->done, stop the clocks. */
        int (*run)(struct ring *r, struct bench_time *elapsed);
};

/* driver_bench.c */
int ring_open(struct ring *r, int n, int tokens, uint64_t target);
void ring_close(struct ring *r);
void ring_on_readable(struct ring *r, int i);
struct bench_time bench_time_now(void);
struct bench_time bench_time_since(struct bench_time start);

/* driver_bench_evproxy.c, driver_bench_libevent.c, driver_bench_libuv.c */
extern const struct bench_backend bench_evproxy;
extern const struct bench_backend bench_libevent;
extern const struct bench_backend bench_libuv;
const char *bench_libevent_version(void);
const char *bench_libuv_version(void);

#endif
