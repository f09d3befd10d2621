/* cmocka tests of the per-client table (daemon/client_limit.c): keys (IPv4, v4-mapped IPv6,
 * IPv6 prefixes), the concurrency limit, the GCRA rate bucket, expiry of idle entries, the
 * fail-open policy of a full table, and many threads hammering one table (TSan). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "client_limit.h"

static struct sockaddr_storage v4(const char *a)
{
        struct sockaddr_storage ss = {0};
        struct sockaddr_in *s = (struct sockaddr_in *)&ss;

        s->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, a, &s->sin_addr), 1);
        return ss;
}

static struct sockaddr_storage v6(const char *a)
{
        struct sockaddr_storage ss = {0};
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

        s->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, a, &s->sin6_addr), 1);
        return ss;
}

static struct client_key key(struct sockaddr_storage ss, unsigned prefix6, uint64_t scope)
{
        struct client_key k;

        assert_true(client_key_make((struct sockaddr *)&ss, prefix6, scope, &k));
        return k;
}

static bool same(struct client_key a, struct client_key b)
{
        return memcmp(&a, &b, sizeof(a)) == 0;
}

static void test_keys(void **state)
{
        struct sockaddr_storage un = {.ss_family = AF_UNIX};
        struct client_key k;

        /* v4 by address; v4-mapped v6 is the same client. */
        assert_true(same(key(v4("10.1.2.3"), 64, 0), key(v6("::ffff:10.1.2.3"), 64, 0)));
        assert_false(same(key(v4("10.1.2.3"), 64, 0), key(v4("10.1.2.4"), 64, 0)));
        /* v6 by prefix: one /64 is one client, the next /64 another. */
        assert_true(same(key(v6("2001:db8:1::1"), 64, 0), key(v6("2001:db8:1::ffff:1"), 64, 0)));
        assert_false(same(key(v6("2001:db8:1::1"), 64, 0), key(v6("2001:db8:2::1"), 64, 0)));
        /* A prefix that is not a multiple of 8. */
        assert_true(same(key(v6("2001:db8::"), 33, 0), key(v6("2001:db8:7fff::"), 33, 0)));
        assert_false(same(key(v6("2001:db8::"), 33, 0), key(v6("2001:db8:8000::"), 33, 0)));
        assert_false(same(key(v6("2001:db8::1"), 128, 0), key(v6("2001:db8::2"), 128, 0)));
        /* Scopes keep a route's count apart from the daemon-wide one. */
        assert_false(same(key(v4("10.1.2.3"), 64, 0), key(v4("10.1.2.3"), 64, 7)));
        assert_false(client_key_make((struct sockaddr *)&un, 64, 0, &k));
}

static void test_concurrency(void **state)
{
        struct client_rule rule = {.max_conns = 3};
        struct client_key a = key(v4("10.0.0.1"), 64, 0), b = key(v4("10.0.0.2"), 64, 0);
        struct client_table_stats st;
        struct client_table *t;

        assert_int_equal(client_table_new(1024, &t), 0);
        for (int i = 0; i < 3; i++)
                assert_int_equal(client_table_take(t, &a, &rule, 1000), CLIENT_OK);
        assert_int_equal(client_table_take(t, &a, &rule, 1000), CLIENT_OVER_LIMIT);
        assert_int_equal(client_table_take(t, &b, &rule, 1000), CLIENT_OK);
        client_table_release(t, &a, 1000);
        assert_int_equal(client_table_take(t, &a, &rule, 1000), CLIENT_OK);
        client_table_stats(t, &st);
        assert_int_equal(st.entries, 2);
        for (int i = 0; i < 3; i++)
                client_table_release(t, &a, 1000);
        client_table_release(t, &b, 1000);
        client_table_stats(t, &st);
        assert_int_equal(st.entries, 0); /* no connection, no bucket: freed at once */
        client_table_free(t);
}

static void test_rate_bucket(void **state)
{
        struct client_rule rule = {.rate = 10, .burst = 5}; /* one per 100 ms, 5 at once */
        struct client_key a = key(v4("10.0.0.1"), 64, 0);
        struct client_table *t;
        int ok = 0;

        assert_int_equal(client_table_new(1024, &t), 0);
        for (int i = 0; i < 8; i++)
                ok += client_table_take(t, &a, &rule, 5000) == CLIENT_OK;
        assert_int_equal(ok, 5);
        assert_int_equal(client_table_take(t, &a, &rule, 5050), CLIENT_RATE_LIMITED);
        assert_int_equal(client_table_take(t, &a, &rule, 5100), CLIENT_OK);
        assert_int_equal(client_table_take(t, &a, &rule, 5150), CLIENT_RATE_LIMITED);
        /* Over 10 s at one attempt per ms: 10/s, within one. */
        ok = 0;
        for (uint64_t ms = 6000; ms < 16000; ms++)
                ok += client_table_take(t, &a, &rule, ms) == CLIENT_OK;
        assert_in_range(ok, 99, 106);
        client_table_free(t);
}

static void test_expiry_and_full(void **state)
{
        struct client_rule rule = {.rate = 1, .burst = 1};
        struct client_table_stats st;
        struct client_table *t;
        char a[32];
        int full = 0;

        /* 64 slots: the smallest table. Fill it with clients whose buckets are empty. */
        assert_int_equal(client_table_new(64, &t), 0);
        for (int i = 0; i < 2000; i++) {
                struct client_key k;

                snprintf(a, sizeof(a), "10.0.%d.%d", i / 256, i % 256);
                k = key(v4(a), 64, 0);
                enum client_verdict v = client_table_take(t, &k, &rule, 1000);
                assert_true(v == CLIENT_OK || v == CLIENT_TABLE_FULL);
                if (v == CLIENT_OK)
                        client_table_release(t, &k, 1000);
                full += v == CLIENT_TABLE_FULL;
        }
        client_table_stats(t, &st);
        assert_int_equal(st.capacity, 64);
        assert_int_equal(st.entries, 64); /* bounded: never more than its capacity */
        assert_int_equal(st.full, (uint64_t)full);
        assert_true(full >= 2000 - 64);
        /* Two seconds later every bucket is full again: the entries are idle, so new clients
         * take their slots (and free them when their last connection goes). */
        rule = (struct client_rule){.max_conns = 1};
        for (int i = 0; i < 64; i++) {
                struct client_key k;

                snprintf(a, sizeof(a), "10.9.0.%d", i);
                k = key(v4(a), 64, 0);
                assert_int_equal(client_table_take(t, &k, &rule, 3000), CLIENT_OK);
                client_table_release(t, &k, 3000);
        }
        client_table_stats(t, &st);
        assert_true(st.entries < 64);
        assert_int_equal(st.full, (uint64_t)full);
        client_table_free(t);
}

struct hammer {
        struct client_table *t;
        int id;
        int over; /* refusals seen */
};

static void *hammer_fn(void *arg)
{
        struct hammer *h = arg;
        struct client_rule rule = {.max_conns = 4};
        struct client_key k[8];
        char a[32];

        for (int i = 0; i < 8; i++) {
                snprintf(a, sizeof(a), "10.1.0.%d", i);
                k[i] = key(v4(a), 64, 0);
        }
        for (int round = 0; round < 2000; round++) {
                struct client_key *c = &k[(round + h->id) % 8];

                if (client_table_take(h->t, c, &rule, 1000) == CLIENT_OK)
                        client_table_release(h->t, c, 1000);
                else
                        h->over++;
        }
        return NULL;
}

/* Four threads, eight clients with a limit of 4 each, take and release in turn: never more
 * than four at once per client, and everything is given back (TSan runs this). */
static void test_threads(void **state)
{
        struct hammer h[4];
        pthread_t th[4];
        struct client_table_stats st;
        struct client_table *t;

        assert_int_equal(client_table_new(4096, &t), 0);
        for (int i = 0; i < 4; i++) {
                h[i] = (struct hammer){.t = t, .id = i};
                assert_int_equal(pthread_create(&th[i], NULL, hammer_fn, &h[i]), 0);
        }
        for (int i = 0; i < 4; i++) {
                pthread_join(th[i], NULL);
                assert_int_equal(h[i].over, 0); /* at most 4 threads hold one client */
        }
        client_table_stats(t, &st);
        assert_int_equal(st.entries, 0);
        client_table_free(t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_keys),        cmocka_unit_test(test_concurrency),
            cmocka_unit_test(test_rate_bucket), cmocka_unit_test(test_expiry_and_full),
            cmocka_unit_test(test_threads),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
