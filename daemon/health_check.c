/* Active health checks: one probe per upstream server of each route with a check interval.
 *   IDLE --interval--> CONNECTING --connected / refused / connect_timeout--> IDLE
 * Each probe has one timer (the next check, then the connect deadline) and, while connecting,
 * one registration whose waker reads the result; both run on the main thread inside
 * evio_driver_turn(), never block, and feed health_report_check(). The checker holds a reference to
 * the generation it checks, so its routes outlive any reload until health_check_sync(). */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <evproxy/driver.h>

#include "daemon.h"
#include "gen.h"
#include "health.h"
#include "health_check.h"
#include "log.h"
#include "upstream.h"

struct probe {
        struct health_checker *hc;
        struct route *r;
        unsigned idx;
        int fd;
        struct evio_scheduled_io *io;
        struct evio_timer timer;
};

struct health_checker {
        struct daemon *d;
        struct gen *g;
        struct probe *probes;
        size_t n;
};

static uint64_t ms_of(double s)
{
        return s < 0.001 ? 1 : (uint64_t)(s * 1000.0 + 0.5);
}

static void probe_end_connect(struct probe *p)
{
        struct evio_driver *drv = p->hc->d->drv;

        evio_timer_cancel(drv, &p->timer);
        if (p->io) {
                evio_handle_deregister(evio_driver_handle(drv), p->io);
                p->io = NULL;
        }
        if (p->fd >= 0) {
                close(p->fd);
                p->fd = -1;
        }
}

static void probe_done(struct probe *p, int result)
{
        const struct cfg_addr *a = &p->r->cfg->upstreams[p->idx];
        uint64_t now = evio_now_ms();

        probe_end_connect(p);
        if (result < 0)
                log_debug_errno(result, "route %s: health check of %s", p->r->cfg->name, a->text);
        if (!upstream_error_is_local(result))
                health_report_check(p->r, p->idx, result, now);
        if (evio_timer_arm(p->hc->d->drv, &p->timer,
                           now + ms_of(p->r->cfg->health.check_interval)) < 0)
                log_warning("route %s: health check of %s stopped: out of memory", p->r->cfg->name,
                            a->text);
}

static void probe_wake(void *arg, uint32_t ready)
{
        struct probe *p = arg;

        if (p->fd >= 0)
                probe_done(p, upstream_connect_result(p->fd));
}

static void probe_timer(struct evio_timer *t, void *arg)
{
        struct probe *p = arg;
        const struct cfg_route *rc = p->r->cfg;
        const struct evio_waker wk = {.fn = probe_wake, .arg = p};
        double wait = rc->connect_timeout < rc->health.check_interval ? rc->connect_timeout
                                                                      : rc->health.check_interval;
        int r;

        if (p->fd >= 0) { /* connect deadline */
                probe_done(p, -ETIMEDOUT);
                return;
        }
        r = upstream_connect(&rc->upstreams[p->idx], &p->fd);
        if (r == -EINPROGRESS) {
                r = evio_handle_register(evio_driver_handle(p->hc->d->drv), p->fd,
                                         EVIO_INTEREST_WRITABLE, &wk, &p->io);
                if (r == 0)
                        r = evio_timer_arm(p->hc->d->drv, &p->timer, evio_now_ms() + ms_of(wait));
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
        for (size_t i = 0; i < hc->n; i++)
                probe_end_connect(&hc->probes[i]);
        free(hc->probes);
        gen_unref(hc->g);
        free(hc);
        d->checker = NULL;
}

static size_t count_probes(const struct gen *g)
{
        size_t n = 0;

        for (size_t i = 0; i < g->n_routes; i++) {
                if (g->routes[i].cfg->health.check_interval > 0)
                        n += g->routes[i].cfg->n_upstreams;
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

                if (r->cfg->health.check_interval <= 0)
                        continue;
                for (unsigned j = 0; j < r->cfg->n_upstreams; j++, k++) {
                        struct probe *p = &hc->probes[k];

                        *p = (struct probe){.hc = hc, .r = r, .idx = j, .fd = -1};
                        evio_timer_init(&p->timer, probe_timer, p);
                }
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
        d->checker = hc;
        init_probes(hc);
        for (size_t k = 0; k < n; k++) {
                struct probe *p = &hc->probes[k];
                uint64_t every = ms_of(p->r->cfg->health.check_interval);

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
        if (d->checker && d->checker->g == d->gen)
                return;
        health_check_stop(d);
        health_check_start(d);
}
