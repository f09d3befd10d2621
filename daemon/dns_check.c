/* evproxyd -t and names (dns.h): every named upstream is looked up once, through the same
 * resolver and settings the daemon would use, on a private driver, for at most a few seconds.
 * A name without an address is a warning, never a failure: the daemon starts such a route
 * without servers and fills it in when DNS answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <evproxy/driver.h>
#include <evproxy/timer.h>

#include "dns.h"
#include "log.h"
#include "resolver.h"

#define CHECK_MIN_MS 2000
#define CHECK_MAX_MS 10000

struct check {
        const struct cfg_route *route;
        const struct cfg_upstream *u;
        struct resolver_watch *w;
        bool done;
        size_t addresses;
        enum resolver_status status;
        char detail[160];
};

static void on_check(void *arg, const struct resolver_event *ev)
{
        struct check *c = arg;

        c->done = true;
        c->status = ev->status;
        c->addresses = ev->set ? ev->set->len : 0;
        snprintf(c->detail, sizeof(c->detail), "%s", ev->detail ? ev->detail : "");
}

static size_t count_names(const struct cfg *cfg)
{
        size_t n = 0;

        for (size_t i = 0; i < cfg->n_routes; i++)
                n += cfg->routes[i].n_named;
        return n;
}

static uint64_t budget_ms(const struct cfg_resolver *s)
{
        uint64_t ms = (s->timeout_ms ? s->timeout_ms : 2000) * (s->attempts ? s->attempts : 2);

        ms += 500;
        return ms < CHECK_MIN_MS ? CHECK_MIN_MS : ms > CHECK_MAX_MS ? CHECK_MAX_MS : ms;
}

static void report(const struct cfg *cfg, const struct check *c)
{
        if (c->done && c->addresses)
                log_info("%s:%d: route %s: %s resolves to %zu addresses", cfg->path, c->u->line,
                         c->route->name, c->u->addr.text, c->addresses);
        else if (c->done)
                log_warning("%s:%d: route %s: %s does not resolve now (%s%s%s); the route starts "
                            "without these servers and adds them when DNS answers",
                            cfg->path, c->u->line, c->route->name, c->u->addr.text,
                            resolver_status_name(c->status), c->detail[0] ? ": " : "", c->detail);
        else
                log_warning("%s:%d: route %s: %s: no DNS answer within the check's time; the "
                            "route starts without these servers and adds them when DNS answers",
                            cfg->path, c->u->line, c->route->name, c->u->addr.text);
}

static void watch_all(const struct cfg *cfg, struct resolver *res, struct check *checks)
{
        size_t k = 0;

        for (size_t i = 0; i < cfg->n_routes; i++) {
                const struct cfg_route *r = &cfg->routes[i];
                enum resolver_family fam = (enum resolver_family)r->dns.family;

                for (size_t j = 0; j < r->n_upstreams; j++) {
                        const struct cfg_upstream *u = &r->upstreams[j];
                        struct check *c = &checks[k];
                        int ret;

                        if (u->kind == CFG_UPSTREAM_ADDR)
                                continue;
                        *c = (struct check){.route = r, .u = u};
                        k++;
                        ret = u->kind == CFG_UPSTREAM_SRV
                                  ? resolver_watch_srv(res, u->host, fam, on_check, c, &c->w)
                                  : resolver_watch(res, u->host, u->port, fam, on_check, c, &c->w);
                        if (ret < 0) {
                                c->done = true;
                                c->status = RESOLVER_STATUS_ERROR;
                        }
                }
        }
}

static bool all_done(const struct check *checks, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (!checks[i].done)
                        return false;
        return true;
}

void dns_check_names(const struct cfg *cfg)
{
        size_t n = count_names(cfg);
        struct resolver_options o = {
            .resolv_conf = cfg->resolver.resolv_conf,
            .nameservers =
                cfg->resolver.n_nameservers ? (const char *const *)cfg->resolver.nameservers : NULL,
            .n_nameservers = cfg->resolver.n_nameservers,
            .timeout_ms = (unsigned)cfg->resolver.timeout_ms,
            .attempts = cfg->resolver.attempts,
        };
        struct evio_driver *drv = NULL;
        struct resolver *res = NULL;
        struct check *checks;
        uint64_t end;

        if (n == 0)
                return;
        checks = calloc(n, sizeof(*checks));
        if (!checks || evio_driver_new(&drv, NULL) < 0 || resolver_new(drv, &o, &res) < 0) {
                log_warning("%s: names not checked: the resolver could not start", cfg->path);
                goto out;
        }
        watch_all(cfg, res, checks);
        end = evio_now_ms() + budget_ms(&cfg->resolver);
        while (!all_done(checks, n) && evio_now_ms() < end)
                if (evio_driver_turn(drv, (int)(end - evio_now_ms())) < 0)
                        break;
        for (size_t i = 0; i < n; i++)
                if (checks[i].u) /* a name whose watch could not start has none */
                        report(cfg, &checks[i]);
out:
        resolver_free(res);
        evio_driver_free(drv);
        free(checks);
}
