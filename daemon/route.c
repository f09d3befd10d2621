/* Upstream server state shared across configuration generations (see route.h): found by route
 * name and server address in the previous generation, reference-counted, freed by whichever
 * generation lets go last. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"
#include "upstream.h"

static struct upstream_server *server_new(void)
{
        struct upstream_server *s = calloc(1, sizeof(*s));

        if (!s)
                return NULL;
        atomic_init(&s->refs, 1);
        atomic_init(&s->active, 0);
        atomic_init(&s->fails, 0);
        atomic_init(&s->down, false);
        atomic_init(&s->retry_ms, 0);
        atomic_init(&s->backoff_ms, 0);
        atomic_init(&s->connect_failures, 0);
        return s;
}

static void server_unref(struct upstream_server *s)
{
        if (s && atomic_fetch_sub(&s->refs, 1) == 1)
                free(s);
}

static const struct route *find_route(const struct route *prev, size_t n_prev, const char *name)
{
        for (size_t i = 0; prev && i < n_prev; i++) {
                if (prev[i].cfg && prev[i].servers && strcmp(prev[i].cfg->name, name) == 0)
                        return &prev[i];
        }
        return NULL;
}

static struct upstream_server *server_find(const struct route *old, const struct cfg_addr *a)
{
        for (size_t j = 0; old && j < old->cfg->n_upstreams; j++) {
                if (cfg_addr_equal(&old->cfg->upstreams[j].addr, a)) {
                        atomic_fetch_add(&old->servers[j]->refs, 1);
                        return old->servers[j];
                }
        }
        return server_new();
}

int route_servers_init(struct route *r, const struct route *prev, size_t n_prev)
{
        const struct route *old = find_route(prev, n_prev, r->cfg->name);
        size_t n = r->cfg->n_upstreams;

        r->servers = calloc(n ? n : 1, sizeof(*r->servers));
        if (!r->servers)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r->servers[i] = server_find(old, &r->cfg->upstreams[i].addr);
                if (!r->servers[i]) {
                        route_servers_free(r);
                        return -ENOMEM;
                }
        }
        return 0;
}

void route_servers_free(struct route *r)
{
        if (!r->servers)
                return;
        for (size_t i = 0; i < r->cfg->n_upstreams; i++)
                server_unref(r->servers[i]);
        free(r->servers);
        r->servers = NULL;
}
