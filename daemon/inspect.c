/* Classifying a client's first bytes (inspect.h). A TLS ClientHello is read through a cursor
 * that walks the handshake stream across TLS records (type 22), so a hello split over several
 * records or TCP segments parses the same as a whole one; every length is checked against what
 * remains of its parent (record, message, extension, list) and against the bytes present. */
#include <string.h>

#include "inspect.h"

#define REC_HDR         5
#define REC_MAX         16384 /* a TLSPlaintext fragment is at most 2^14 bytes */
#define HELLO_RECORDS   64    /* records one hello may span: bounds the re-parse work */
#define HT_CLIENT_HELLO 1
#define EXT_SNI         0
#define EXT_ALPN        16

enum { HS_OK, HS_NEED, HS_BAD };

/* The handshake byte stream inside the records of buf[0..len). */
struct hs {
        const uint8_t *buf;
        size_t len, cap;
        size_t pos;     /* next handshake byte in buf */
        size_t rec_end; /* end of the current record's payload (may lie beyond len) */
        unsigned records;
        int err;
        size_t need; /* HS_NEED: parsing again is useless before len reaches this */
};

static bool hs_fill(struct hs *h)
{
        const uint8_t *r;
        size_t n;

        if (h->err)
                return false;
        if (h->pos == h->rec_end) { /* the next record's header */
                r = h->buf + h->rec_end;
                n = h->len - h->rec_end;
                if ((n > 0 && r[0] != 22) || (n > 1 && r[1] != 3)) {
                        h->err = HS_BAD;
                        return false;
                }
                if (n < REC_HDR) {
                        h->err = HS_NEED;
                        h->need = h->rec_end + REC_HDR;
                        return false;
                }
                n = (size_t)r[3] << 8 | r[4];
                if (n == 0 || n > REC_MAX || ++h->records > HELLO_RECORDS ||
                    h->rec_end + REC_HDR + n > h->cap) {
                        h->err = HS_BAD;
                        return false;
                }
                h->pos = h->rec_end + REC_HDR;
                h->rec_end = h->pos + n;
        }
        if (h->pos >= h->len) {
                h->err = HS_NEED;
                h->need = h->rec_end < h->cap ? h->rec_end : h->cap;
                return false;
        }
        return true;
}

/* Take n bytes of the stream into dst (NULL: skip them). */
static bool hs_take(struct hs *h, uint8_t *dst, size_t n)
{
        while (n > 0) {
                size_t k;

                if (!hs_fill(h))
                        return false;
                k = h->rec_end - h->pos;
                if (k > h->len - h->pos)
                        k = h->len - h->pos;
                if (k > n)
                        k = n;
                if (dst) {
                        memcpy(dst, h->buf + h->pos, k);
                        dst += k;
                }
                h->pos += k;
                n -= k;
        }
        return true;
}

/* A big-endian number of n (1..3) bytes, taken from a parent with *rem bytes left. */
static bool hs_num(struct hs *h, size_t *rem, size_t n, size_t *out)
{
        uint8_t b[3];

        if (n > *rem) {
                h->err = h->err ? h->err : HS_BAD;
                return false;
        }
        if (!hs_take(h, b, n))
                return false;
        *rem -= n;
        *out = 0;
        for (size_t i = 0; i < n; i++)
                *out = *out << 8 | b[i];
        return true;
}

/* Skip (or copy into dst) n bytes of a parent with *rem bytes left. */
static bool hs_body(struct hs *h, size_t *rem, uint8_t *dst, size_t n)
{
        if (n > *rem) {
                h->err = h->err ? h->err : HS_BAD;
                return false;
        }
        *rem -= n;
        return hs_take(h, dst, n);
}

static bool bad(struct hs *h)
{
        h->err = HS_BAD;
        return false;
}

/* A host name as RFC 6066 sends it: letters, digits, '-', '_' and dots between labels. */
static bool sni_store(struct hs *h, const uint8_t *name, size_t n, struct inspect_result *out)
{
        if (n > 0 && name[n - 1] == '.')
                n--;
        if (n == 0 || n > INSPECT_SNI_MAX)
                return bad(h);
        for (size_t i = 0; i < n; i++) {
                uint8_t ch = name[i];

                if (ch >= 'A' && ch <= 'Z')
                        ch = (uint8_t)(ch - 'A' + 'a');
                if (ch == '.' ? i == 0 || name[i - 1] == '.'
                              : !((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                                  ch == '-' || ch == '_'))
                        return bad(h);
                out->sni[i] = (char)ch;
        }
        out->sni[n] = '\0';
        return true;
}

static bool parse_sni(struct hs *h, size_t rem, struct inspect_result *out)
{
        uint8_t name[INSPECT_SNI_MAX + 2];
        size_t list, type, n;
        bool seen = false;

        if (!hs_num(h, &rem, 2, &list))
                return false;
        if (list != rem || list == 0)
                return bad(h);
        while (rem > 0) {
                if (!hs_num(h, &rem, 1, &type) || !hs_num(h, &rem, 2, &n))
                        return false;
                if (type != 0) { /* not host_name: skip */
                        if (!hs_body(h, &rem, NULL, n))
                                return false;
                        continue;
                }
                if (seen || n > sizeof(name))
                        return bad(h);
                if (!hs_body(h, &rem, name, n) || !sni_store(h, name, n, out))
                        return false;
                seen = true;
        }
        return true;
}

static bool parse_alpn(struct hs *h, size_t rem, struct inspect_result *out)
{
        uint8_t proto[255];
        size_t list, n;

        if (!hs_num(h, &rem, 2, &list))
                return false;
        if (list != rem || list < 2)
                return bad(h);
        while (rem > 0) {
                if (!hs_num(h, &rem, 1, &n))
                        return false;
                if (n == 0)
                        return bad(h);
                if (!hs_body(h, &rem, proto, n))
                        return false;
                if (out->alpn_len + 1 + n <= sizeof(out->alpn)) {
                        out->alpn[out->alpn_len] = (uint8_t)n;
                        memcpy(out->alpn + out->alpn_len + 1, proto, n);
                        out->alpn_len += 1 + n;
                }
        }
        return true;
}

static bool parse_extensions(struct hs *h, size_t rem, struct inspect_result *out)
{
        size_t total, type, n;
        unsigned seen = 0;

        if (!hs_num(h, &rem, 2, &total))
                return false;
        if (total != rem)
                return bad(h);
        while (rem > 0) {
                if (!hs_num(h, &rem, 2, &type) || !hs_num(h, &rem, 2, &n))
                        return false;
                if (n > rem)
                        return bad(h);
                rem -= n;
                if (type == EXT_SNI || type == EXT_ALPN) {
                        unsigned bit = type == EXT_SNI ? 1 : 2;

                        if (seen & bit) /* an extension appears once (RFC 8446 4.2) */
                                return bad(h);
                        seen |= bit;
                        if (!(type == EXT_SNI ? parse_sni(h, n, out) : parse_alpn(h, n, out)))
                                return false;
                } else if (!hs_take(h, NULL, n)) {
                        return false;
                }
        }
        return true;
}

/* ClientHello: version, random, session id, cipher suites, compression, extensions. */
static bool parse_hello(struct hs *h, struct inspect_result *out)
{
        size_t type, rem = 4, len, n;

        if (!hs_num(h, &rem, 1, &type) || !hs_num(h, &rem, 3, &len))
                return false;
        if (type != HT_CLIENT_HELLO || len < 38 || REC_HDR + 4 + len > h->cap)
                return bad(h);
        rem = len;
        if (!hs_num(h, &rem, 2, &n))
                return false;
        if (n >> 8 != 3)
                return bad(h);
        if (!hs_body(h, &rem, NULL, 32) || !hs_num(h, &rem, 1, &n))
                return false;
        if (n > 32)
                return bad(h);
        if (!hs_body(h, &rem, NULL, n) || !hs_num(h, &rem, 2, &n))
                return false;
        if (n < 2 || n % 2)
                return bad(h);
        if (!hs_body(h, &rem, NULL, n) || !hs_num(h, &rem, 1, &n))
                return false;
        if (n < 1)
                return bad(h);
        if (!hs_body(h, &rem, NULL, n))
                return false;
        return rem == 0 || parse_extensions(h, rem, out);
}

static enum inspect_kind parse_tls(const uint8_t *buf, size_t len, size_t cap,
                                   struct inspect_result *out)
{
        struct hs h = {.buf = buf, .len = len, .cap = cap};

        if (parse_hello(&h, out)) {
                out->need = 0;
                return INSPECT_TLS;
        }
        memset(out->sni, 0, sizeof(out->sni));
        out->alpn_len = 0;
        if (h.err == HS_NEED) {
                out->need = h.need > len ? h.need : len + 1;
                return INSPECT_NEED_MORE;
        }
        return INSPECT_BAD;
}

/* 1: buf starts with pat; 0: it cannot; -1: it may, once more bytes are in. */
static int prefix(const uint8_t *buf, size_t len, const char *pat)
{
        size_t n = strlen(pat);

        if (memcmp(buf, pat, len < n ? len : n) != 0)
                return 0;
        return len >= n ? 1 : -1;
}

static enum inspect_kind parse_plain(const uint8_t *buf, size_t len)
{
        static const char *const methods[] = {"GET ",    "HEAD ",          "POST ",    "PUT ",
                                              "DELETE ", "CONNECT ",       "OPTIONS ", "TRACE ",
                                              "PATCH ",  "PRI * HTTP/2.0", NULL};
        bool maybe = false;
        int m = prefix(buf, len, "SSH-");

        if (m > 0)
                return INSPECT_SSH;
        maybe = m < 0;
        for (size_t i = 0; methods[i]; i++) {
                m = prefix(buf, len, methods[i]);
                if (m > 0)
                        return INSPECT_HTTP;
                maybe |= m < 0;
        }
        return maybe ? INSPECT_NEED_MORE : INSPECT_OTHER;
}

enum inspect_kind inspect_parse(const uint8_t *buf, size_t len, size_t cap,
                                struct inspect_result *out)
{
        memset(out, 0, sizeof(*out));
        out->need = len + 1;
        if (len > cap)
                len = cap;
        if (len == 0)
                out->kind = INSPECT_NEED_MORE;
        else if (buf[0] == 22)
                out->kind = parse_tls(buf, len, cap, out);
        else if ((buf[0] & 0x80) && (len < 3 || buf[2] == 1)) /* SSLv2-style hello */
                out->kind = len < 3 ? INSPECT_NEED_MORE : INSPECT_BAD;
        else
                out->kind = parse_plain(buf, len);
        return out->kind;
}

bool inspect_alpn_offers(const struct inspect_result *res, const char *name)
{
        size_t n = strlen(name);

        for (size_t i = 0; i < res->alpn_len; i += 1 + res->alpn[i])
                if (res->alpn[i] == n && i + 1 + n <= res->alpn_len &&
                    memcmp(res->alpn + i + 1, name, n) == 0)
                        return true;
        return false;
}

const char *inspect_kind_name(enum inspect_kind k)
{
        static const char *const names[] = {
            [INSPECT_NEED_MORE] = "need_more", [INSPECT_TLS] = "tls",     [INSPECT_SSH] = "ssh",
            [INSPECT_HTTP] = "http",           [INSPECT_OTHER] = "other", [INSPECT_BAD] = "bad",
        };

        return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "bad";
}
