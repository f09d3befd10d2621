/* The upstream servers' runtime state of a route (struct route in daemon.h): each server's
 * struct upstream_server is shared, like the route's counters, by every configuration
 * generation that has a route of the same name with the same server address, so health,
 * failure counts and active connections stay exact across reloads. */
#ifndef EVPROXYD_ROUTE_H
#define EVPROXYD_ROUTE_H

#include <stddef.h>

struct route;

/* Give r (its cfg set) one server state per upstream: the one of the same address in the
 * route of the same name among prev[0..n_prev) (a reference), or a new one (up, idle).
 * 0 or -ENOMEM (then r holds nothing). */
int route_servers_init(struct route *r, const struct route *prev, size_t n_prev);
/* Drop r's references. Accepts a route whose servers were never set up. */
void route_servers_free(struct route *r);

#endif
