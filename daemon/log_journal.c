/* The journal output of log.c (log_journal.h). systemd sets $JOURNAL_STREAM to the device and
 * inode of the stream it connected stdout/stderr to; if that is our stderr, journald reads us
 * and the native protocol (sd_journal_sendv(), one datagram per line) can carry fields. A
 * line the journal does not take (socket gone or refusing) is reported, so that it goes to stderr
 * instead. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "log_journal.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket" /* where sd_journal_sendv() sends */
#define FIELD_MAX      512 /* an EVPROXY_* field; longer values are cut (none is that long) */

static pthread_once_t journal_once = PTHREAD_ONCE_INIT;
static bool journal_on;

bool log_journal_stream_matches(const char *env, const struct stat *st)
{
        unsigned long long dev, ino;
        char *end;

        if (!env || env[0] < '0' || env[0] > '9')
                return false;
        errno = 0;
        dev = strtoull(env, &end, 10);
        if (errno || *end != ':' || end[1] < '0' || end[1] > '9')
                return false;
        ino = strtoull(end + 1, &end, 10);
        if (errno || *end != '\0')
                return false;
        return dev == (unsigned long long)st->st_dev && ino == (unsigned long long)st->st_ino;
}

static void journal_detect(void)
{
        const char *env = getenv("JOURNAL_STREAM");
        struct stat st;

        journal_on = env && fstat(STDERR_FILENO, &st) == 0 && log_journal_stream_matches(env, &st);
}

bool log_journal_enabled(void)
{
        pthread_once(&journal_once, journal_detect);
        return journal_on;
}

/* Append "KEY=value" (formatted) to iov as its next field, in the scratch space at *buf. */
static void field(struct iovec *iov, size_t *n, char **buf, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void field(struct iovec *iov, size_t *n, char **buf, const char *fmt, ...)
{
        va_list ap;
        int len;

        va_start(ap, fmt);
        len = vsnprintf(*buf, FIELD_MAX, fmt, ap);
        va_end(ap);
        if (len < 0)
                return;
        if (len >= FIELD_MAX)
                len = FIELD_MAX - 1;
        iov[*n] = (struct iovec){.iov_base = *buf, .iov_len = (size_t)len};
        (*n)++;
        *buf += FIELD_MAX;
}

int log_journal_send(int prio, int err, const char *msg, size_t len,
                     const struct log_journal_access *a)
{
        char scratch[11][FIELD_MAX], *s = scratch[0]; /* the most fields below but MESSAGE */
        char message[sizeof("MESSAGE=") + LOG_LINE_MAX];
        struct iovec iov[12];
        size_t n = 0;
        int r;

        /* One iovec a whole field (sd_journal_sendv() takes no field in pieces). */
        r = snprintf(message, sizeof(message), "MESSAGE=%.*s",
                     (int)(len > LOG_LINE_MAX ? LOG_LINE_MAX : len), msg);
        if (r < 0)
                return -EINVAL;
        iov[n++] = (struct iovec){.iov_base = message,
                                  .iov_len = (size_t)r < sizeof(message) ? (size_t)r
                                                                         : sizeof(message) - 1};
        field(iov, &n, &s, "PRIORITY=%d", prio);
        field(iov, &n, &s, "SYSLOG_IDENTIFIER=evproxyd");
        if (err < 0)
                field(iov, &n, &s, "ERRNO=%d", -err);
        if (a) {
                field(iov, &n, &s, "EVPROXY_ROUTE=%s", a->route);
                field(iov, &n, &s, "EVPROXY_CLIENT=%s", a->client);
                field(iov, &n, &s, "EVPROXY_UPSTREAM=%s", a->upstream);
                field(iov, &n, &s, "EVPROXY_BYTES_IN=%" PRIu64, a->bytes_in);
                field(iov, &n, &s, "EVPROXY_BYTES_OUT=%" PRIu64, a->bytes_out);
                field(iov, &n, &s, "EVPROXY_DURATION_MS=%" PRIu64, a->duration_ms);
                field(iov, &n, &s, "EVPROXY_END=%s", a->end);
                if (a->conn_id)
                        field(iov, &n, &s, "EVPROXY_CONN_ID=%" PRIu64, a->conn_id);
        }
        r = sd_journal_sendv(iov, (int)n);
        if (r < 0)
                return r;
        /* sd_journal_sendv() drops the line and says 0 when the socket file is missing (journal
         * gone, ENOENT): look, so that the line goes to stderr instead of nowhere. A socket
         * that came back in between costs a duplicate line, not a lost one. */
        if (access(JOURNAL_SOCKET, F_OK) < 0 && errno == ENOENT)
                return -ENOENT;
        return 0;
}
