/* Choosing and connecting to a route's upstream servers. Every choice goes through
 * upstream_next() so balancing policies and server health (issue 5) change one function. */
#ifndef EVPROXYD_UPSTREAM_H
#define EVPROXYD_UPSTREAM_H

#include <stdbool.h>

#include <evproxy/config.h>

struct route;

/* One connection's walk over the servers of its route: each server is tried at most once. */
struct upstream_pick {
        unsigned start; /* first server of this walk */
        unsigned tried; /* servers handed out so far */
        int current;    /* index of the last one handed out, -1 before the first */
};

void upstream_begin(struct route *r, struct upstream_pick *p);
/* The next server to try, or NULL when every server was tried. */
const struct cfg_addr *upstream_next(struct route *r, struct upstream_pick *p);
/* Outcome of a connect to p->current (0 or -errno), for health tracking. */
void upstream_report(struct route *r, const struct upstream_pick *p, int result);

/* Start a non-blocking connect: 0 connected, -EINPROGRESS pending (wait for writable, then
 * upstream_connect_result()), or -errno. *fd_out is set whenever a socket was made. */
int upstream_connect(const struct cfg_addr *a, int *fd_out);
/* Result of a pending connect once the socket is writable: 0 or -errno. */
int upstream_connect_result(int fd);

/* True for errors that say this machine is short of something, not that the server failed. */
bool upstream_error_is_local(int r);

#endif
