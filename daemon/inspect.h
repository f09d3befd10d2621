/* What a client's first bytes say, for routing on a shared listen address (match = { ... }):
 * a TLS ClientHello (its SNI and ALPN), an SSH banner, an HTTP request line, or something
 * else. A pure function over the bytes read so far: no sockets, no allocation, every length
 * checked against what remains, so it is fuzzed directly (tests/fuzz/fuzz_inspect.c). */
#ifndef EVPROXYD_INSPECT_H
#define EVPROXYD_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INSPECT_SNI_MAX  253 /* a DNS name, without the trailing dot */
#define INSPECT_ALPN_MAX 256 /* bytes of the ALPN list kept (wire format: len, name, ...) */

enum inspect_kind {
        INSPECT_NEED_MORE, /* undecided: read more (or give up at the limit or timeout) */
        INSPECT_TLS,       /* a whole, well-formed ClientHello */
        INSPECT_SSH,       /* "SSH-" */
        INSPECT_HTTP,      /* an HTTP/1 request line's method and space, or the h2 preface */
        INSPECT_OTHER,     /* none of these */
        INSPECT_BAD,       /* a TLS record or ClientHello that is malformed or cannot fit */
};

struct inspect_result {
        enum inspect_kind kind;
        char sni[INSPECT_SNI_MAX + 1];  /* lower-cased, trailing dot removed; "" = no SNI */
        uint8_t alpn[INSPECT_ALPN_MAX]; /* the client's protocols, as on the wire */
        size_t alpn_len;                /* whole entries only: later ones that do not fit go */
        size_t need; /* NEED_MORE: parsing again is useless before this many bytes are in */
};

/* Classify buf[0..len). cap is the most the caller will ever hand over (its buffer): a
 * ClientHello that cannot fit in cap bytes is INSPECT_BAD at once instead of NEED_MORE. */
enum inspect_kind inspect_parse(const uint8_t *buf, size_t len, size_t cap,
                                struct inspect_result *out);

/* Does the client offer ALPN protocol name (NUL-terminated)? */
bool inspect_alpn_offers(const struct inspect_result *res, const char *name);

/* "tls", "ssh", "http", "other", "bad" or "need_more". */
const char *inspect_kind_name(enum inspect_kind k);

#endif
