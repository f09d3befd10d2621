/* Configuration generations and the route counters they share. A route's counters live in a
 * struct route_stats found by name when a generation is made, so the old and the new
 * configuration count the same connections, and a route limit stays exact across reloads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "lgroup.h"
#include "route.h"

static struct route_stats *stats_new(const char *name)
{
        struct route_stats *st = calloc(1, sizeof(*st));

        if (!st)
                return NULL;
        snprintf(st->name, sizeof(st->name), "%s", name);
        atomic_init(&st->refs, 1);
        return st;
}

static void stats_unref(struct route_stats *st)
{
        if (st && atomic_fetch_sub(&st->refs, 1) == 1)
                free(st);
}

static struct route_stats *stats_find(const struct gen *prev, const char *name)
{
        for (size_t i = 0; prev && i < prev->n_routes; i++) {
                struct route_stats *st = prev->routes[i].st;

                if (strcmp(st->name, name) == 0) {
                        atomic_fetch_add(&st->refs, 1);
                        return st;
                }
        }
        return stats_new(name);
}

static void gen_free(struct gen *g)
{
        for (size_t i = 0; i < g->n_routes; i++) {
                route_servers_free(&g->routes[i]);
                balance_state_destroy(&g->routes[i].bal);
                stats_unref(g->routes[i].st);
        }
        free(g->routes);
        for (size_t i = 0; i < g->n_listeners; i++)
                lgroup_free(g->listeners[i].group);
        free(g->listeners);
        cfg_free(g->cfg);
        free(g);
}

int gen_new(struct cfg *cfg, const struct gen *prev, struct gen **out)
{
        struct gen *g = calloc(1, sizeof(*g));

        if (!g) {
                cfg_free(cfg);
                return -ENOMEM;
        }
        atomic_init(&g->refs, 1);
        g->cfg = cfg;
        g->routes = calloc(cfg->n_routes ? cfg->n_routes : 1, sizeof(*g->routes));
        if (!g->routes) {
                gen_free(g);
                return -ENOMEM;
        }
        for (size_t i = 0; i < cfg->n_routes; i++) {
                g->routes[i].cfg = &cfg->routes[i];
                g->routes[i].st = stats_find(prev, cfg->routes[i].name);
                if (!g->routes[i].st || balance_state_init(&g->routes[i].bal) < 0) {
                        stats_unref(g->routes[i].st);
                        gen_free(g);
                        return -ENOMEM;
                }
                if (route_servers_init(&g->routes[i], prev ? prev->routes : NULL,
                                       prev ? prev->n_routes : 0) < 0) {
                        balance_state_destroy(&g->routes[i].bal);
                        stats_unref(g->routes[i].st);
                        gen_free(g);
                        return -ENOMEM;
                }
                g->n_routes++;
        }
        *out = g;
        return 0;
}

int gen_add_listener(struct gen *g, size_t ri, const struct cfg_addr *addr, struct lsockset *set)
{
        struct listener *ls;

        /* Routes sharing an address (match) share its listener: one registration per worker. */
        for (size_t i = 0; i < g->n_listeners; i++)
                if (g->listeners[i].set == set)
                        return lgroup_add(&g->listeners[i], &g->routes[ri]);
        ls = realloc(g->listeners, (g->n_listeners + 1) * sizeof(*ls));
        if (!ls)
                return -ENOMEM;
        g->listeners = ls;
        ls[g->n_listeners++] = (struct listener){
            .addr = addr,
            .route = &g->routes[ri],
            .gen = g,
            .set = set,
        };
        return g->routes[ri].cfg->match ? lgroup_add(&ls[g->n_listeners - 1], NULL) : 0;
}

struct gen *gen_ref(struct gen *g)
{
        atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
        return g;
}

void gen_unref(struct gen *g)
{
        if (g && atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1)
                gen_free(g);
}
