/* Logging: "<N>message\n" on stderr, one write() per line (atomic for lines up to PIPE_BUF, so
 * worker threads never interleave inside a line). Newlines inside a message become spaces so
 * one event is always one line. The level filter is a relaxed atomic read. Under journald
 * (log_journal.h) the same message goes to the journal with fields instead, and to stderr
 * still if the journal does not take it. */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "log_journal.h"

static atomic_int log_level = LOG_INFO;

void log_set_level(int level)
{
        atomic_store_explicit(&log_level, level, memory_order_relaxed);
}

bool log_enabled(int prio)
{
        return prio <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

/* Append to buf (capacity cap, excluding the final newline); clamps at cap. */
static size_t append_v(char *buf, size_t pos, size_t cap, const char *fmt, va_list ap)
{
        int n;

        if (pos >= cap)
                return cap;
        n = vsnprintf(buf + pos, cap - pos + 1, fmt, ap);
        if (n < 0)
                return pos;
        pos += (size_t)n;
        return pos > cap ? cap : pos;
}

static size_t append(char *buf, size_t pos, size_t cap, const char *fmt, ...) LOG_PRINTF(4, 5);
static size_t append(char *buf, size_t pos, size_t cap, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        pos = append_v(buf, pos, cap, fmt, ap);
        va_end(ap);
        return pos;
}

/* buf[0..len) is "<N>" (prefix bytes) then the message; buf has room for one more byte. */
static void emit(int prio, int err, char *buf, size_t prefix, size_t len,
                 const struct log_journal_access *a)
{
        ssize_t n;

        for (size_t i = 0; i < len; i++)
                if (buf[i] == '\n' || buf[i] == '\r')
                        buf[i] = ' ';
        if (log_journal_enabled() &&
            log_journal_send(prio, err, buf + prefix, len - prefix, a) == 0)
                return;
        buf[len++] = '\n';
        do
                n = write(STDERR_FILENO, buf, len);
        while (n < 0 && errno == EINTR);
}

static void log_line(int prio, int r, const char *fmt, va_list ap)
{
        char buf[LOG_LINE_MAX + 2];
        const size_t cap = LOG_LINE_MAX;
        size_t prefix, pos;

        prefix = pos = append(buf, 0, cap, "<%d>", prio);
        pos = append_v(buf, pos, cap, fmt, ap);
        if (r < 0) {
                char ebuf[128];

                pos = append(buf, pos, cap, ": %s", strerror_r(-r, ebuf, sizeof(ebuf)));
        }
        emit(prio, r, buf, prefix, pos, NULL);
}

void log_printf(int prio, const char *fmt, ...)
{
        va_list ap;
        int saved = errno;

        if (!log_enabled(prio))
                return;
        va_start(ap, fmt);
        log_line(prio, 0, fmt, ap);
        va_end(ap);
        errno = saved;
}

int log_errno(int prio, int r, const char *fmt, ...)
{
        va_list ap;
        int saved = errno;

        if (!log_enabled(prio))
                return r;
        va_start(ap, fmt);
        log_line(prio, r, fmt, ap);
        va_end(ap);
        errno = saved;
        return r;
}

void log_access_id(uint64_t conn_id, const char *route, const char *client, const char *upstream,
                   uint64_t bytes_in, uint64_t bytes_out, uint64_t duration_ms, const char *end,
                   const char *more)
{
        const struct log_journal_access a = {
            .conn_id = conn_id,
            .route = route,
            .client = client,
            .upstream = upstream,
            .end = end,
            .bytes_in = bytes_in,
            .bytes_out = bytes_out,
            .duration_ms = duration_ms,
        };
        char buf[LOG_LINE_MAX + 2];
        size_t prefix, pos;

        prefix = append(buf, 0, LOG_LINE_MAX, "<%d>", LOG_INFO);
        pos = append(buf, prefix, LOG_LINE_MAX,
                     "access route=%s client=%s upstream=%s bytes_in=%llu bytes_out=%llu "
                     "duration_ms=%llu end=%s%s",
                     route, client, upstream, (unsigned long long)bytes_in,
                     (unsigned long long)bytes_out, (unsigned long long)duration_ms, end, more);
        emit(LOG_INFO, 0, buf, prefix, pos, &a);
}

void log_access(const char *route, const char *client, const char *upstream, uint64_t bytes_in,
                uint64_t bytes_out, uint64_t duration_ms, const char *end)
{
        log_access_id(0, route, client, upstream, bytes_in, bytes_out, duration_ms, end, "");
}
