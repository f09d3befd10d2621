/* PROXY protocol v1 (text) and v2 (binary), as HAProxy specifies them: parse a header a client
 * sent before its data, and build one to send to an upstream. Pure functions over buffers: no
 * sockets, no allocation, so they are fuzzed directly. */
#ifndef EVPROXYD_PROXY_PROTO_H
#define EVPROXYD_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PP_V1_MAX  107 /* "PROXY TCP6 <39> <39> <5> <5>\r\n" */
#define PP_V2_HDR  16
#define PP_MAX_LEN 1024 /* larger v2 headers (TLVs) are refused as oversized */

struct pp_header {
        int version; /* 1 or 2 */
        bool local;  /* v2 LOCAL or v1 UNKNOWN: keep the connection's own addresses */
        struct sockaddr_storage src, dst;
        socklen_t src_len, dst_len;
        size_t len; /* bytes the header takes, data starts after them */
};

/* Parse the start of a stream. Returns the header length (> 0) when a whole header is there,
 * 0 when more bytes are needed, -EPROTO when it is malformed or not a PROXY header, -EMSGSIZE
 * when it is larger than PP_MAX_LEN. */
int pp_parse(const uint8_t *buf, size_t len, struct pp_header *out);

/* Build a header for a connection from src to dst into buf. Addresses of another family than
 * AF_INET/AF_INET6 (or mixed families) give v1 "UNKNOWN" / v2 LOCAL. Returns the length or
 * -ENOBUFS. */
int pp_build_v1(const struct sockaddr *src, const struct sockaddr *dst, char *buf, size_t size);
int pp_build_v2(const struct sockaddr *src, const struct sockaddr *dst, uint8_t *buf, size_t size);

#endif
