/* Upstream names, resolved (issue 14): the daemon's one resolver (resolver.h) on the main
 * thread's driver, one watch per named upstream of each route of the current generation, and
 * the server set (server_set.h) a route publishes whenever one of its names' answers changes.
 *   start: dns_start()   reload: dns_reload() before the new generation reaches the workers
 *   stop: dns_stop() after the workers are gone, before the main driver is freed
 * Workers never block on a lookup: they only read the published sets, and ask for a refresh
 * (route.h, struct route_dns_poke) when every address of a name failed. */
#ifndef EVPROXYD_DNS_H
#define EVPROXYD_DNS_H

#include <evproxy/config.h>

struct daemon;
struct gen;
struct mbuf;

/* Watch the names of d->gen's routes. 0, or -errno after logging what failed. */
int dns_start(struct daemon *d);
/* Move the watches to generation g (names that stay keep their watch and are looked up again,
 * new ones are watched, gone ones dropped), rebuilding the resolver first if the resolver
 * settings changed. Publishes g's sets. 0, or -errno after logging (g is then not used). */
int dns_reload(struct daemon *d, struct gen *g);
/* Accepts a daemon without names. */
void dns_stop(struct daemon *d);
/* evproxy_resolver_* families for the metrics endpoint (main thread). */
void dns_metrics(struct daemon *d, struct mbuf *b);
/* evproxyd -t: look every name of cfg up once, bounded in time, and warn (never fail) for those
 * without an address. */
void dns_check_names(const struct cfg *cfg);

#endif
