/* Rules that span routes: route names are unique, and no listen address appears twice (in one
 * route or in two) or overlaps another ("*:80" with "0.0.0.0:80"), the metrics endpoint
 * included. With SO_REUSEPORT a duplicate would bind fine and silently split traffic, so it
 * must be caught here. An upstream may not be one of our own listeners (a loop). Sorting
 * keeps this O(n log n) for large files. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct lref {
        const struct cfg_addr *addr;
        size_t route, index; /* file order */
        bool shared;         /* routes with a match use it: match_validate.c's rules apply */
};

static int lref_cmp(const void *pa, const void *pb)
{
        const struct lref *a = pa, *b = pb;
        int r = cfg_addr_cmp(a->addr, b->addr);

        if (r)
                return r;
        if (a->route != b->route)
                return a->route < b->route ? -1 : 1;
        return a->index < b->index ? -1 : a->index > b->index;
}

static const config_setting_t *route_setting(const config_setting_t *root, size_t route)
{
        return config_setting_get_elem(config_setting_get_member(root, "routes"), (unsigned)route);
}

static const config_setting_t *listen_setting(const config_setting_t *root, const struct lref *l)
{
        const config_setting_t *listen =
            config_setting_get_member(route_setting(root, l->route), "listen");

        return config_setting_get_elem(listen, (unsigned)l->index);
}

static bool later(const struct lref *a, const struct lref *b)
{
        return a->route != b->route ? a->route > b->route : a->index > b->index;
}

/* Report the conflict between first and dup (dup comes later in the file). */
static int conflict(const struct cfg_ctx *ctx, const config_setting_t *root,
                    const struct lref *first, const struct lref *dup)
{
        const config_setting_t *s = listen_setting(root, first);
        char quoted[200], other[200], where[300];

        cfg_quote(dup->addr->text, quoted, sizeof(quoted));
        cfg_setting_path(s, where, sizeof(where));
        if (cfg_addr_equal(first->addr, dup->addr))
                return cfg_fail(ctx, listen_setting(root, dup), "%s: already used by %s (line %d)",
                                quoted, where, cfg_setting_line(s));
        cfg_quote(first->addr->text, other, sizeof(other));
        return cfg_fail(ctx, listen_setting(root, dup), "%s: overlaps %s in %s (line %d)", quoted,
                        other, where, cfg_setting_line(s));
}

/* The addresses a wildcard "*:port" also occupies: 0.0.0.0:port and [::]:port. */
static void unspecified_twins(const struct cfg_addr *w, struct cfg_addr twins[2])
{
        struct sockaddr_in *sin = (struct sockaddr_in *)&twins[0].sa;

        memset(twins, 0, 2 * sizeof(*twins));
        sin->sin_family = AF_INET;
        sin->sin_port = ((const struct sockaddr_in6 *)&w->sa)->sin6_port;
        twins[0].sa_len = sizeof(struct sockaddr_in);
        twins[1] = *w;
        twins[1].wildcard = false;
}

static const struct lref *find_first(const struct lref *refs, size_t n, const struct cfg_addr *a)
{
        size_t lo = 0, hi = n;

        while (lo < hi) { /* lower bound: the first entry >= a in file order */
                size_t mid = lo + (hi - lo) / 2;

                if (cfg_addr_cmp(refs[mid].addr, a) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < n && cfg_addr_cmp(refs[lo].addr, a) == 0 ? &refs[lo] : NULL;
}

/* Finds the conflicting pair whose later member comes first in the file. */
static void find_conflict(const struct lref *refs, size_t n, const struct lref **first,
                          const struct lref **dup)
{
        struct cfg_addr twins[2];
        size_t i, t;

        *first = *dup = NULL;
        for (i = 0; i < n; i++) {
                const struct lref *a = NULL, *b = &refs[i];

                if (i > 0 && cfg_addr_cmp(refs[i - 1].addr, b->addr) == 0 && !b->shared)
                        a = find_first(refs, n, b->addr);
                if (a && (!*dup || later(*dup, b))) {
                        *first = a;
                        *dup = b;
                }
                if (!b->addr->wildcard)
                        continue;
                unspecified_twins(b->addr, twins);
                for (t = 0; t < 2; t++) {
                        const struct lref *o = find_first(refs, n, &twins[t]);
                        const struct lref *lo = o && later(o, b) ? b : o;
                        const struct lref *hi = lo == b ? o : b;

                        if (o && (!*dup || later(*dup, hi))) {
                                *first = lo;
                                *dup = hi;
                        }
                }
        }
}

static int check_metrics(const struct cfg_ctx *ctx, const config_setting_t *root,
                         const struct cfg *c, const struct lref *refs, size_t n)
{
        const config_setting_t *m = config_setting_get_member(root, "metrics");
        char quoted[200], where[300];
        size_t i;

        for (i = 0; c->has_metrics && i < n; i++) {
                const config_setting_t *s = listen_setting(root, &refs[i]);

                if (!cfg_addr_overlap(&c->metrics_listen, refs[i].addr))
                        continue;
                cfg_quote(c->metrics_listen.text, quoted, sizeof(quoted));
                cfg_setting_path(s, where, sizeof(where));
                return cfg_fail(ctx, config_setting_get_member(m, "listen"),
                                "%s: also used by %s (line %d)", quoted, where,
                                cfg_setting_line(s));
        }
        return 0;
}

/* An upstream that is one of our own listeners would make every connection loop back. */
static int check_loops(const struct cfg_ctx *ctx, const config_setting_t *root, const struct cfg *c,
                       const struct lref *refs, size_t n)
{
        char quoted[200], where[300];
        size_t i, j;

        for (i = 0; i < c->n_routes; i++) {
                for (j = 0; j < c->routes[i].n_upstreams; j++) {
                        const struct cfg_addr *u = &c->routes[i].upstreams[j].addr;
                        const struct lref *l = find_first(refs, n, u);
                        const config_setting_t *s;

                        if (c->routes[i].upstreams[j].kind != CFG_UPSTREAM_ADDR)
                                continue; /* names: a loop is not knowable before they resolve */
                        if (!l)
                                continue;
                        s = listen_setting(root, l);
                        cfg_quote(u->text, quoted, sizeof(quoted));
                        cfg_setting_path(s, where, sizeof(where));
                        s = config_setting_get_member(route_setting(root, i), "upstreams");
                        return cfg_fail(ctx, config_setting_get_elem(s, (unsigned)j),
                                        "%s: is this daemon's own listener %s (line %d); "
                                        "connections would loop",
                                        quoted, where, cfg_setting_line(listen_setting(root, l)));
                }
        }
        return 0;
}

/* An address that some route with a match uses may be shared (runs of equal addresses). */
static void mark_shared(const struct cfg *c, struct lref *refs, size_t n)
{
        size_t i, j, k;

        for (i = 0; i < n; i = j) {
                bool shared = false;

                for (j = i; j < n && cfg_addr_cmp(refs[j].addr, refs[i].addr) == 0; j++)
                        shared |= c->routes[refs[j].route].match != NULL;
                for (k = i; k < j; k++)
                        refs[k].shared = shared;
        }
}

static int check_listeners(const struct cfg_ctx *ctx, const config_setting_t *root,
                           const struct cfg *c)
{
        const struct lref *first, *dup;
        struct lref *refs;
        size_t i, j, n = 0, k = 0;
        int r = 0;

        for (i = 0; i < c->n_routes; i++)
                n += c->routes[i].n_listen;
        refs = calloc(n ? n : 1, sizeof(*refs));
        if (!refs)
                return -ENOMEM;
        for (i = 0; i < c->n_routes; i++)
                for (j = 0; j < c->routes[i].n_listen; j++)
                        refs[k++] = (struct lref){&c->routes[i].listen[j], i, j, false};
        qsort(refs, n, sizeof(*refs), lref_cmp);
        mark_shared(c, refs, n);
        find_conflict(refs, n, &first, &dup);
        if (dup)
                r = conflict(ctx, root, first, dup);
        if (r == 0)
                r = check_metrics(ctx, root, c, refs, n);
        if (r == 0)
                r = check_loops(ctx, root, c, refs, n);
        free(refs);
        return r;
}

static int name_cmp(const void *pa, const void *pb)
{
        const struct cfg_route *a = *(const struct cfg_route *const *)pa;
        const struct cfg_route *b = *(const struct cfg_route *const *)pb;
        int r = strcmp(a->name, b->name);

        return r ? r : (a < b ? -1 : a > b);
}

static int check_names(const struct cfg_ctx *ctx, const config_setting_t *root, const struct cfg *c)
{
        const struct cfg_route **sorted, *first = NULL, *dup = NULL;
        size_t i, start = 0;
        int r = 0;

        sorted = calloc(c->n_routes, sizeof(*sorted));
        if (!sorted)
                return -ENOMEM;
        for (i = 0; i < c->n_routes; i++)
                sorted[i] = &c->routes[i];
        qsort(sorted, c->n_routes, sizeof(*sorted), name_cmp);
        for (i = 1; i < c->n_routes; i++) {
                if (strcmp(sorted[i]->name, sorted[i - 1]->name) != 0) {
                        start = i;
                        continue;
                }
                if (!dup || sorted[i] < dup) {
                        first = sorted[start];
                        dup = sorted[i];
                }
        }
        if (dup) {
                size_t a = (size_t)(first - c->routes), b = (size_t)(dup - c->routes);
                const config_setting_t *s =
                    config_setting_get_member(route_setting(root, a), "name");
                char quoted[200];

                cfg_quote(dup->name, quoted, sizeof(quoted));
                r = cfg_fail(ctx, config_setting_get_member(route_setting(root, b), "name"),
                             "%s: route name already used by routes[%zu] (line %d)", quoted, a,
                             cfg_setting_line(s));
        }
        free(sorted);
        return r;
}

int cfg_validate(const struct cfg_ctx *ctx, const config_setting_t *root, const struct cfg *c)
{
        int r = check_names(ctx, root, c);

        if (r == 0)
                r = check_listeners(ctx, root, c);
        if (r == 0)
                r = cfg_validate_shared(ctx, root, c);
        return r < 0 ? r : cfg_validate_admin(ctx, root, c);
}
