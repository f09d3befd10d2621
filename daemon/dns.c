/* The daemon's names (dns.h). One struct dns_name per named upstream of each route of the
 * current generation, each with its resolver watch:
 *   watched --answer changed--> the route's set rebuilt and published (one log line)
 *   watched --lookups fail--> FAILING (one line; the set is kept, or emptied after the
 *             NXDOMAIN hold) --answer--> recovered (one line)
 *   reload: a name with the same route, text and family keeps its watch (looked up again at
 *           once); others are unwatched; new ones watched.
 * Everything here runs on the main thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "daemon.h"
#include "dns.h"
#include "gen.h"
#include "log.h"
#include "metrics.h"
#include "resolver.h"
#include "server_set.h"
#include "upstream.h"

struct dns_name {
        struct dns *dns;
        struct dns_name *next;
        char route[CFG_ROUTE_NAME_MAX + 1];
        char text[128]; /* the upstream as written */
        enum cfg_family family;
        struct route *r;   /* the current generation's route */
        unsigned upstream; /* index in r->cfg->upstreams */
        struct resolver_watch *w;
        bool claimed; /* dns_reload: kept for the new generation */
};

struct dns {
        struct daemon *d;
        struct resolver *res;
        struct cfg_resolver settings; /* copies of the strings, to notice a change on reload */
        struct dns_name *names;
        struct evio_driver_task refresh_task;
        struct route_dns_poke poke;
};

static void settings_free(struct cfg_resolver *s)
{
        for (size_t i = 0; i < s->n_nameservers; i++)
                free(s->nameservers[i]);
        free(s->nameservers);
        free(s->resolv_conf);
        memset(s, 0, sizeof(*s));
}

static int settings_copy(struct cfg_resolver *to, const struct cfg_resolver *from)
{
        memset(to, 0, sizeof(*to));
        *to = (struct cfg_resolver){
            .timeout_ms = from->timeout_ms, .attempts = from->attempts, .policy = from->policy};
        to->nameservers = calloc(from->n_nameservers + 1, sizeof(char *));
        if (!to->nameservers)
                return -ENOMEM;
        for (size_t i = 0; i < from->n_nameservers; i++) {
                if (!(to->nameservers[i] = strdup(from->nameservers[i]))) {
                        settings_free(to);
                        return -ENOMEM;
                }
                to->n_nameservers = i + 1;
        }
        if (from->resolv_conf && !(to->resolv_conf = strdup(from->resolv_conf))) {
                settings_free(to);
                return -ENOMEM;
        }
        return 0;
}

static bool settings_same(const struct cfg_resolver *a, const struct cfg_resolver *b)
{
        if (a->timeout_ms != b->timeout_ms || a->attempts != b->attempts ||
            a->n_nameservers != b->n_nameservers || !a->resolv_conf != !b->resolv_conf ||
            (a->resolv_conf && strcmp(a->resolv_conf, b->resolv_conf) != 0))
                return false;
        for (size_t i = 0; i < a->n_nameservers; i++)
                if (strcmp(a->nameservers[i], b->nameservers[i]) != 0)
                        return false;
        return true;
}

static uint32_t ms32(uint64_t ms)
{
        return ms > UINT32_MAX ? UINT32_MAX : ms == 0 ? 1 : (uint32_t)ms;
}

static void options_from(const struct cfg_resolver *s, struct resolver_options *o)
{
        *o = (struct resolver_options){
            .resolv_conf = s->resolv_conf,
            .nameservers = (const char *const *)s->nameservers,
            .n_nameservers = s->n_nameservers,
            .timeout_ms = (unsigned)s->timeout_ms,
            .attempts = s->attempts,
            .ttl_min_ms = ms32(s->policy.refresh_min_ms),
            .ttl_max_ms = ms32(s->policy.refresh_max_ms),
            .nxdomain_hold_ms = ms32(s->policy.nxdomain_hold_ms),
        };
        if (!s->n_nameservers)
                o->nameservers = NULL;
}

static enum resolver_family family_of(enum cfg_family f)
{
        return f == CFG_FAMILY_IPV4   ? RESOLVER_FAMILY_IPV4
               : f == CFG_FAMILY_IPV6 ? RESOLVER_FAMILY_IPV6
                                      : RESOLVER_FAMILY_ANY;
}

/* ----- publishing a route's set ----- */

/* The addresses of name n in s, as "a, b, c" (truncated with "..."). */
static void list_addrs(const struct server_set *s, const struct dns_name *n,
                       const struct server_set *other, char *buf, size_t size)
{
        size_t len = 0;

        buf[0] = '\0';
        for (size_t i = 0; s && i < s->n && len < size; i++) {
                if (s->e[i].upstream != n->upstream || strcmp(s->e[i].name, n->text) != 0)
                        continue;
                if (other && server_set_find(other, &s->e[i].addr) >= 0)
                        continue;
                len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? ", " : "",
                                        s->e[i].addr.text);
        }
        if (len >= size && size > 4)
                memcpy(buf + size - 4, "...", 4);
}

static void log_change(const struct dns_name *n, const struct server_set *old,
                       const struct server_set *now)
{
        char added[512], removed[512], all[512];

        list_addrs(now, n, old, added, sizeof(added));
        list_addrs(old, n, now, removed, sizeof(removed));
        if (!added[0] && !removed[0])
                return;
        list_addrs(now, n, NULL, all, sizeof(all));
        log_notice("route %s: %s now resolves to [%s] (added: %s; removed: %s)", n->route, n->text,
                   all, added[0] ? added : "none", removed[0] ? removed : "none");
}

/* Rebuild r's set from its literal upstreams and its names' current answers. */
static int publish(struct dns *dns, struct route *r, const struct dns_name *changed)
{
        size_t n = r->cfg->n_upstreams;
        struct resolver_addrset **named = calloc(n ? n : 1, sizeof(*named));
        struct server_set *old = route_set_get(r), *set = NULL;
        int ret = -ENOMEM;

        if (named) {
                for (struct dns_name *x = dns->names; x; x = x->next) {
                        struct resolver_addrset *s = resolver_watch_set(x->w);

                        /* Never answered yet: keep what the route had for it (a reload). */
                        if (x->r == r && s->generation > 0)
                                named[x->upstream] = s;
                }
                ret = server_set_build(r->cfg, named, old, &set);
        }
        free(named);
        if (ret < 0) {
                server_set_unref(old);
                return log_error_errno(ret, "route %s: new server set", r->cfg->name);
        }
        route_set_publish(r, server_set_ref(set));
        dns->d->sets_serial++;
        admin_state_set_published(dns->d, r); /* drain/maint of addresses that were not yet */
        /* Logged once in use: a reader of the log may count on the new addresses. */
        for (const struct dns_name *x = dns->names; x; x = x->next)
                if (x->r == r && (!changed || x == changed))
                        log_change(x, old, set);
        server_set_unref(old);
        server_set_unref(set);
        return 0;
}

static void on_watch(void *arg, const struct resolver_event *ev)
{
        struct dns_name *n = arg;

        switch (ev->kind) {
        case RESOLVER_EVENT_CHANGED:
                (void)publish(n->dns, n->r, n);
                break;
        case RESOLVER_EVENT_FAILING:
                log_warning("route %s: resolving %s fails (%s%s%s); %s", n->route, n->text,
                            resolver_status_name(ev->status), ev->detail ? ": " : "",
                            ev->detail ? ev->detail : "",
                            resolver_status_is_negative(ev->status)
                                ? "its addresses are dropped after the NXDOMAIN hold"
                                : "keeping its last good addresses");
                break;
        case RESOLVER_EVENT_RECOVERED:
                log_notice("route %s: resolving %s works again (%zu addresses)", n->route, n->text,
                           ev->set->len);
                break;
        }
}

/* ----- refresh asked by workers ----- */

static bool all_failed(const struct dns_name *n)
{
        struct server_set *s = route_set_get(n->r);
        unsigned need = n->r->cfg->health.fails ? n->r->cfg->health.fails : 1;
        bool any = false, all = true;

        for (size_t i = 0; i < s->n; i++) {
                if (s->e[i].upstream != n->upstream)
                        continue;
                any = true;
                all = all && atomic_load(&s->e[i].srv->fails) >= need;
        }
        server_set_unref(s);
        return any && all;
}

static void refresh_task(struct evio_driver_task *t)
{
        struct dns *dns = (struct dns *)((char *)t - offsetof(struct dns, refresh_task));
        struct gen *g = dns->d->gen;

        for (size_t i = 0; i < g->n_routes; i++) {
                if (!atomic_exchange(&g->routes[i].st->dns_refresh, false))
                        continue;
                for (struct dns_name *n = dns->names; n; n = n->next) {
                        if (n->r != &g->routes[i] || !all_failed(n))
                                continue;
                        log_info("route %s: every address of %s failed; looking it up again",
                                 n->route, n->text);
                        resolver_refresh_now(n->w);
                }
        }
}

/* ----- attaching a generation ----- */

static struct dns_name *claim(struct dns *dns, const struct route *r, const struct cfg_upstream *u)
{
        for (struct dns_name *n = dns->names; n; n = n->next) {
                if (!n->claimed && strcmp(n->route, r->cfg->name) == 0 &&
                    strcmp(n->text, u->addr.text) == 0 && n->family == r->cfg->dns.family) {
                        n->claimed = true;
                        return n;
                }
        }
        return NULL;
}

static int watch_new(struct dns *dns, struct route *r, unsigned i, struct dns_name **out)
{
        const struct cfg_upstream *u = &r->cfg->upstreams[i];
        struct dns_name *n = calloc(1, sizeof(*n));
        enum resolver_family fam = family_of(r->cfg->dns.family);
        int ret;

        if (!n)
                return -ENOMEM;
        n->dns = dns;
        n->family = r->cfg->dns.family;
        n->claimed = true;
        snprintf(n->route, sizeof(n->route), "%s", r->cfg->name);
        snprintf(n->text, sizeof(n->text), "%s", u->addr.text);
        if (u->kind == CFG_UPSTREAM_SRV)
                ret = resolver_watch_srv(dns->res, u->host, fam, on_watch, n, &n->w);
        else
                ret = resolver_watch(dns->res, u->host, u->port, fam, on_watch, n, &n->w);
        if (ret < 0) {
                free(n);
                return ret;
        }
        n->next = dns->names;
        dns->names = n;
        *out = n;
        return 0;
}

static int attach_route(struct dns *dns, struct route *r, bool reload)
{
        const struct cfg_dns_policy *p = &r->cfg->dns;
        struct dns_name *n;
        int ret;

        for (unsigned i = 0; i < r->cfg->n_upstreams; i++) {
                if (r->cfg->upstreams[i].kind == CFG_UPSTREAM_ADDR)
                        continue;
                n = claim(dns, r, &r->cfg->upstreams[i]);
                if (n && reload)
                        resolver_refresh_now(n->w); /* a reload looks names up again */
                if (!n && (ret = watch_new(dns, r, i, &n)) < 0)
                        return log_error_errno(ret, "route %s: watching %s", r->cfg->name,
                                               r->cfg->upstreams[i].addr.text);
                n->r = r;
                n->upstream = i;
                resolver_watch_limits(n->w, ms32(p->refresh_min_ms), ms32(p->refresh_max_ms),
                                      ms32(p->nxdomain_hold_ms));
        }
        return 0;
}

/* Unwatch the names no route of the new generation claimed; clear the marks. */
static void drop_unclaimed(struct dns *dns)
{
        struct dns_name **pn = &dns->names;

        while (*pn) {
                struct dns_name *n = *pn;

                if (n->claimed) {
                        n->claimed = false;
                        pn = &n->next;
                        continue;
                }
                *pn = n->next;
                resolver_unwatch(n->w);
                free(n);
        }
}

static void drop_all(struct dns *dns)
{
        for (struct dns_name *n = dns->names; n; n = n->next)
                n->claimed = false;
        drop_unclaimed(dns);
}

static int attach(struct dns *dns, struct gen *g, bool reload)
{
        int ret = 0;

        for (size_t i = 0; ret == 0 && i < g->n_routes; i++)
                ret = attach_route(dns, &g->routes[i], reload);
        if (ret < 0) {
                /* Half moved: no watch may point at a route that goes away. The routes keep
                 * the addresses they have (server_set_build carried them), without updates. */
                drop_all(dns);
                log_error("names are no longer looked up (reload or restart to try again)");
                return ret;
        }
        drop_unclaimed(dns);
        for (size_t i = 0; i < g->n_routes; i++) {
                atomic_store(&g->routes[i].poke, &dns->poke);
                if (g->routes[i].cfg->n_named && (ret = publish(dns, &g->routes[i], NULL)) < 0)
                        return ret;
        }
        return 0;
}

static bool has_names(const struct cfg *c)
{
        for (size_t i = 0; i < c->n_routes; i++)
                if (c->routes[i].n_named)
                        return true;
        return false;
}

static int resolver_open(struct dns *dns, const struct cfg_resolver *s)
{
        struct resolver_options o;
        int ret;

        options_from(s, &o);
        ret = resolver_new(dns->d->drv, &o, &dns->res);
        if (ret < 0)
                return log_error_errno(ret, "starting the resolver");
        ret = settings_copy(&dns->settings, s);
        return ret < 0 ? log_error_errno(ret, "starting the resolver") : 0;
}

static int dns_open(struct daemon *d, struct gen *g)
{
        struct dns *dns;
        int ret;

        if (!has_names(g->cfg))
                return 0; /* no c-ares channel for nothing: a reload that adds names makes it */
        dns = calloc(1, sizeof(*dns));
        if (!dns)
                return log_error_errno(-ENOMEM, "starting the resolver");
        dns->d = d;
        dns->refresh_task.fn = refresh_task;
        dns->poke =
            (struct route_dns_poke){.main = evio_driver_handle(d->drv), .task = &dns->refresh_task};
        d->dns = dns;
        ret = resolver_open(dns, &g->cfg->resolver);
        if (ret < 0)
                return ret;
        return attach(dns, g, false);
}

int dns_start(struct daemon *d)
{
        return dns_open(d, d->gen);
}

int dns_reload(struct daemon *d, struct gen *g)
{
        struct resolver_options o;
        struct cfg_resolver copy;
        int ret;

        if (!d->dns)
                return dns_open(d, g);
        if (!settings_same(&d->dns->settings, &g->cfg->resolver)) {
                options_from(&g->cfg->resolver, &o);
                ret = resolver_reconfigure(d->dns->res, &o);
                if (ret < 0)
                        log_error_errno(ret, "reload: new resolver settings not applied; "
                                             "keeping the previous ones");
                else if ((ret = settings_copy(&copy, &g->cfg->resolver)) < 0)
                        return log_error_errno(ret, "reload: resolver settings");
                else {
                        settings_free(&d->dns->settings);
                        d->dns->settings = copy;
                        log_notice("resolver settings changed: names are looked up again");
                }
        }
        return attach(d->dns, g, true);
}

void dns_stop(struct daemon *d)
{
        struct dns *dns = d->dns;

        if (!dns)
                return;
        for (struct dns_name *n = dns->names, *next; n; n = next) {
                next = n->next;
                free(n); /* resolver_free() ends the watches */
        }
        resolver_free(dns->res);
        settings_free(&dns->settings);
        free(dns);
        d->dns = NULL;
}

/* ----- metrics ----- */

static void sample_name(struct mbuf *b, const char *metric, const struct dns_name *n)
{
        mbuf_printf(b, "%s{route=\"", metric);
        metrics_label_value(b, n->route);
        mbuf_printf(b, "\",name=\"");
        metrics_label_value(b, n->text);
        mbuf_printf(b, "\"} ");
}

void dns_metrics(struct daemon *d, struct mbuf *b)
{
        struct resolver_metrics m;
        struct resolver_watch_info info;

        if (!d->dns)
                return;
        resolver_metrics(d->dns->res, &m);
        mbuf_printf(b, "# HELP evproxy_resolver_lookups_total Finished DNS lookups of upstream "
                       "names, by result.\n# TYPE evproxy_resolver_lookups_total counter\n");
        for (int i = 0; i < RESOLVER_STATUS_COUNT; i++)
                mbuf_printf(b, "evproxy_resolver_lookups_total{result=\"%s\"} %llu\n",
                            resolver_status_name((enum resolver_status)i),
                            (unsigned long long)m.lookups[i]);
        mbuf_printf(b, "# HELP evproxy_resolver_addresses Addresses an upstream name resolves to "
                       "now.\n# TYPE evproxy_resolver_addresses gauge\n");
        for (const struct dns_name *n = d->dns->names; n; n = n->next) {
                resolver_watch_info(n->w, &info);
                sample_name(b, "evproxy_resolver_addresses", n);
                mbuf_printf(b, "%zu\n", info.addresses);
        }
        mbuf_printf(b, "# HELP evproxy_resolver_seconds_since_success Seconds since the name's "
                       "last successful lookup (-1: never).\n# TYPE "
                       "evproxy_resolver_seconds_since_success gauge\n");
        for (const struct dns_name *n = d->dns->names; n; n = n->next) {
                resolver_watch_info(n->w, &info);
                sample_name(b, "evproxy_resolver_seconds_since_success", n);
                if (info.ms_since_success == UINT64_MAX)
                        mbuf_printf(b, "-1\n");
                else
                        mbuf_printf(b, "%.3f\n", (double)info.ms_since_success / 1000.0);
        }
}
