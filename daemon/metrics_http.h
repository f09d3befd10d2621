/* The metrics endpoint's HTTP request parser: a pure function over the bytes received so far,
 * fuzzed directly (tests/fuzz/fuzz_metrics_http.c). Only the request head is looked at; the
 * endpoint answers one request per connection and closes. */
#ifndef EVPROXYD_METRICS_HTTP_H
#define EVPROXYD_METRICS_HTTP_H

#include <stddef.h>

#define MHTTP_MAX_REQUEST 4096 /* bytes of request head accepted before cutting off */

/* What a GET asks for (any query string is ignored): the exposition, or the status page
 * (status_page.h) and its parts. */
enum mhttp_target {
        MHTTP_METRICS,     /* /metrics */
        MHTTP_STATUS_HTML, /* / */
        MHTTP_STATUS_JS,   /* /status.js */
        MHTTP_STATUS_CSS,  /* /status.css */
        MHTTP_STATUS_JSON, /* /status.json */
};

struct mhttp_request {
        int status; /* what to answer: 200 (GET of a known target), 400, 404, 405 or 505 */
        int minor;  /* HTTP/1.<minor> of the request, 0 when unknown */
        enum mhttp_target target; /* with status 200 */
};

/* Parse buf[0..len). Returns the length of the request head (> 0) once it is complete or
 * once the request line alone shows it is bad (out filled), 0 when more bytes are needed, or
 * -EMSGSIZE when MHTTP_MAX_REQUEST bytes hold no complete head. */
int mhttp_parse(const char *buf, size_t len, struct mhttp_request *out);

/* The reason phrase of a status this parser produces ("OK", "Not Found", ...). */
const char *mhttp_reason(int status);

#endif
