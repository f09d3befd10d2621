/* Logging under journald (log.c's other output): when stderr is the journal's stream, lines go
 * to the journal's native socket with fields, so `journalctl EVPROXY_ROUTE=web EVPROXY_END=reset`
 * finds access lines. Only log.c uses this. */
#ifndef EVPROXYD_LOG_JOURNAL_H
#define EVPROXYD_LOG_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define LOG_LINE_MAX 2048 /* bytes of one line's message, at most (longer ones are cut) */

/* The fields of one access line (log_access_id()). conn_id 0: none (refused before it had
 * one), and no EVPROXY_CONN_ID field. */
struct log_journal_access {
        uint64_t conn_id;
        const char *route, *client, *upstream, *end;
        uint64_t bytes_in, bytes_out, duration_ms;
};

/* True if env, $JOURNAL_STREAM's value ("DEV:INO", decimal), names the file st describes. */
bool log_journal_stream_matches(const char *env, const struct stat *st);

/* Whether lines go to the journal: $JOURNAL_STREAM matches fstat(2) of stderr. Looked at once,
 * on the first call; any thread. */
bool log_journal_enabled(void);

/* Send one line: MESSAGE= msg[0..len) (today's stderr line without its "<N>" prefix),
 * PRIORITY=, SYSLOG_IDENTIFIER=evproxyd, ERRNO= when err < 0, and the EVPROXY_* fields of a
 * (if not NULL). 0, or -errno when the journal did not take it (the caller writes the line to
 * stderr instead). */
int log_journal_send(int prio, int err, const char *msg, size_t len,
                     const struct log_journal_access *a);

#endif
