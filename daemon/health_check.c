/* Active health checks: one probe per upstream server of each route with a check interval.
 *   IDLE --interval--> CONNECTING --connected / refused / connect_timeout--> IDLE
 * Each probe has one timer (the next check, then the connect deadline) and, while connecting,
 * one registration whose waker reads the result; both run on the main thread inside
 * evio_driver_turn(), never block, and feed health_report_check(). The checker holds a reference to
 * the generation it checks, so its routes outlive any reload until health_check_sync(), and
 * one to each route's server set, so a name's new answer (d->sets_serial) starts it afresh. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include <evproxy/driver.h>
#include <evproxy/registration.h>

#include "daemon.h"
#include "gen.h"
#include "health.h"
#include "health_check.h"
#include "log.h"
#include "server_set.h"
#include "sock.h"
#include "upstream.h"

struct probe {
        struct health_checker *hc;
        struct route *r;
        struct server_set *set; /* the route's servers when the checker started (a reference) */
        unsigned idx;
        struct evio_registration reg; /* the connecting socket, between two checks: none */
        struct evio_timer timer;
};

struct health_checker {
        struct daemon *d;
        struct gen *g;
        struct probe *probes;
        size_t n;
        unsigned sets_serial; /* d->sets_serial it was built for */
};

static void probe_end_connect(struct probe *p)
{
        struct evio_driver *drv = p->hc->d->drv;

        evio_timer_cancel(drv, &p->timer);
        evio_reg_close(&p->reg);
}

static void probe_done(struct probe *p, int result)
{
        const struct cfg_addr *a = &p->set->e[p->idx].addr;
        uint64_t now = evio_now_ms();

        probe_end_connect(p);
        if (result < 0)
                log_debug_errno(result, "route %s: health check of %s", p->r->cfg->name, a->text);
        if (!upstream_error_is_local(result))
                health_report_check(p->r, &p->set->e[p->idx], result, now);
        if (evio_timer_arm(p->hc->d->drv, &p->timer, now + p->r->cfg->health.check_interval_ms) < 0)
                log_warning("route %s: health check of %s stopped: out of memory", p->r->cfg->name,
                            a->text);
}

static void probe_wake(void *arg, uint32_t ready)
{
        struct probe *p = arg;

        if (p->reg.fd >= 0)
                probe_done(p, sock_connect_result(p->reg.fd));
}

static void probe_timer(struct evio_timer *t, void *arg)
{
        struct probe *p = arg;
        const struct cfg_route *rc = p->r->cfg;
        const struct evio_waker wk = {.fn = probe_wake, .arg = p};
        uint64_t wait = rc->connect_timeout_ms < rc->health.check_interval_ms
                            ? rc->connect_timeout_ms
                            : rc->health.check_interval_ms;
        int r, fd;

        if (p->reg.fd >= 0) { /* connect deadline */
                probe_done(p, -ETIMEDOUT);
                return;
        }
        r = sock_connect(&p->set->e[p->idx].addr, 0, &fd); /* no data: no TCP_NODELAY */
        evio_reg_init(&p->reg, evio_driver_handle(p->hc->d->drv), fd);
        if (r == -EINPROGRESS) {
                r = evio_reg_register(&p->reg, EVIO_INTEREST_WRITABLE, &wk);
                if (r == 0)
                        r = evio_timer_arm(p->hc->d->drv, &p->timer, evio_now_ms() + wait);
                if (r == 0)
                        return;
        }
        probe_done(p, r);
}

void health_check_stop(struct daemon *d)
{
        struct health_checker *hc = d->checker;

        if (!hc)
                return;
        for (size_t i = 0; i < hc->n; i++) {
                probe_end_connect(&hc->probes[i]);
                server_set_unref(hc->probes[i].set);
        }
        free(hc->probes);
        gen_unref(hc->g);
        free(hc);
        d->checker = NULL;
}

static size_t count_probes(struct gen *g)
{
        size_t n = 0;

        for (size_t i = 0; i < g->n_routes; i++) {
                struct server_set *set;

                if (g->routes[i].cfg->health.check_interval_ms == 0)
                        continue;
                set = route_set_get(&g->routes[i]);
                n += set->n;
                server_set_unref(set);
        }
        return n;
}

/* Every probe of hc, built before any is armed, so health_check_stop() finds each one whole
 * (a calloc'ed probe has no checker and fd 0) wherever arming fails. */
static void init_probes(struct health_checker *hc)
{
        size_t k = 0;

        for (size_t i = 0; i < hc->g->n_routes; i++) {
                struct route *r = &hc->g->routes[i];
                struct server_set *set;

                if (r->cfg->health.check_interval_ms == 0)
                        continue;
                set = route_set_get(r); /* the same as count_probes() saw: main thread */
                for (unsigned j = 0; j < set->n && k < hc->n; j++, k++) {
                        struct probe *p = &hc->probes[k];

                        *p = (struct probe){.hc = hc,
                                            .r = r,
                                            .set = server_set_ref(set),
                                            .idx = j,
                                            .reg = EVIO_REGISTRATION_INIT};
                        evio_timer_init(&p->timer, probe_timer, p);
                }
                server_set_unref(set);
        }
        assert(k == hc->n);
}

int health_check_start(struct daemon *d)
{
        struct health_checker *hc;
        size_t n = d->gen ? count_probes(d->gen) : 0;
        uint64_t now = evio_now_ms();

        if (!d->gen)
                return 0;
        /* Allocated even with no probe, so health_check_sync() is a pointer compare. */
        hc = calloc(1, sizeof(*hc));
        if (!hc || !(hc->probes = calloc(n ? n : 1, sizeof(*hc->probes)))) {
                free(hc);
                return log_error_errno(-ENOMEM, "starting health checks");
        }
        hc->d = d;
        hc->g = gen_ref(d->gen);
        hc->n = n;
        hc->sets_serial = d->sets_serial;
        d->checker = hc;
        init_probes(hc);
        for (size_t k = 0; k < n; k++) {
                struct probe *p = &hc->probes[k];
                uint64_t every = p->r->cfg->health.check_interval_ms;

                /* Spread the first round over one interval. */
                if (evio_timer_arm(d->drv, &p->timer, now + every * (k + 1) / (n + 1)) < 0) {
                        health_check_stop(d);
                        return log_error_errno(-ENOMEM, "starting health checks");
                }
        }
        return 0;
}

void health_check_sync(struct daemon *d)
{
        if (d->checker && d->checker->g == d->gen && d->checker->sets_serial == d->sets_serial)
                return;
        health_check_stop(d);
        health_check_start(d);
}
