/* The live status page on the metrics listener (metrics_server.c serves it): GET / (HTML),
 * /status.js, /status.css, built into the binary (status_assets.h), and /status.json, the data
 * the script polls. Every answer of the listener carries STATUS_HTTP_HEADERS, whose strict CSP
 * the page is written for (no inline script or style, nothing from elsewhere). */
#ifndef EVPROXYD_STATUS_PAGE_H
#define EVPROXYD_STATUS_PAGE_H

#include <stdint.h>

#include <jansson.h>

#include "metrics.h"
#include "metrics_http.h"

struct daemon;

#define STATUS_CSP                                                                                 \
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "            \
        "img-src 'self'"
#define STATUS_HTTP_HEADERS                                                                        \
        "Content-Security-Policy: " STATUS_CSP "\r\n"                                              \
        "X-Content-Type-Options: nosniff\r\n"                                                      \
        "Cache-Control: no-store\r\n"

/* The data of /status.json: version, phase, workers, uptime_ms, totals {active, accepted,
 * refused, connect_failures, bytes_in, bytes_out} and routes, each as status_route_json() with
 * "upstreams": its servers as status_server_json(). NULL without memory. Main thread. */
json_t *status_json(struct daemon *d, uint64_t uptime_ms);

/* Append to body the answer to a GET of target t (not MHTTP_METRICS) and set *type to its
 * Content-Type. 0, or -ENOMEM. */
int status_page_body(struct daemon *d, enum mhttp_target t, uint64_t uptime_ms, struct mbuf *body,
                     const char **type);

#endif
