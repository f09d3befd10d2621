/* PROXY protocol parsing and building (haproxy.org/download/1.8/doc/proxy-protocol.txt).
 * v1: "PROXY TCP4|TCP6|UNKNOWN src dst sport dport\r\n", at most 107 bytes. v2: 12-byte
 * signature, version/command, family/transport, 16-bit length, addresses, then TLVs (skipped). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_proto.h"

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static bool prefix_matches(const uint8_t *buf, size_t len, const void *want, size_t want_len)
{
        size_t n = len < want_len ? len : want_len;
        return memcmp(buf, want, n) == 0;
}

/* A decimal port: 1-5 digits, no sign, no leading zero (except "0" itself), at most 65535. */
static int parse_port(const char *s, uint16_t *out)
{
        size_t n = strlen(s);
        unsigned long v = 0;

        if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
                return -EPROTO;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EPROTO;
                v = v * 10 + (unsigned long)(s[i] - '0');
        }
        if (v > 65535)
                return -EPROTO;
        *out = (uint16_t)v;
        return 0;
}

static int v1_addr(int family, const char *host, const char *port, struct sockaddr_storage *ss,
                   socklen_t *len)
{
        uint16_t p;

        if (parse_port(port, &p) < 0)
                return -EPROTO;
        memset(ss, 0, sizeof(*ss));
        if (family == AF_INET) {
                struct sockaddr_in *sin = (struct sockaddr_in *)ss;
                sin->sin_family = AF_INET;
                sin->sin_port = htons(p);
                if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
                        return -EPROTO;
                *len = sizeof(*sin);
        } else {
                struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
                sin6->sin6_family = AF_INET6;
                sin6->sin6_port = htons(p);
                if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
                        return -EPROTO;
                *len = sizeof(*sin6);
        }
        return 0;
}

static int parse_v1(const uint8_t *buf, size_t len, struct pp_header *out)
{
        char line[PP_V1_MAX + 1], *fields[7], *save = NULL;
        const uint8_t *crlf = NULL;
        size_t n = 0;
        int family;

        for (size_t i = 0; i + 1 < len && i + 1 < PP_V1_MAX; i++) {
                if (buf[i] == '\r' && buf[i + 1] == '\n') {
                        crlf = buf + i;
                        break;
                }
        }
        if (!crlf)
                return len >= PP_V1_MAX ? -EPROTO : 0;
        memcpy(line, buf, (size_t)(crlf - buf));
        line[crlf - buf] = 0;
        if (strlen(line) != (size_t)(crlf - buf))
                return -EPROTO; /* NUL inside the line */
        for (char *tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
                if (n == 6)
                        return -EPROTO;
                fields[n++] = tok;
        }
        *out = (struct pp_header){.version = 1, .len = (size_t)(crlf - buf) + 2};
        if (n >= 2 && strcmp(fields[1], "UNKNOWN") == 0) {
                out->local = true; /* the rest of the line is to be ignored */
                return (int)out->len;
        }
        if (n != 6)
                return -EPROTO;
        if (strcmp(fields[1], "TCP4") == 0)
                family = AF_INET;
        else if (strcmp(fields[1], "TCP6") == 0)
                family = AF_INET6;
        else
                return -EPROTO;
        if (v1_addr(family, fields[2], fields[4], &out->src, &out->src_len) < 0 ||
            v1_addr(family, fields[3], fields[5], &out->dst, &out->dst_len) < 0)
                return -EPROTO;
        return (int)out->len;
}

static void put_in(struct sockaddr_storage *ss, socklen_t *len, const uint8_t *addr,
                   const uint8_t *port)
{
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        memset(ss, 0, sizeof(*ss));
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, addr, 4);
        memcpy(&sin->sin_port, port, 2);
        *len = sizeof(*sin);
}

static void put_in6(struct sockaddr_storage *ss, socklen_t *len, const uint8_t *addr,
                    const uint8_t *port)
{
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        memset(ss, 0, sizeof(*ss));
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, addr, 16);
        memcpy(&sin6->sin6_port, port, 2);
        *len = sizeof(*sin6);
}

static int parse_v2(const uint8_t *buf, size_t len, struct pp_header *out)
{
        size_t body, total;
        uint8_t ver_cmd, fam;

        if (len < PP_V2_HDR)
                return 0;
        ver_cmd = buf[12];
        fam = buf[13];
        body = ((size_t)buf[14] << 8) | buf[15];
        total = PP_V2_HDR + body;
        if ((ver_cmd & 0xF0) != 0x20 || (ver_cmd & 0x0F) > 1)
                return -EPROTO;
        if (total > PP_MAX_LEN)
                return -EMSGSIZE;
        if (len < total)
                return 0;
        *out = (struct pp_header){.version = 2, .len = total};
        if ((ver_cmd & 0x0F) == 0) { /* LOCAL: health checks and the like */
                out->local = true;
                return (int)total;
        }
        switch (fam) {
        case 0x11: /* TCP over IPv4 */
        case 0x12: /* UDP over IPv4 */
                if (body < 12)
                        return -EPROTO;
                put_in(&out->src, &out->src_len, buf + 16, buf + 24);
                put_in(&out->dst, &out->dst_len, buf + 20, buf + 26);
                break;
        case 0x21:
        case 0x22:
                if (body < 36)
                        return -EPROTO;
                put_in6(&out->src, &out->src_len, buf + 16, buf + 48);
                put_in6(&out->dst, &out->dst_len, buf + 32, buf + 50);
                break;
        case 0x00: /* UNSPEC: the receiver must ignore the addresses */
        case 0x31: /* AF_UNIX addresses carry nothing an inet ACL can use */
        case 0x32:
                out->local = true;
                break;
        default:
                return -EPROTO;
        }
        return (int)total;
}

int pp_parse(const uint8_t *buf, size_t len, struct pp_header *out)
{
        if (len == 0)
                return 0;
        if (buf[0] == 'P') {
                if (!prefix_matches(buf, len, "PROXY ", 6))
                        return -EPROTO;
                return len < 6 ? 0 : parse_v1(buf, len, out);
        }
        if (!prefix_matches(buf, len, v2_sig, sizeof(v2_sig)))
                return -EPROTO;
        return parse_v2(buf, len, out);
}

static bool same_inet_family(const struct sockaddr *a, const struct sockaddr *b)
{
        return a && b && a->sa_family == b->sa_family &&
               (a->sa_family == AF_INET || a->sa_family == AF_INET6);
}

int pp_build_v1(const struct sockaddr *src, const struct sockaddr *dst, char *buf, size_t size)
{
        char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
        int n;

        if (!same_inet_family(src, dst)) {
                n = snprintf(buf, size, "PROXY UNKNOWN\r\n");
        } else if (src->sa_family == AF_INET) {
                const struct sockaddr_in *a = (const void *)src, *b = (const void *)dst;
                inet_ntop(AF_INET, &a->sin_addr, s, sizeof(s));
                inet_ntop(AF_INET, &b->sin_addr, d, sizeof(d));
                n = snprintf(buf, size, "PROXY TCP4 %s %s %u %u\r\n", s, d, ntohs(a->sin_port),
                             ntohs(b->sin_port));
        } else {
                const struct sockaddr_in6 *a = (const void *)src, *b = (const void *)dst;
                inet_ntop(AF_INET6, &a->sin6_addr, s, sizeof(s));
                inet_ntop(AF_INET6, &b->sin6_addr, d, sizeof(d));
                n = snprintf(buf, size, "PROXY TCP6 %s %s %u %u\r\n", s, d, ntohs(a->sin6_port),
                             ntohs(b->sin6_port));
        }
        return n < 0 || (size_t)n >= size ? -ENOBUFS : n;
}

int pp_build_v2(const struct sockaddr *src, const struct sockaddr *dst, uint8_t *buf, size_t size)
{
        size_t body = 0;

        if (size < PP_V2_HDR)
                return -ENOBUFS;
        memcpy(buf, v2_sig, sizeof(v2_sig));
        if (!same_inet_family(src, dst)) {
                buf[12] = 0x20; /* LOCAL */
                buf[13] = 0x00;
        } else if (src->sa_family == AF_INET) {
                const struct sockaddr_in *a = (const void *)src, *b = (const void *)dst;
                body = 12;
                if (size < PP_V2_HDR + body)
                        return -ENOBUFS;
                buf[12] = 0x21;
                buf[13] = 0x11;
                memcpy(buf + 16, &a->sin_addr, 4);
                memcpy(buf + 20, &b->sin_addr, 4);
                memcpy(buf + 24, &a->sin_port, 2);
                memcpy(buf + 26, &b->sin_port, 2);
        } else {
                const struct sockaddr_in6 *a = (const void *)src, *b = (const void *)dst;
                body = 36;
                if (size < PP_V2_HDR + body)
                        return -ENOBUFS;
                buf[12] = 0x21;
                buf[13] = 0x21;
                memcpy(buf + 16, &a->sin6_addr, 16);
                memcpy(buf + 32, &b->sin6_addr, 16);
                memcpy(buf + 48, &a->sin6_port, 2);
                memcpy(buf + 50, &b->sin6_port, 2);
        }
        buf[14] = (uint8_t)(body >> 8);
        buf[15] = (uint8_t)body;
        return (int)(PP_V2_HDR + body);
}
