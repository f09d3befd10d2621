/* Prometheus text exposition (format 0.0.4) of the daemon's counters: the I/O drivers' own
 * (summed over the main thread and every worker), per route and per upstream server. Metric
 * names and labels are listed in metrics.c. metrics_server.h serves it over HTTP. */
#ifndef EVPROXYD_METRICS_H
#define EVPROXYD_METRICS_H

#include <stdbool.h>
#include <stddef.h>

struct daemon;

/* A growing text buffer; an allocation failure is remembered, not reported per append. */
struct mbuf {
        char *data;
        size_t len, cap;
        bool failed;
};

void mbuf_printf(struct mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mbuf_free(struct mbuf *b);

/* Append the exposition of d's current configuration generation (main thread). 0 or -ENOMEM. */
int metrics_format(struct daemon *d, struct mbuf *out);

/* Append v as a label value: backslash, double quote and newline escaped. */
void metrics_label_value(struct mbuf *b, const char *v);

/* The traffic policy's families (metrics_policy.c). */
void metrics_policy_families(struct daemon *d, struct mbuf *b);
struct gen;
/* Client queues and per-server limits (metrics_queue.c). */
void metrics_queue_families(struct mbuf *b, const struct gen *g);

#endif
