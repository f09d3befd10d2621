/* PROXY protocol: v1/v2 parsing of good, partial, malformed and oversized headers, and
 * round trips through the builders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "proxy_proto.h"

static int parse_str(const char *s, struct pp_header *h)
{
        return pp_parse((const uint8_t *)s, strlen(s), h);
}

static void test_v1_tcp4(void **state)
{
        struct pp_header h;
        const char *s = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET /";
        assert_int_equal(parse_str(s, &h), 45);
        assert_int_equal(h.version, 1);
        assert_false(h.local);
        const struct sockaddr_in *src = (const void *)&h.src, *dst = (const void *)&h.dst;
        assert_int_equal(src->sin_family, AF_INET);
        assert_int_equal(ntohs(src->sin_port), 56324);
        assert_int_equal(ntohs(dst->sin_port), 443);
        assert_int_equal(ntohl(src->sin_addr.s_addr), 0xC0000201);
        assert_int_equal(ntohl(dst->sin_addr.s_addr), 0xC6336402);
}

static void test_v1_tcp6_and_unknown(void **state)
{
        struct pp_header h;
        assert_true(parse_str("PROXY TCP6 2001:db8::1 ::1 1 65535\r\n", &h) > 0);
        assert_int_equal(h.src.ss_family, AF_INET6);
        assert_int_equal(ntohs(((struct sockaddr_in6 *)&h.dst)->sin6_port), 65535);
        assert_int_equal(parse_str("PROXY UNKNOWN\r\n", &h), 15);
        assert_true(h.local);
        assert_true(parse_str("PROXY UNKNOWN ffff:f...f 1.2.3.4 0 0\r\n", &h) > 0);
        assert_true(h.local);
}

static void test_v1_partial_needs_more(void **state)
{
        struct pp_header h;
        const char *full = "PROXY TCP4 10.0.0.1 10.0.0.2 1000 2000\r\n";
        for (size_t n = 0; n < strlen(full); n++)
                assert_int_equal(pp_parse((const uint8_t *)full, n, &h), 0);
        assert_true(pp_parse((const uint8_t *)full, strlen(full), &h) > 0);
}

static void test_v1_malformed(void **state)
{
        struct pp_header h;
        const char *bad[] = {
            "PROXY TCP4 10.0.0.1 10.0.0.2 1000\r\n",        /* missing field */
            "PROXY TCP4 10.0.0.1 10.0.0.2 1000 2000 x\r\n", /* extra field */
            "PROXY TCP5 10.0.0.1 10.0.0.2 1000 2000\r\n",   /* protocol */
            "PROXY TCP4 10.0.0.256 10.0.0.2 1000 2000\r\n", /* address */
            "PROXY TCP4 ::1 ::1 1000 2000\r\n",             /* family mismatch */
            "PROXY TCP4 10.0.0.1 10.0.0.2 65536 2000\r\n",  /* port range */
            "PROXY TCP4 10.0.0.1 10.0.0.2 -1 2000\r\n",     /* sign */
            "PROXY TCP4 10.0.0.1 10.0.0.2 0080 2000\r\n",   /* leading zero */
            "PROXX TCP4 10.0.0.1 10.0.0.2 1 2\r\n",         /* signature */
            "GET / HTTP/1.0\r\n",                           /* not a header at all */
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(parse_str(bad[i], &h), -EPROTO);
}

static void test_v1_too_long_without_crlf(void **state)
{
        char s[200];
        struct pp_header h;
        memset(s, 'A', sizeof(s));
        memcpy(s, "PROXY TCP4 ", 11);
        assert_int_equal(pp_parse((const uint8_t *)s, PP_V1_MAX - 1, &h), 0);
        assert_int_equal(pp_parse((const uint8_t *)s, PP_V1_MAX, &h), -EPROTO);
        assert_int_equal(pp_parse((const uint8_t *)s, sizeof(s), &h), -EPROTO);
}

static void make_in(struct sockaddr_in *a, const char *ip, uint16_t port)
{
        memset(a, 0, sizeof(*a));
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        inet_pton(AF_INET, ip, &a->sin_addr);
}

static void make_in6(struct sockaddr_in6 *a, const char *ip, uint16_t port)
{
        memset(a, 0, sizeof(*a));
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        inet_pton(AF_INET6, ip, &a->sin6_addr);
}

static void test_round_trip_v1_v2(void **state)
{
        struct sockaddr_in s4, d4;
        struct sockaddr_in6 s6, d6;
        uint8_t buf[256];
        struct pp_header h;
        int n;

        make_in(&s4, "203.0.113.7", 40000);
        make_in(&d4, "127.0.0.1", 8080);
        make_in6(&s6, "2001:db8::7", 40001);
        make_in6(&d6, "::1", 8081);

        n = pp_build_v1((struct sockaddr *)&s4, (struct sockaddr *)&d4, (char *)buf, sizeof(buf));
        assert_string_equal((char *)buf, "PROXY TCP4 203.0.113.7 127.0.0.1 40000 8080\r\n");
        assert_int_equal(pp_parse(buf, (size_t)n, &h), n);
        assert_memory_equal(&h.src, &s4, sizeof(s4));

        n = pp_build_v2((struct sockaddr *)&s6, (struct sockaddr *)&d6, buf, sizeof(buf));
        assert_int_equal(n, 16 + 36);
        assert_int_equal(pp_parse(buf, (size_t)n, &h), n);
        assert_int_equal(h.version, 2);
        assert_memory_equal(&h.src, &s6, sizeof(s6));
        assert_memory_equal(&h.dst, &d6, sizeof(d6));
        for (int i = 0; i < n; i++) /* every prefix asks for more */
                assert_int_equal(pp_parse(buf, (size_t)i, &h), 0);

        n = pp_build_v2((struct sockaddr *)&s4, (struct sockaddr *)&d4, buf, sizeof(buf));
        assert_int_equal(n, 28);
        assert_int_equal(pp_parse(buf, (size_t)n, &h), n);
        assert_memory_equal(&h.src, &s4, sizeof(s4));

        /* Unix clients have no inet address to pass on: LOCAL / UNKNOWN. */
        struct sockaddr_un u = {.sun_family = AF_UNIX};
        n = pp_build_v2((struct sockaddr *)&u, (struct sockaddr *)&u, buf, sizeof(buf));
        assert_int_equal(n, 16);
        assert_int_equal(pp_parse(buf, (size_t)n, &h), 16);
        assert_true(h.local);
        n = pp_build_v1((struct sockaddr *)&u, (struct sockaddr *)&d4, (char *)buf, sizeof(buf));
        assert_string_equal((char *)buf, "PROXY UNKNOWN\r\n");
        assert_int_equal(
            pp_build_v1((struct sockaddr *)&s4, (struct sockaddr *)&d4, (char *)buf, 10), -ENOBUFS);
}

static void test_v2_malformed_and_oversized(void **state)
{
        struct sockaddr_in s4, d4;
        uint8_t buf[2048];
        struct pp_header h;

        make_in(&s4, "10.1.1.1", 1);
        make_in(&d4, "10.1.1.2", 2);
        int n = pp_build_v2((struct sockaddr *)&s4, (struct sockaddr *)&d4, buf, sizeof(buf));

        buf[12] = 0x31; /* version 3 */
        assert_int_equal(pp_parse(buf, (size_t)n, &h), -EPROTO);
        buf[12] = 0x22; /* command 2 */
        assert_int_equal(pp_parse(buf, (size_t)n, &h), -EPROTO);
        buf[12] = 0x21;
        buf[13] = 0x21; /* claims IPv6 but only 12 bytes of addresses */
        assert_int_equal(pp_parse(buf, (size_t)n, &h), -EPROTO);
        buf[13] = 0x99; /* unknown family */
        assert_int_equal(pp_parse(buf, (size_t)n, &h), -EPROTO);
        buf[13] = 0x11;
        buf[14] = 0x10; /* 4096 bytes of TLVs */
        buf[15] = 0x00;
        assert_int_equal(pp_parse(buf, 16, &h), -EMSGSIZE);
        /* TLVs within the limit are skipped. */
        buf[14] = 0x00;
        buf[15] = 12 + 8;
        memset(buf + 28, 0xEE, 8);
        assert_int_equal(pp_parse(buf, 36, &h), 36);
        buf[5] = 0x0C; /* signature byte */
        assert_int_equal(pp_parse(buf, 36, &h), -EPROTO);
        assert_int_equal(pp_parse(buf, 5, &h), 0); /* a prefix still matches */
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_v1_tcp4),
            cmocka_unit_test(test_v1_tcp6_and_unknown),
            cmocka_unit_test(test_v1_partial_needs_more),
            cmocka_unit_test(test_v1_malformed),
            cmocka_unit_test(test_v1_too_long_without_crlf),
            cmocka_unit_test(test_round_trip_v1_v2),
            cmocka_unit_test(test_v2_malformed_and_oversized),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
