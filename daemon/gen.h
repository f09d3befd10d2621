/* A configuration generation: one loaded configuration, its routes and its listeners as that
 * configuration sees them. Reference-counted: the daemon holds the current generation, every
 * worker the one it accepts for, every connection the one it was accepted under; a reload makes
 * a new generation and the old one is freed (on whichever thread lets go last) once the last
 * connection accepted under it has finished. */
#ifndef EVPROXYD_GEN_H
#define EVPROXYD_GEN_H

#include <stdatomic.h>
#include <stddef.h>

#include <evproxy/config.h>

#include "listener.h"
#include "route.h"

struct gen {
        atomic_uint refs;
        struct cfg *cfg;
        struct route *routes;
        size_t n_routes;
        struct listener *listeners;
        size_t n_listeners;
};

/* A generation for cfg (owned by it from then on, even on failure) with one reference. Route
 * counters are handed on from the route of the same name in prev (may be NULL). The listeners
 * are left to the caller (gen_add_listener). */
int gen_new(struct cfg *cfg, const struct gen *prev, struct gen **out);
/* Append a listener of route index ri for address addr accepting on set. */
int gen_add_listener(struct gen *g, size_t ri, const struct cfg_addr *addr, struct lsockset *set);
struct gen *gen_ref(struct gen *g);
/* Accepts NULL. */
void gen_unref(struct gen *g);

#endif
