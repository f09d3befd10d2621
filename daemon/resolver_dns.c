/* The one thing the resolver reads from a raw DNS answer itself: the TTL of its records
 * (c-ares 1.18's ares_parse_srv_reply() drops it). Walks the header, the questions and the
 * answer section, every read bounds-checked; names are skipped, never expanded. Fuzzed by
 * tests/fuzz/fuzz_resolver_dns.c. */
#include <errno.h>

#include "resolver_int.h"

#define DNS_HEADER_LEN 12
#define DNS_TYPE_CNAME 5

static uint16_t get16(const unsigned char *p)
{
        return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const unsigned char *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Skip the (possibly compressed) name at *pos. 0 or -EBADMSG. No length limit of its own:
 * every label takes bytes of the buffer, and c-ares, which accepts the answer, sets none. */
static int skip_name(const unsigned char *buf, size_t len, size_t *pos)
{
        size_t p = *pos;

        for (;;) {
                unsigned char b;

                if (p >= len)
                        return -EBADMSG;
                b = buf[p];
                if (b == 0) {
                        *pos = p + 1;
                        return 0;
                }
                if ((b & 0xc0) == 0xc0) { /* a pointer ends the name */
                        if (p + 2 > len)
                                return -EBADMSG;
                        *pos = p + 2;
                        return 0;
                }
                if (b & 0xc0) /* 0x40 and 0x80 label types are obsolete */
                        return -EBADMSG;
                p += (size_t)b + 1;
        }
}

int resolver__dns_answer_ttl(const unsigned char *buf, size_t len, uint16_t type, uint32_t *ttl)
{
        size_t pos = DNS_HEADER_LEN;
        unsigned qd, an;
        uint32_t best = UINT32_MAX;
        int found = 0;

        if (len < DNS_HEADER_LEN)
                return -EBADMSG;
        qd = get16(buf + 4);
        an = get16(buf + 6);
        for (unsigned i = 0; i < qd; i++) {
                if (skip_name(buf, len, &pos) < 0 || pos + 4 > len)
                        return -EBADMSG;
                pos += 4;
        }
        for (unsigned i = 0; i < an; i++) {
                uint16_t rtype, rdlen;
                uint32_t rttl;

                if (skip_name(buf, len, &pos) < 0 || pos + 10 > len)
                        return -EBADMSG;
                rtype = get16(buf + pos);
                rttl = get32(buf + pos + 4);
                rdlen = get16(buf + pos + 8);
                pos += 10;
                if (rdlen > len - pos)
                        return -EBADMSG;
                pos += rdlen;
                if (rtype != type && rtype != DNS_TYPE_CNAME)
                        continue;
                if (rttl > INT32_MAX) /* RFC 2181 8: a TTL with the top bit set means 0 */
                        rttl = 0;
                if (rttl < best)
                        best = rttl;
                found++;
        }
        if (found)
                *ttl = best;
        return found;
}
