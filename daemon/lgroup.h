/* A listener group: the routes that share one listen address (match = { ... }), and the choice
 * among them once a connection's first bytes are known. The group's own listener accepts for
 * all of them under a stand-in route (no access lists, no limit of its own, named "-"); after
 * inspection the connection moves to the listener of the route chosen (conn_inspect.c). */
#ifndef EVPROXYD_LGROUP_H
#define EVPROXYD_LGROUP_H

#include <stddef.h>

#include <evproxy/config.h>

#include "inspect.h"
#include "listener.h"
#include "route.h"

struct lgroup {
        struct cfg_route cfg;     /* the stand-in route: listener options of the members */
        struct route route;       /* what a connection counts under while it is inspected */
        struct route_stats st;    /* its counters (not exported) */
        struct listener *members; /* one per route sharing the address, in file order */
        size_t n_members;
};

/* Why a route was chosen, for the access log: "sni" + the name or pattern, "alpn" + the
 * protocol, "protocol" + its word, or "default" + "". */
struct lgroup_rule {
        const char *kind, *value;
};

/* Make l (the address's first listener, of route rt) serve rt and also add as members, from
 * then on through l->group. 0 or -ENOMEM. */
int lgroup_add(struct listener *l, struct route *add);
void lgroup_free(struct lgroup *g); /* accepts NULL */

/* The member the first bytes res choose (res NULL: none came), or NULL: end=no_match. The most
 * specific match wins: an exact SNI name, then the longest "*." suffix, then ALPN, then the
 * protocol, then protocol "any"; ties go to the route first in the file; no match and no
 * bytes go to the default route (the one without a match). A BAD hello is never matched. */
struct listener *lgroup_choose(const struct lgroup *g, const struct inspect_result *res,
                               struct lgroup_rule *rule);

#endif
