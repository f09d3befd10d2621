/* The runtime data of routes and servers as JSON (jansson), shared by the admin socket's
 * answers (admin_cmds.c: status, servers) and the status page's /status.json (status_page.c),
 * so that both say the same thing in the same words. Main thread: reads the current
 * generation's counters, which every worker updates atomically. */
#ifndef EVPROXYD_STATUS_DATA_H
#define EVPROXYD_STATUS_DATA_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include "daemon.h"

struct route;
struct server_entry;

/* {name, servers, active, accepted, refused_acl, refused_limit, bad_proxy_header,
 * connect_failures, bytes_in, bytes_out}, or NULL without memory. */
json_t *status_route_json(const struct route *r);
/* {route, server, state, admin, health, active, connects, connect_failures, last_error?,
 * last_error_time?, name} of the server entry e of r (name: the upstream name e came from,
 * null for a literal address), or NULL without memory. state is the admin state, or
 * "down"/"ready" by health when the admin state is ready. */
json_t *status_server_json(const struct route *r, const struct server_entry *e);
/* "running", "draining" or "stopping". */
const char *status_phase_name(enum daemon_phase p);
/* ISO 8601 UTC of t into buf, or "" for 0. */
void status_iso_time(time_t t, char *buf, size_t size);

#endif
