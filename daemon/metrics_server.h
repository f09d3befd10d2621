/* The metrics endpoint (metrics.listen): a small HTTP/1.x server on the main thread's driver.
 * One request per connection, answered and closed; at most METRICS_MAX_CONNS connections at
 * once; a request head over MHTTP_MAX_REQUEST bytes, or not complete within
 * METRICS_REQUEST_TIMEOUT_MS, is cut off (closed without an answer). */
#ifndef EVPROXYD_METRICS_SERVER_H
#define EVPROXYD_METRICS_SERVER_H

#include <sys/types.h>

#include <evproxy/config.h>

#define METRICS_MAX_CONNS          16
#define METRICS_REQUEST_TIMEOUT_MS 5000
#define METRICS_WRITE_TIMEOUT_MS   10000
#define METRICS_UNIX_MODE          0660 /* the file of an endpoint on a unix path */

struct daemon;

/* Open cfg's metrics.listen (if it has one) and serve on d->drv. Main thread, before the
 * daemon drops privileges. 0, or -errno (logged). */
int metrics_server_start(struct daemon *d, const struct cfg *cfg);
/* Give a unix path endpoint's file to the user the daemon is about to become (as
 * lset_chown() does for listeners). 0, or -errno (logged). */
int metrics_server_chown(struct daemon *d, uid_t uid, gid_t gid);
/* Close the endpoint and every connection of it. Accepts a daemon without one. */
void metrics_server_stop(struct daemon *d);

#endif
