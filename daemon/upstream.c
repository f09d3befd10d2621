/* Upstream choice and the non-blocking connect. The balancing policy picks the first server of a
 * connection's walk (round-robin: a shared cursor; least-conn: fewest active, ties broken from
 * the cursor; random: two random choices, the less loaded wins); on failure the walk goes on in
 * ring order, skipping servers that are down (health.c) until nothing else is left. TCP
 * upstreams get TCP_NODELAY: the proxy must not add Nagle delays on top of the client's own.
 * The connect itself is sock.c's, shared with health checks. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include <evproxy/timer.h>

#include "admin_proto.h"
#include "health.h"
#include "route.h"
#include "sock.h"
#include "upstream.h"

static _Thread_local uint64_t rng_state;

uint32_t upstream_random(void)
{
        uint64_t x = rng_state;

        if (x == 0) {
                if (getrandom(&x, sizeof(x), GRND_NONBLOCK) != sizeof(x))
                        x = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&rng_state;
                x |= 1;
        }
        /* xorshift64*: plenty for spreading load, and no lock. */
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        rng_state = x;
        return (uint32_t)((x * UINT64_C(2685821657736338717)) >> 32);
}

static bool upstream_admin_ready(const struct route *r, unsigned i)
{
        return atomic_load_explicit(&r->servers[i]->admin, memory_order_relaxed) ==
               ADMIN_STATE_READY;
}

static unsigned load(const struct route *r, unsigned i)
{
        return atomic_load_explicit(&r->servers[i]->active, memory_order_relaxed);
}

static unsigned pick_least_conn(struct route *r, unsigned n, uint64_t now)
{
        unsigned from = atomic_fetch_add_explicit(&r->st->rr_next, 1, memory_order_relaxed) % n;
        unsigned best = from, best_load = ~0u;

        for (unsigned k = 0; k < n; k++) {
                unsigned i = (from + k) % n, l;

                if (!health_available(r, i, now))
                        continue;
                l = load(r, i);
                if (l < best_load) {
                        best = i;
                        best_load = l;
                }
        }
        return best;
}

static unsigned pick_random(const struct route *r, unsigned n, uint64_t now)
{
        unsigned a = upstream_random() % n, b;
        bool ok_a, ok_b;

        if (n == 1)
                return 0;
        b = upstream_random() % (n - 1);
        if (b >= a)
                b++;
        ok_a = health_available(r, a, now);
        ok_b = health_available(r, b, now);
        if (ok_a != ok_b)
                return ok_a ? a : b;
        return load(r, b) < load(r, a) ? b : a;
}

void upstream_begin(struct route *r, struct upstream_pick *p)
{
        unsigned n = (unsigned)r->cfg->n_upstreams;
        uint64_t now = evio_now_ms();

        *p = (struct upstream_pick){.current = -1};
        if (n == 0) {
                p->pass = 2;
                return;
        }
        switch (r->cfg->balance) {
        case CFG_BALANCE_LEAST_CONN:
                p->start = pick_least_conn(r, n, now);
                break;
        case CFG_BALANCE_RANDOM:
                p->start = pick_random(r, n, now);
                break;
        default:
                p->start = atomic_fetch_add_explicit(&r->st->rr_next, 1, memory_order_relaxed) % n;
                break;
        }
}

static void hold(struct route *r, struct upstream_pick *p, unsigned i, bool probe)
{
        p->current = (int)i;
        p->tried++;
        p->probe = probe;
        p->held = true;
        atomic_fetch_add_explicit(&r->servers[i]->active, 1, memory_order_relaxed);
}

static void mark_skipped(struct upstream_pick *p, unsigned i, unsigned n)
{
        if (i < 64) {
                p->skipped |= UINT64_C(1) << i;
                return;
        }
        if (!p->skipped_more && !p->more_lost) {
                p->skipped_more = calloc((n - 64 + 63) / 64, sizeof(uint64_t));
                p->more_lost = !p->skipped_more;
        }
        if (p->skipped_more)
                p->skipped_more[(i - 64) / 64] |= UINT64_C(1) << ((i - 64) % 64);
}

static bool was_skipped(const struct upstream_pick *p, unsigned i)
{
        if (i < 64)
                return p->skipped & (UINT64_C(1) << i);
        if (p->more_lost)
                return true;
        return p->skipped_more &&
               (p->skipped_more[(i - 64) / 64] & (UINT64_C(1) << ((i - 64) % 64)));
}

const struct cfg_addr *upstream_next(struct route *r, struct upstream_pick *p)
{
        unsigned n = (unsigned)r->cfg->n_upstreams;
        uint64_t now = evio_now_ms();

        upstream_release(r, p);
        while (p->pass < 2) {
                for (; p->step < n; p->step++) {
                        unsigned i = (p->start + p->step) % n;
                        enum health_claim hc;

                        if (p->pass == 1) {
                                if (was_skipped(p, i)) {
                                        p->step++;
                                        hold(r, p, i, false);
                                        return &r->cfg->upstreams[i].addr;
                                }
                                continue;
                        }
                        if (!upstream_admin_ready(r, i))
                                continue; /* drain, maint: not even as a last resort */
                        hc = health_claim(r, i, now);
                        if (hc == HEALTH_SKIP) {
                                mark_skipped(p, i, n);
                                continue;
                        }
                        p->step++;
                        hold(r, p, i, hc == HEALTH_PROBE);
                        return &r->cfg->upstreams[i].addr;
                }
                p->pass++;
                p->step = 0;
        }
        return NULL;
}

void upstream_report(struct route *r, struct upstream_pick *p, int result)
{
        unsigned i;

        if (p->current < 0)
                return;
        i = (unsigned)p->current;
        if (result < 0) {
                atomic_fetch_add_explicit(&r->st->connect_failures, 1, memory_order_relaxed);
                atomic_fetch_add_explicit(&r->servers[i]->connect_failures, 1,
                                          memory_order_relaxed);
                upstream_release(r, p);
                if (upstream_error_is_local(result))
                        return; /* our shortage says nothing about the server */
                atomic_store_explicit(&r->servers[i]->last_error_at, (uint64_t)time(NULL),
                                      memory_order_relaxed);
                atomic_store_explicit(&r->servers[i]->last_error, result, memory_order_relaxed);
        } else {
                atomic_fetch_add_explicit(&r->servers[i]->connects, 1, memory_order_relaxed);
        }
        health_report(r, i, result, p->probe, evio_now_ms());
}

void upstream_release(struct route *r, struct upstream_pick *p)
{
        if (!p->held)
                return;
        p->held = false;
        atomic_fetch_sub_explicit(&r->servers[p->current]->active, 1, memory_order_relaxed);
}

void upstream_end(struct route *r, struct upstream_pick *p)
{
        upstream_release(r, p);
        free(p->skipped_more);
        p->skipped_more = NULL;
}

bool upstream_error_is_local(int r)
{
        return r == -EMFILE || r == -ENFILE || r == -ENOMEM || r == -ENOBUFS;
}

int upstream_connect(const struct cfg_addr *a, int *fd_out)
{
        return sock_connect(a, SOCKF_NODELAY, fd_out);
}

int upstream_connect_result(int fd)
{
        return sock_connect_result(fd);
}
