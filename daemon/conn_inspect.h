/* The inspect phase of a connection accepted on a shared listen address: wait (at most
 * inspect_timeout) until the client's first bytes decide (inspect.h), choose the route
 * (lgroup.h), and move the connection over to it with its counters, access lists and limit.
 * The bytes are peeked, never taken: they stay in the socket and are forwarded as usual. */
#ifndef EVPROXYD_CONN_INSPECT_H
#define EVPROXYD_CONN_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <evproxy/registration.h>

#include "conn.h"
#include "inspect.h"
#include "lgroup.h"

struct gen;
struct mbuf;

/* Per connection, from accept on a shared address until it closes (for its log line). */
struct conn_inspect {
        size_t need; /* bytes in the socket before parsing again is worth it */
        struct lgroup_rule rule;
        char sni[INSPECT_SNI_MAX + 1];
};

/* One run on the client's registration creg of a connection accepted on l (l->group set).
 * 0: undecided, wait for more bytes or the timer (timed_out). 1: *to is the member listener the
 * connection continues on (the route's counters, access list and limit are applied: its share
 * of the limits moved from l to *to). -1: close with *end; *to, if not NULL, is the listener
 * to log it under (and holds the connection's share of the limits then). */
int conn_inspect_run(struct conn_inspect *ci, struct evio_registration *creg, bool timed_out,
                     struct listener *l, const struct sockaddr *client, struct listener **to,
                     enum conn_end *end);

/* " sni=NAME match=KIND:VALUE" for the access log ("-" where unknown); "" for ci NULL. */
const char *conn_inspect_log_fields(const struct conn_inspect *ci, char *buf, size_t size);

/* evproxy_inspect_total{result} and evproxy_route_matched_total{route} (metrics.c). */
void conn_inspect_metrics(struct mbuf *b, const struct gen *g);

#endif
