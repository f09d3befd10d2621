/* Upstream choice and the non-blocking connect. The balancing policy picks the first server of a
 * connection's walk (round-robin: a shared cursor; least-conn: fewest active, ties broken from
 * the cursor; random: two random choices, the less loaded wins); on failure the walk goes on in
 * ring order, skipping servers that are down (health.c) until nothing else is left. TCP
 * upstreams get TCP_NODELAY: the proxy must not add Nagle delays on top of the client's own.
 * The connect itself is sock.c's, shared with health checks. */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include <evproxy/driver.h>
#include <evproxy/timer.h>

#include "admin_proto.h"
#include "health.h"
#include "log.h"
#include "route.h"
#include "server_set.h"
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

static struct upstream_server *server(const struct upstream_pick *p, unsigned i)
{
        assert(p->set && i < p->set->n);
        return p->set->e[i].srv;
}

static bool upstream_admin_ready(const struct upstream_pick *p, unsigned i)
{
        return atomic_load_explicit(&server(p, i)->admin, memory_order_relaxed) ==
               ADMIN_STATE_READY;
}

static unsigned load(const struct upstream_pick *p, unsigned i)
{
        return atomic_load_explicit(&server(p, i)->active, memory_order_relaxed);
}

const struct server_entry *upstream_current(const struct upstream_pick *p)
{
        return p->current >= 0 && p->set ? &p->set->e[p->current] : NULL;
}

static unsigned pick_least_conn(struct route *r, const struct upstream_pick *p, unsigned n,
                                uint64_t now)
{
        unsigned from = atomic_fetch_add_explicit(&r->st->rr_next, 1, memory_order_relaxed) % n;
        unsigned best = from, best_load = ~0u;

        for (unsigned k = 0; k < n; k++) {
                unsigned i = (from + k) % n, l;

                if (!health_available(&p->set->e[i], now))
                        continue;
                l = load(p, i);
                if (l < best_load) {
                        best = i;
                        best_load = l;
                }
        }
        return best;
}

static unsigned pick_random(const struct upstream_pick *p, unsigned n, uint64_t now)
{
        unsigned a = upstream_random() % n, b;
        bool ok_a, ok_b;

        if (n == 1)
                return 0;
        b = upstream_random() % (n - 1);
        if (b >= a)
                b++;
        ok_a = health_available(&p->set->e[a], now);
        ok_b = health_available(&p->set->e[b], now);
        if (ok_a != ok_b)
                return ok_a ? a : b;
        return load(p, b) < load(p, a) ? b : a;
}

void upstream_begin(struct route *r, struct upstream_pick *p)
{
        struct server_set *set = route_set_get(r);
        unsigned n = (unsigned)set->n;
        uint64_t now = evio_now_ms();

        *p = (struct upstream_pick){.current = -1, .set = set};
        if (n == 0) {
                p->pass = 2;
                return;
        }
        switch (r->cfg->balance) {
        case CFG_BALANCE_LEAST_CONN:
                p->start = pick_least_conn(r, p, n, now);
                break;
        case CFG_BALANCE_RANDOM:
                p->start = pick_random(p, n, now);
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
        atomic_fetch_add_explicit(&server(p, i)->active, 1, memory_order_relaxed);
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
        unsigned n = p->set ? (unsigned)p->set->n : 0;
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
                                        return &p->set->e[i].addr;
                                }
                                continue;
                        }
                        if (!upstream_admin_ready(p, i))
                                continue; /* drain, maint: not even as a last resort */
                        hc = health_claim(&p->set->e[i], now);
                        if (hc == HEALTH_SKIP) {
                                mark_skipped(p, i, n);
                                continue;
                        }
                        p->step++;
                        hold(r, p, i, hc == HEALTH_PROBE);
                        return &p->set->e[i].addr;
                }
                p->pass++;
                p->step = 0;
        }
        return NULL;
}

/* Every address of e's name failed `fails` connects in a row (at least one): ask the main
 * thread to look the name up again (dns.c; the resolver rate-limits it). */
static void maybe_ask_refresh(struct route *r, const struct upstream_pick *p,
                              const struct server_entry *e)
{
        const struct route_dns_poke *poke = atomic_load(&r->poke);
        unsigned need = r->cfg->health.fails ? r->cfg->health.fails : 1;

        if (!e->name[0] || !poke)
                return;
        for (size_t k = 0; k < p->set->n; k++) {
                const struct server_entry *o = &p->set->e[k];

                if (o->upstream == e->upstream &&
                    atomic_load_explicit(&o->srv->fails, memory_order_relaxed) < need)
                        return;
        }
        if (!atomic_exchange(&r->st->dns_refresh, true))
                evio_handle_post(poke->main, poke->task);
}

void upstream_report(struct route *r, struct upstream_pick *p, int result)
{
        const struct server_entry *e = upstream_current(p);
        struct upstream_server *s;

        if (!e)
                return;
        s = e->srv;
        if (result < 0) {
                atomic_fetch_add_explicit(&r->st->connect_failures, 1, memory_order_relaxed);
                atomic_fetch_add_explicit(&s->connect_failures, 1, memory_order_relaxed);
                upstream_release(r, p);
                if (upstream_error_is_local(result))
                        return; /* our shortage says nothing about the server */
                atomic_store_explicit(&s->last_error_at, (uint64_t)time(NULL),
                                      memory_order_relaxed);
                atomic_store_explicit(&s->last_error, result, memory_order_relaxed);
        } else {
                atomic_fetch_add_explicit(&s->connects, 1, memory_order_relaxed);
        }
        health_report(r, e, result, p->probe, evio_now_ms());
        if (result < 0)
                maybe_ask_refresh(r, p, e);
}

bool upstream_no_server(struct route *r, const struct upstream_pick *p, const char *client)
{
        char names[512] = "";
        size_t len = 0;

        if (!p->set || p->set->n > 0)
                return false;
        atomic_fetch_add_explicit(&r->st->no_server, 1, memory_order_relaxed);
        for (size_t i = 0; i < r->cfg->n_upstreams && len < sizeof(names); i++) {
                if (r->cfg->upstreams[i].kind == CFG_UPSTREAM_ADDR)
                        continue;
                len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s", len ? ", " : "",
                                        r->cfg->upstreams[i].addr.text);
        }
        log_warning("route %s: client %s: no server: %s %s no address (not resolved yet, or "
                    "gone from DNS)",
                    r->cfg->name, client, names, r->cfg->n_named > 1 ? "have" : "has");
        return true;
}

void upstream_adopt(struct route *r, struct upstream_pick *p, const char *text)
{
        struct server_set *set = route_set_get(r);
        long i = server_set_find_text(set, text);

        *p = (struct upstream_pick){.current = -1, .set = set, .pass = 2};
        if (i >= 0)
                hold(r, p, (unsigned)i, false);
}

void upstream_release(struct route *r, struct upstream_pick *p)
{
        if (!p->held)
                return;
        p->held = false;
        atomic_fetch_sub_explicit(&server(p, (unsigned)p->current)->active, 1,
                                  memory_order_relaxed);
}

void upstream_end(struct route *r, struct upstream_pick *p)
{
        upstream_release(r, p);
        free(p->skipped_more);
        p->skipped_more = NULL;
        server_set_unref(p->set);
        p->set = NULL;
        p->current = -1;
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
