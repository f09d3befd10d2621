/* Logging for evproxyd: one line per event on stderr, prefixed "<N>" with its syslog priority so
 * journald keeps levels. Lines are written with a single write() so threads never interleave.
 * When stderr is journald's stream ($JOURNAL_STREAM), lines go to the journal with fields
 * instead (log_journal.h). Only the daemon logs; the *_errno helpers log strerror(-r) and
 * return r. */
#ifndef EVPROXYD_LOG_H
#define EVPROXYD_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

void log_set_level(int level);
bool log_enabled(int prio);
void log_printf(int prio, const char *fmt, ...) LOG_PRINTF(2, 3);
int log_errno(int prio, int r, const char *fmt, ...) LOG_PRINTF(3, 4);

/* The access line of one finished connection (priority info), written whatever the level. */
void log_access(const char *route, const char *client, const char *upstream, uint64_t bytes_in,
                uint64_t bytes_out, uint64_t duration_ms, const char *end);
/* The same for a connection with an id (conn.h), which the journal gets as EVPROXY_CONN_ID, with
 * more fields appended to the line (" sni=... match=..." on a shared address; "" for none). */
void log_access_id(uint64_t conn_id, const char *route, const char *client, const char *upstream,
                   uint64_t bytes_in, uint64_t bytes_out, uint64_t duration_ms, const char *end,
                   const char *more);

#define log_debug(...)            log_printf(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)             log_printf(LOG_INFO, __VA_ARGS__)
#define log_notice(...)           log_printf(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...)          log_printf(LOG_WARNING, __VA_ARGS__)
#define log_error(...)            log_printf(LOG_ERR, __VA_ARGS__)
#define log_debug_errno(r, ...)   log_errno(LOG_DEBUG, r, __VA_ARGS__)
#define log_info_errno(r, ...)    log_errno(LOG_INFO, r, __VA_ARGS__)
#define log_warning_errno(r, ...) log_errno(LOG_WARNING, r, __VA_ARGS__)
#define log_error_errno(r, ...)   log_errno(LOG_ERR, r, __VA_ARGS__)

#endif
