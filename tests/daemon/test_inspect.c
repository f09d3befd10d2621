/* First-bytes inspection (daemon/inspect.c): hand-built ClientHellos whole, one byte per call,
 * split over TLS records, padded to 8 KiB, over the limit, truncated and malformed; SSH and
 * HTTP openings; garbage and SSLv2-style hellos. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inspect.h"

#define CAP 16384

struct bytes {
        uint8_t d[70000];
        size_t n;
};

static void put(struct bytes *b, const void *p, size_t n)
{
        assert_true(b->n + n <= sizeof(b->d));
        memcpy(b->d + b->n, p, n);
        b->n += n;
}

static void put_num(struct bytes *b, size_t v, size_t width)
{
        for (size_t i = width; i-- > 0;) {
                uint8_t x = (uint8_t)(v >> (8 * i));
                put(b, &x, 1);
        }
}

static void put_ext(struct bytes *b, unsigned type, const struct bytes *body)
{
        put_num(b, type, 2);
        put_num(b, body->n, 2);
        put(b, body->d, body->n);
}

/* A ClientHello handshake message (type + length + body) with the SNI (NULL: none), ALPN
 * ("h2,http/1.1"; NULL: none), and a padding extension of pad bytes. */
static void hello(struct bytes *msg, const char *sni, const char *alpn, size_t pad)
{
        static struct bytes body, exts, e;
        uint8_t random[32] = {7};

        body.n = exts.n = 0;
        put_num(&body, 0x0303, 2);
        put(&body, random, sizeof(random));
        put_num(&body, 0, 1); /* session id */
        put_num(&body, 4, 2); /* cipher suites */
        put_num(&body, 0x1301, 2);
        put_num(&body, 0x1302, 2);
        put_num(&body, 1, 1); /* compression: null */
        put_num(&body, 0, 1);
        if (sni) {
                e.n = 0;
                put_num(&e, strlen(sni) + 3, 2);
                put_num(&e, 0, 1);
                put_num(&e, strlen(sni), 2);
                put(&e, sni, strlen(sni));
                put_ext(&exts, 0, &e);
        }
        if (alpn) {
                char copy[256], *save = NULL;
                struct bytes list = {.n = 0};

                snprintf(copy, sizeof(copy), "%s", alpn);
                for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                        put_num(&list, strlen(t), 1);
                        put(&list, t, strlen(t));
                }
                e.n = 0;
                put_num(&e, list.n, 2);
                put(&e, list.d, list.n);
                put_ext(&exts, 16, &e);
        }
        if (pad) {
                e.n = 0;
                memset(e.d, 0, pad);
                e.n = pad;
                put_ext(&exts, 21, &e);
        }
        put_num(&body, exts.n, 2);
        put(&body, exts.d, exts.n);
        msg->n = 0;
        put_num(msg, 1, 1);
        put_num(msg, body.n, 3);
        put(msg, body.d, body.n);
}

/* msg framed in handshake records of at most rec bytes of payload each. */
static void frame(struct bytes *out, const struct bytes *msg, size_t rec)
{
        out->n = 0;
        for (size_t off = 0; off < msg->n; off += rec) {
                size_t n = msg->n - off < rec ? msg->n - off : rec;

                put_num(out, 22, 1);
                put_num(out, 0x0301, 2);
                put_num(out, n, 2);
                put(out, msg->d + off, n);
        }
}

static struct bytes msg, wire;

static enum inspect_kind parse(const void *p, size_t n, struct inspect_result *r)
{
        return inspect_parse(p, n, CAP, r);
}

static void test_whole_hello_sni_lowercased(void **state)
{
        struct inspect_result r;

        hello(&msg, "API.Example.COM.", NULL, 0);
        frame(&wire, &msg, 16384);
        assert_int_equal(parse(wire.d, wire.n, &r), INSPECT_TLS);
        assert_string_equal(r.sni, "api.example.com");
        assert_int_equal(r.alpn_len, 0);
}

/* Every prefix needs more, and a larger buffer (data after the hello) changes nothing. */
static void check_prefixes(const struct bytes *w, const char *sni)
{
        struct inspect_result r;

        for (size_t n = 0; n < w->n; n++) {
                assert_int_equal(parse(w->d, n, &r), INSPECT_NEED_MORE);
                assert_true(r.need > n);
        }
        assert_int_equal(parse(w->d, w->n, &r), INSPECT_TLS);
        assert_string_equal(r.sni, sni);
}

static void test_one_byte_per_call(void **state)
{
        hello(&msg, "one.example.org", "h2", 0);
        frame(&wire, &msg, 16384);
        check_prefixes(&wire, "one.example.org");
}

static void test_split_over_records(void **state)
{
        struct inspect_result r;

        hello(&msg, "split.example.org", "h2,http/1.1", 1500);
        for (size_t rec = 1; rec < 200; rec += 37) {
                frame(&wire, &msg, rec < 30 ? 30 : rec);
                check_prefixes(&wire, "split.example.org");
                assert_int_equal(parse(wire.d, wire.n, &r), INSPECT_TLS);
                assert_true(inspect_alpn_offers(&r, "h2"));
                assert_true(inspect_alpn_offers(&r, "http/1.1"));
                assert_false(inspect_alpn_offers(&r, "http/1"));
        }
}

static void test_too_many_records(void **state)
{
        struct inspect_result r;

        hello(&msg, "x.example", NULL, 200);
        frame(&wire, &msg, 2); /* ~130 records */
        assert_int_equal(parse(wire.d, wire.n, &r), INSPECT_BAD);
}

static void test_padded_to_8k(void **state)
{
        struct inspect_result r;

        hello(&msg, "big.example.net", "http/1.1", 8192);
        frame(&wire, &msg, 16384);
        assert_true(wire.n > 8192);
        assert_int_equal(parse(wire.d, wire.n, &r), INSPECT_TLS);
        assert_string_equal(r.sni, "big.example.net");
        assert_true(inspect_alpn_offers(&r, "http/1.1"));
        assert_false(inspect_alpn_offers(&r, "h2"));
        frame(&wire, &msg, 1000);
        assert_int_equal(parse(wire.d, wire.n, &r), INSPECT_TLS);
}

/* A hello that cannot fit in the buffer is bad as soon as its length is known. */
static void test_over_the_limit(void **state)
{
        struct inspect_result r;

        hello(&msg, "huge.example.net", NULL, 20000);
        frame(&wire, &msg, 16384);
        assert_int_equal(parse(wire.d, 9, &r), INSPECT_BAD);
        hello(&msg, "big.example.net", NULL, 4100);
        frame(&wire, &msg, 16384);
        assert_int_equal(inspect_parse(wire.d, 100, 4096, &r), INSPECT_BAD);
        assert_int_equal(inspect_parse(wire.d, 100, 8192, &r), INSPECT_NEED_MORE);
        /* A record longer than 2^14 is malformed whatever the buffer. */
        assert_int_equal(inspect_parse((const uint8_t *)"\x16\x03\x01\x40\x01", 5, 65536, &r),
                         INSPECT_BAD);
}

static void test_truncated_and_malformed(void **state)
{
        struct inspect_result r;
        uint8_t b[4096];

        hello(&msg, "t.example", "h2", 0);
        frame(&wire, &msg, 16384);
        memcpy(b, wire.d, wire.n);
        /* extensions length one more than the message holds */
        b[5 + 4 + 2 + 32 + 1 + 2 + 4 + 2 + 1] += 1;
        assert_int_equal(parse(b, wire.n, &r), INSPECT_BAD);
        memcpy(b, wire.d, wire.n);
        b[5] = 2; /* a ServerHello */
        assert_int_equal(parse(b, wire.n, &r), INSPECT_BAD);
        memcpy(b, wire.d, wire.n);
        b[0] = 22;
        b[1] = 2; /* not TLS 1.x */
        assert_int_equal(parse(b, 2, &r), INSPECT_BAD);
        /* a zero-length record */
        assert_int_equal(parse((const uint8_t *)"\x16\x03\x01\x00\x00\x16", 6, &r), INSPECT_BAD);
        /* an alert record in the middle of the hello */
        frame(&wire, &msg, 20);
        memcpy(b, wire.d, wire.n);
        b[25] = 21;
        assert_int_equal(parse(b, wire.n, &r), INSPECT_BAD);
}

static void test_bad_names_and_duplicates(void **state)
{
        struct inspect_result r;
        const char *bad[] = {"a..b", ".a", "a b", "x\xff", "a/b", ".", NULL};

        for (size_t i = 0; bad[i]; i++) {
                hello(&msg, bad[i], NULL, 0);
                frame(&wire, &msg, 16384);
                assert_int_equal(parse(wire.d, wire.n, &r), INSPECT_BAD);
        }
        hello(&msg, "under_score-1.example", NULL, 0);
        frame(&wire, &msg, 16384);
        assert_int_equal(parse(wire.d, wire.n, &r), INSPECT_TLS);
        /* the same extension twice */
        hello(&msg, "dup.example", NULL, 0);
        {
                size_t ext_at = 4 + 2 + 32 + 1 + 2 + 4 + 2 + 2, ext_len = msg.n - ext_at;
                struct bytes m2 = {.n = 0};

                put(&m2, msg.d, ext_at);
                put(&m2, msg.d + ext_at, ext_len);
                put(&m2, msg.d + ext_at, ext_len);
                m2.d[1] = (uint8_t)((m2.n - 4) >> 16);
                m2.d[2] = (uint8_t)((m2.n - 4) >> 8);
                m2.d[3] = (uint8_t)(m2.n - 4);
                m2.d[ext_at - 2] = (uint8_t)(2 * ext_len >> 8);
                m2.d[ext_at - 1] = (uint8_t)(2 * ext_len);
                frame(&wire, &m2, 16384);
                assert_int_equal(parse(wire.d, wire.n, &r), INSPECT_BAD);
        }
}

static void test_no_sni(void **state)
{
        struct inspect_result r;

        hello(&msg, NULL, "h2", 0);
        frame(&wire, &msg, 16384);
        assert_int_equal(parse(wire.d, wire.n, &r), INSPECT_TLS);
        assert_string_equal(r.sni, "");
        assert_true(inspect_alpn_offers(&r, "h2"));
}

static void test_ssh_http_other(void **state)
{
        struct inspect_result r;
        const char *ssh = "SSH-2.0-OpenSSH_9.2p1\r\n";

        for (size_t n = 0; n < 4; n++)
                assert_int_equal(parse(ssh, n, &r), INSPECT_NEED_MORE);
        assert_int_equal(parse(ssh, strlen(ssh), &r), INSPECT_SSH);
        assert_int_equal(parse("GET / HTTP/1.1\r\n", 16, &r), INSPECT_HTTP);
        assert_int_equal(parse("GE", 2, &r), INSPECT_NEED_MORE);
        assert_int_equal(parse("OPTIONS * HTTP/1.1", 18, &r), INSPECT_HTTP);
        assert_int_equal(parse("PRI * HTTP/2.0\r\n\r\nSM", 20, &r), INSPECT_HTTP);
        assert_int_equal(parse("GETX", 4, &r), INSPECT_OTHER);
        assert_int_equal(parse("hello\n", 6, &r), INSPECT_OTHER);
        assert_int_equal(parse("\x00\x01\x02", 3, &r), INSPECT_OTHER);
}

static void test_sslv2_and_garbage(void **state)
{
        struct inspect_result r;
        /* SSLv2-compatible CLIENT-HELLO: 2-byte length with the top bit, then type 1 */
        const uint8_t v2[] = {0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15};
        uint8_t junk[4096];

        assert_int_equal(parse(v2, 1, &r), INSPECT_NEED_MORE);
        assert_int_equal(parse(v2, sizeof(v2), &r), INSPECT_BAD);
        srand(17);
        for (int round = 0; round < 2000; round++) {
                size_t n = (size_t)rand() % sizeof(junk);

                for (size_t i = 0; i < n; i++)
                        junk[i] = (uint8_t)rand();
                if (round % 2)
                        junk[0] = 22;
                (void)parse(junk, n, &r); /* any answer, no crash (ASan watches the reads) */
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_whole_hello_sni_lowercased),
            cmocka_unit_test(test_one_byte_per_call),
            cmocka_unit_test(test_split_over_records),
            cmocka_unit_test(test_too_many_records),
            cmocka_unit_test(test_padded_to_8k),
            cmocka_unit_test(test_over_the_limit),
            cmocka_unit_test(test_truncated_and_malformed),
            cmocka_unit_test(test_bad_names_and_duplicates),
            cmocka_unit_test(test_no_sni),
            cmocka_unit_test(test_ssh_http_other),
            cmocka_unit_test(test_sslv2_and_garbage),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
