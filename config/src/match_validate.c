/* The rules for a listen address that routes with a match share (cfg_validate calls it; an
 * address no matching route uses keeps validate.c's "already used" rule): the same route
 * does not list it twice, at most one route on it goes without a match (the default), they
 * agree on the listener options, no SNI name is claimed by two of them, and every connection
 * has somewhere to go: a default route, or one with protocol = "any". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct sref {
        const char *name;
        size_t route, index;
};

static int sref_cmp(const void *pa, const void *pb)
{
        const struct sref *a = pa, *b = pb;
        int r = strcmp(a->name, b->name);

        if (r)
                return r;
        return a->route < b->route ? -1 : a->route > b->route;
}

static const config_setting_t *elem(const config_setting_t *root, size_t route, const char *key,
                                    size_t i)
{
        const config_setting_t *r =
            config_setting_get_elem(config_setting_get_member(root, "routes"), (unsigned)route);

        return config_setting_get_elem(config_setting_get_member(r, key), (unsigned)i);
}

static const config_setting_t *sni_elem(const config_setting_t *root, size_t route, size_t i)
{
        const config_setting_t *r =
            config_setting_get_elem(config_setting_get_member(root, "routes"), (unsigned)route);

        return config_setting_get_elem(
            config_setting_get_member(config_setting_get_member(r, "match"), "sni"), (unsigned)i);
}

/* The first listener option in which a and b differ, or NULL. */
static const char *option_diff(const struct cfg_route *a, const struct cfg_route *b)
{
        if (a->unix_mode != b->unix_mode)
                return "unix_mode";
        if (a->accept_proxy_protocol != b->accept_proxy_protocol)
                return "accept_proxy_protocol";
        if (a->proxy_protocol_timeout_ms != b->proxy_protocol_timeout_ms)
                return "proxy_protocol_timeout";
        if (a->inspect_timeout_ms != b->inspect_timeout_ms)
                return "inspect_timeout";
        if (a->inspect_max != b->inspect_max)
                return "inspect_max";
        if (a->bad_hello_close != b->bad_hello_close)
                return "on_bad_hello";
        return NULL;
}

/* A conflict between listener a and the earlier listener b of the same address. */
static int conflict(const struct cfg_ctx *ctx, const config_setting_t *root,
                    const struct cfg_listener_ref *a, const struct cfg_listener_ref *b,
                    const char *what, const char *diff)
{
        const config_setting_t *o = elem(root, b->route_index, "listen", b->listen_index);
        char quoted[200], where[300];

        cfg_quote(a->addr->text, quoted, sizeof(quoted));
        cfg_setting_path(o, where, sizeof(where));
        if (diff)
                return cfg_fail(ctx, elem(root, a->route_index, "listen", a->listen_index),
                                "%s: shared with %s (line %d), whose %s differs: routes sharing "
                                "a listen address must agree on it",
                                quoted, where, cfg_setting_line(o), diff);
        return cfg_fail(ctx, elem(root, a->route_index, "listen", a->listen_index),
                        "%s: already used by %s (line %d)%s", quoted, where, cfg_setting_line(o),
                        what);
}

static int check_members(const struct cfg_ctx *ctx, const config_setting_t *root,
                         const struct cfg *c, const struct cfg_listener_ref *g, size_t n)
{
        const struct cfg_listener_ref *dflt = NULL;
        char quoted[200];
        bool any = false;

        for (size_t i = 0; i < n; i++) {
                const struct cfg_route *r = &c->routes[g[i].route_index];
                const char *diff = option_diff(&c->routes[g[0].route_index], r);

                if (i > 0 && g[i - 1].route_index == g[i].route_index)
                        return conflict(ctx, root, &g[i], &g[i - 1], "", NULL);
                if (!r->match && dflt)
                        return conflict(ctx, root, &g[i], dflt,
                                        ", also without a match: of the routes sharing a listen "
                                        "address one at most goes without (the default)",
                                        NULL);
                if (diff)
                        return conflict(ctx, root, &g[i], &g[0], "", diff);
                if (!r->match)
                        dflt = &g[i];
                any |= r->match && r->match->protocol == CFG_PROTO_ANY;
        }
        if (dflt || any)
                return 0;
        cfg_quote(g[0].addr->text, quoted, sizeof(quoted));
        return cfg_fail(ctx, elem(root, g[0].route_index, "listen", g[0].listen_index),
                        "%s: no route here takes a connection that matches no rule: add a route "
                        "without match (the default) or one with protocol = \"any\"",
                        quoted);
}

static int check_names(const struct cfg_ctx *ctx, const config_setting_t *root, const struct cfg *c,
                       const struct cfg_listener_ref *g, size_t n)
{
        struct sref *s;
        size_t k = 0, total = 0;
        int r = 0;

        for (size_t i = 0; i < n; i++)
                if (c->routes[g[i].route_index].match)
                        total += c->routes[g[i].route_index].match->n_sni;
        s = calloc(total ? total : 1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const struct cfg_match *m = c->routes[g[i].route_index].match;

                for (size_t j = 0; m && j < m->n_sni; j++)
                        s[k++] = (struct sref){m->sni[j], g[i].route_index, j};
        }
        qsort(s, total, sizeof(*s), sref_cmp);
        for (k = 1; k < total && r == 0; k++) {
                const config_setting_t *first;
                char quoted[300], addr[200];

                if (strcmp(s[k].name, s[k - 1].name) != 0 || s[k].route == s[k - 1].route)
                        continue;
                first = sni_elem(root, s[k - 1].route, s[k - 1].index);
                cfg_quote(s[k].name, quoted, sizeof(quoted));
                cfg_quote(g[0].addr->text, addr, sizeof(addr));
                r = cfg_fail(ctx, sni_elem(root, s[k].route, s[k].index),
                             "%s: also claimed by routes[%zu] (line %d) on %s", quoted,
                             s[k - 1].route, cfg_setting_line(first), addr);
        }
        free(s);
        return r;
}

int cfg_validate_shared(const struct cfg_ctx *ctx, const config_setting_t *root,
                        const struct cfg *c)
{
        struct cfg_listener_ref *g;
        size_t n = 0, k = 0, start, end;
        int r = 0;

        for (size_t i = 0; i < c->n_routes; i++)
                n += c->routes[i].n_listen;
        g = calloc(n ? n : 1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_routes; i++)
                for (size_t j = 0; j < c->routes[i].n_listen; j++)
                        g[k++] =
                            (struct cfg_listener_ref){&c->routes[i], &c->routes[i].listen[j], i, j};
        qsort(g, n, sizeof(*g), cfg_listener_ref_cmp);
        for (start = 0; start < n && r == 0; start = end) {
                bool matched = false;

                for (end = start; end < n && cfg_addr_cmp(g[end].addr, g[start].addr) == 0; end++)
                        matched |= c->routes[g[end].route_index].match != NULL;
                if (!matched)
                        continue;
                r = check_members(ctx, root, c, g + start, end - start);
                if (r == 0)
                        r = check_names(ctx, root, c, g + start, end - start);
        }
        free(g);
        return r;
}
