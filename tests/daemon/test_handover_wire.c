/* cmocka tests of the handover record (daemon/handover_wire.c): a state survives encode/decode
 * whole (texts, fd indices, addresses, bytes in flight, half-close), and the parser rejects
 * whatever is inconsistent even when the checksum is right: an fd index out of range or used
 * twice, an fd nobody claims, counts that do not match, trailing bytes, lengths past the end,
 * another version, states that cannot be (done with bytes left, forwarding without upstream). */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "handover_wire.h"

static void resign(unsigned char *buf, size_t len)
{
        ho_resign(buf, len);
}

/* Distinct per fd, as SO_COOKIE is per socket. */
static uint64_t fake_cookie(int fd)
{
        return 1000 + (uint64_t)fd;
}

static void fill(struct ho_state *st)
{
        struct ho_listener *l;
        struct ho_conn *c;
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(4242)};

        assert_int_equal(ho_state_add_listener(st, 2, &l), 0);
        strcpy(l->text, "127.0.0.1:8080");
        strcpy(l->route, "web");
        l->fds[0] = 10;
        l->fds[1] = 11;
        assert_int_equal(ho_state_add_conn(st, &c), 0);
        strcpy(c->route, "web");
        strcpy(c->upstream, "127.0.0.1:9000");
        c->cfd = 20;
        c->ufd = 21;
        c->state = HO_FORWARDING;
        c->first_eof = HO_EOF_CLIENT;
        c->up.eof = true;
        c->up.bytes = 123456789;
        c->up.len = 5;
        c->up.data = (unsigned char *)strdup("hello");
        c->down.bytes = 7;
        memcpy(&c->client, &sin, sizeof(sin));
        c->client_len = sizeof(sin);
        c->age_ms = 1000;
        c->idle_ms = 10;
        assert_int_equal(ho_state_add_conn(st, &c), 0);
        strcpy(c->route, "db");
        c->cfd = 30;
        c->state = HO_CONNECTING;
}

static void encode(struct ho_state *st, unsigned char **buf, size_t *len, size_t *n_fds)
{
        int *fds;

        assert_int_equal(ho_encode(st, fake_cookie, buf, len, &fds, n_fds), 0);
        free(fds);
}

static void test_round_trip(void **state)
{
        struct ho_state st = {0}, out;
        unsigned char *buf;
        size_t len, n_fds;
        int *fds;

        fill(&st);
        assert_int_equal(ho_encode(&st, fake_cookie, &buf, &len, &fds, &n_fds), 0);
        assert_int_equal(n_fds, 5);
        assert_int_equal(fds[0], 10);
        assert_int_equal(fds[2], 20);
        assert_int_equal(fds[4], 30);
        assert_int_equal(ho_decode(buf, len, n_fds, &out), 0);
        ho_state_map_fds(&out, fds, n_fds);
        assert_int_equal(out.n_ls, 1);
        assert_string_equal(out.ls[0].text, "127.0.0.1:8080");
        assert_int_equal(out.ls[0].fds[1], 11);
        assert_int_equal(out.n_cs, 2);
        assert_string_equal(out.cs[0].upstream, "127.0.0.1:9000");
        assert_int_equal(out.cs[0].cfd, 20);
        assert_int_equal(out.cs[0].ufd, 21);
        assert_true(out.cs[0].up.eof);
        assert_false(out.cs[0].up.done);
        assert_int_equal(out.cs[0].up.bytes, 123456789);
        assert_memory_equal(out.cs[0].up.data, "hello", 5);
        assert_int_equal(out.cs[0].client_len, sizeof(struct sockaddr_in));
        assert_memory_equal(&out.cs[0].client, &st.cs[0].client, sizeof(struct sockaddr_in));
        assert_int_equal(out.cs[1].ufd, -1);
        assert_int_equal(out.cs[1].state, HO_CONNECTING);
        assert_int_equal(ho_state_pending(&out), 5);
        assert_int_equal(out.n_cookies, 5);
        assert_int_equal(out.cookies[2], 1020);
        ho_state_free(&out);
        ho_state_free(&st);
        free(buf);
        free(fds);
}

static void test_rejects_fd_mismatch(void **state)
{
        struct ho_state st = {0}, out;
        unsigned char *buf;
        size_t len, n_fds;

        fill(&st);
        encode(&st, &buf, &len, &n_fds);
        /* More or fewer fds than the record names. */
        assert_int_equal(ho_decode(buf, len, n_fds + 1, &out), -EBADMSG);
        assert_int_equal(ho_decode(buf, len, n_fds - 1, &out), -EBADMSG);
        assert_int_equal(out.n_cs, 0);
        ho_state_free(&st);
        free(buf);
}

/* The listener's first fd index is at a known offset: header, two texts, the count. */
static size_t first_fd_offset(void)
{
        return HO_HEADER_SIZE + 2 + strlen("127.0.0.1:8080") + 2 + strlen("web") + 4;
}

static void test_rejects_bad_fd_index(void **state)
{
        struct ho_state st = {0}, out;
        unsigned char *buf;
        size_t len, n_fds, off = first_fd_offset();
        uint32_t i;

        fill(&st);
        encode(&st, &buf, &len, &n_fds);
        memcpy(&i, buf + off, 4);
        assert_int_equal(i, 0);
        i = 1; /* the second socket's index too: used twice, index 0 unclaimed */
        memcpy(buf + off, &i, 4);
        resign(buf, len);
        assert_int_equal(ho_decode(buf, len, n_fds, &out), -EBADMSG);
        i = 99; /* out of range */
        memcpy(buf + off, &i, 4);
        resign(buf, len);
        assert_int_equal(ho_decode(buf, len, n_fds, &out), -EBADMSG);
        i = 0; /* back as it was: accepted again (the test edits what it thinks it edits) */
        memcpy(buf + off, &i, 4);
        resign(buf, len);
        assert_int_equal(ho_decode(buf, len, n_fds, &out), 0);
        ho_state_free(&out);
        ho_state_free(&st);
        free(buf);
}

static void test_rejects_counts_and_lengths(void **state)
{
        struct ho_state st = {0}, out;
        unsigned char *buf, *big;
        size_t len, n_fds;
        uint32_t n;

        fill(&st);
        encode(&st, &buf, &len, &n_fds);
        /* One connection more than there is. */
        memcpy(&n, buf + 20, 4);
        n++;
        memcpy(buf + 20, &n, 4);
        assert_int_equal(ho_decode(buf, len, n_fds, &out), -EBADMSG);
        n--;
        memcpy(buf + 20, &n, 4);
        /* Trailing byte. */
        big = malloc(len + 1);
        memcpy(big, buf, len);
        big[len] = 0;
        resign(big, len + 1);
        assert_int_equal(ho_decode(big, len + 1, n_fds, &out), -EBADMSG);
        /* Truncated anywhere. */
        for (size_t cut = 0; cut < len; cut++) {
                memcpy(big, buf, cut);
                if (cut >= HO_HEADER_SIZE)
                        resign(big, cut);
                assert_int_not_equal(ho_decode(big, cut, n_fds, &out), 0);
        }
        /* Checksum. */
        buf[len - 1] ^= 1;
        assert_int_equal(ho_decode(buf, len, n_fds, &out), -EBADMSG);
        buf[len - 1] ^= 1;
        /* Another version. */
        buf[8]++;
        assert_int_equal(ho_decode(buf, len, n_fds, &out), -EPROTONOSUPPORT);
        free(big);
        ho_state_free(&st);
        free(buf);
}

static void test_rejects_repeated_cookie(void **state)
{
        struct ho_state st = {0}, out;
        unsigned char *buf;
        size_t len, n_fds;

        fill(&st);
        encode(&st, &buf, &len, &n_fds);
        /* The last fd's cookie made the one before it: one socket under two indices. */
        memcpy(buf + len - 8, buf + len - 16, 8);
        ho_resign(buf, len);
        assert_int_equal(ho_decode(buf, len, n_fds, &out), -EBADMSG);
        ho_state_free(&st);
        free(buf);
}

static void expect_rejected(struct ho_state *st)
{
        struct ho_state out;
        unsigned char *buf;
        size_t len, n_fds;

        encode(st, &buf, &len, &n_fds);
        assert_int_equal(ho_decode(buf, len, n_fds, &out), -EBADMSG);
        free(buf);
        ho_state_free(st);
}

static void test_rejects_impossible_states(void **state)
{
        struct ho_state st = {0};

        fill(&st);
        st.cs[0].up.done = true; /* done, yet bytes left to write */
        expect_rejected(&st);
        fill(&st);
        st.cs[0].ufd = -1; /* forwarding without an upstream socket */
        expect_rejected(&st);
        fill(&st);
        st.cs[1].down.bytes = 1; /* connecting, yet bytes moved */
        expect_rejected(&st);
        fill(&st);
        st.cs[0].first_eof = HO_EOF_NONE; /* an EOF was seen */
        expect_rejected(&st);
        fill(&st);
        st.cs[1].state = 7;
        expect_rejected(&st);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_round_trip),
            cmocka_unit_test(test_rejects_fd_mismatch),
            cmocka_unit_test(test_rejects_bad_fd_index),
            cmocka_unit_test(test_rejects_counts_and_lengths),
            cmocka_unit_test(test_rejects_impossible_states),
            cmocka_unit_test(test_rejects_repeated_cookie),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
