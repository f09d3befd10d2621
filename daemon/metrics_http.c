/* Request parsing for the metrics endpoint: "METHOD SP target SP HTTP/1.x" then header lines
 * ("name: value"), ended by an empty line; CRLF or bare LF line ends. Only GET of /metrics, /,
 * /status.js, /status.css and /status.json (any query string) is served; other targets get 404,
 * other methods 405, other HTTP versions 505, anything malformed 400. No allocation, no state
 * between calls. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "metrics_http.h"

static bool is_tchar(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_vchar(char c)
{
        return (unsigned char)c > 0x20 && (unsigned char)c < 0x7f;
}

/* The end of the line starting at p (index of its '\n'), or -1 if none before end. */
static long line_end(const char *buf, size_t p, size_t end)
{
        const char *nl = memchr(buf + p, '\n', end - p);

        return nl ? nl - buf : -1;
}

/* Length of line [p, nl) without a trailing '\r'. */
static size_t line_len(const char *buf, size_t p, size_t nl)
{
        return nl > p && buf[nl - 1] == '\r' ? nl - 1 - p : nl - p;
}

/* The target t[0..n) names, ignoring a query string: 0 and *out set, or -1 (404). */
static int match_target(const char *t, size_t n, enum mhttp_target *out)
{
        static const struct {
                const char *path;
                enum mhttp_target target;
        } known[] = {
            {"/metrics", MHTTP_METRICS},         {"/", MHTTP_STATUS_HTML},
            {"/status.js", MHTTP_STATUS_JS},     {"/status.css", MHTTP_STATUS_CSS},
            {"/status.json", MHTTP_STATUS_JSON},
        };
        const char *q = memchr(t, '?', n);
        size_t path_len = q ? (size_t)(q - t) : n;

        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
                if (strlen(known[i].path) == path_len && memcmp(known[i].path, t, path_len) == 0) {
                        *out = known[i].target;
                        return 0;
                }
        }
        return -1;
}

static int parse_request_line(const char *s, size_t n, struct mhttp_request *out)
{
        size_t i = 0, m, t, tn;

        while (i < n && is_tchar(s[i]))
                i++;
        m = i;
        if (m == 0 || i >= n || s[i] != ' ')
                return 400;
        t = ++i;
        while (i < n && is_vchar(s[i]))
                i++;
        tn = i - t;
        if (tn == 0 || i >= n || s[i] != ' ')
                return 400;
        i++;
        if (n - i != 8 || memcmp(s + i, "HTTP/", 5) != 0 || s[i + 6] != '.' || s[i + 5] < '0' ||
            s[i + 5] > '9' || s[i + 7] < '0' || s[i + 7] > '9')
                return 400;
        if (s[i + 5] != '1')
                return 505;
        out->minor = s[i + 7] - '0';
        if (m != 3 || memcmp(s, "GET", 3) != 0)
                return 405;
        if (match_target(s + t, tn, &out->target) < 0)
                return 404;
        return 200;
}

static bool header_ok(const char *s, size_t n)
{
        size_t i = 0;

        while (i < n && is_tchar(s[i]))
                i++;
        if (i == 0 || i >= n || s[i] != ':')
                return false;
        for (i++; i < n; i++) {
                if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
                        return false;
        }
        return true;
}

int mhttp_parse(const char *buf, size_t len, struct mhttp_request *out)
{
        size_t end = len < MHTTP_MAX_REQUEST ? len : MHTTP_MAX_REQUEST;
        long nl = line_end(buf, 0, end);
        size_t p;
        bool bad = false;

        *out = (struct mhttp_request){.status = 400};
        if (nl < 0)
                return len >= MHTTP_MAX_REQUEST ? -EMSGSIZE : 0;
        out->status = parse_request_line(buf, line_len(buf, 0, (size_t)nl), out);
        if (out->status == 400 || out->status == 505)
                return (int)nl + 1;
        for (p = (size_t)nl + 1;; p = (size_t)nl + 1) {
                size_t n;

                nl = line_end(buf, p, end);
                if (nl < 0)
                        return len >= MHTTP_MAX_REQUEST ? -EMSGSIZE : 0;
                n = line_len(buf, p, (size_t)nl);
                if (n == 0)
                        break;
                if (!header_ok(buf + p, n))
                        bad = true;
        }
        if (bad)
                out->status = 400;
        return (int)nl + 1;
}

const char *mhttp_reason(int status)
{
        switch (status) {
        case 200:
                return "OK";
        case 404:
                return "Not Found";
        case 405:
                return "Method Not Allowed";
        case 505:
                return "HTTP Version Not Supported";
        default:
                return "Bad Request";
        }
}
