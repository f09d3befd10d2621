/* Passive health of upstream servers, shared by every worker through atomics:
 *   UP --`fails` failed connects in a row--> DOWN (skipped for `backoff`)
 *   DOWN --back-off over: one connection probes it--> UP on success, else DOWN with the
 *          back-off doubled (up to backoff_max)
 *   DOWN --active check (health_check.c) connects--> UP
 * Each transition is logged once (warning when a server goes down, notice when it is back). */
#ifndef EVPROXYD_HEALTH_H
#define EVPROXYD_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

struct route;
struct server_entry;

enum health_claim {
        HEALTH_SKIP,  /* down and in back-off, or another connection probes it */
        HEALTH_UP,    /* use it */
        HEALTH_PROBE, /* down, back-off over: this caller probes it */
};

/* Up, or down with its back-off over (no claim taken), and not drained or in maintenance by
 * the admin: for balancing decisions. */
bool health_available(const struct server_entry *e, uint64_t now_ms);
/* May this connection try server e now? At most one HEALTH_PROBE per back-off period. */
enum health_claim health_claim(const struct server_entry *e, uint64_t now_ms);
/* Outcome (0 or -errno) of a client connection's connect to server e of route r. */
void health_report(struct route *r, const struct server_entry *e, int result, bool probe,
                   uint64_t now_ms);
/* Outcome of an active check's connect to server e. */
void health_report_check(struct route *r, const struct server_entry *e, int result,
                         uint64_t now_ms);
bool health_is_up(const struct server_entry *e);

#endif
