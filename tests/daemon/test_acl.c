/* Access control: deny wins, empty allow means everyone, v4 and v6 prefixes, v4-mapped IPv6
 * clients matched as IPv4, unix clients never filtered. Lists come from real config text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include <evproxy/config.h>

#include "acl.h"

static struct cfg *load(const char *acl)
{
        char text[1024];
        struct cfg *c = NULL;

        snprintf(text, sizeof(text),
                 "routes = ({ name = \"r\"; listen = [\"127.0.0.1:1\"]; "
                 "upstreams = [\"127.0.0.1:2\"]; %s });",
                 acl);
        assert_int_equal(cfg_load_string(text, NULL, &c, NULL), 0);
        return c;
}

static bool allows(const struct cfg *c, const char *ip)
{
        struct sockaddr_storage ss = {0};

        if (strchr(ip, ':')) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
                s6->sin6_family = AF_INET6;
                assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
        } else {
                struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
                s4->sin_family = AF_INET;
                assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
        }
        return acl_allows(&c->routes[0], (const struct sockaddr *)&ss);
}

static void test_empty_allows_all(void **state)
{
        struct cfg *c = load("");
        assert_true(allows(c, "10.1.2.3"));
        assert_true(allows(c, "2001:db8::1"));
        cfg_free(c);
}

static void test_deny_wins(void **state)
{
        struct cfg *c = load("allow = [\"10.0.0.0/8\"]; deny = [\"10.1.0.0/16\"];");
        assert_true(allows(c, "10.2.3.4"));
        assert_false(allows(c, "10.1.3.4"));
        assert_false(allows(c, "11.0.0.1"));
        assert_false(allows(c, "::1"));
        cfg_free(c);
}

static void test_deny_only(void **state)
{
        struct cfg *c = load("deny = [\"192.0.2.7\", \"2001:db8::/32\"];");
        assert_false(allows(c, "192.0.2.7"));
        assert_true(allows(c, "192.0.2.8"));
        assert_false(allows(c, "2001:db8:1::5"));
        assert_true(allows(c, "2001:db9::5"));
        cfg_free(c);
}

static void test_v6_prefixes(void **state)
{
        struct cfg *c = load("allow = [\"2001:db8:ab::/47\", \"::1\"];");
        assert_true(allows(c, "2001:db8:ab::1"));
        assert_true(allows(c, "2001:db8:aa:ffff::1")); /* /47: the last bit of ab is free */
        assert_false(allows(c, "2001:db8:ac::1"));
        assert_true(allows(c, "::1"));
        assert_false(allows(c, "::2"));
        assert_false(allows(c, "127.0.0.1"));
        cfg_free(c);
}

static void test_v4_mapped(void **state)
{
        struct cfg *c = load("allow = [\"127.0.0.0/8\"]; deny = [\"127.0.0.2\"];");
        assert_true(allows(c, "::ffff:127.0.0.1"));
        assert_false(allows(c, "::ffff:127.0.0.2"));
        assert_false(allows(c, "::ffff:10.0.0.1"));
        cfg_free(c);
        c = load("deny = [\"::ffff:10.0.0.0/104\"];"); /* stored as 10.0.0.0/8 */
        assert_false(allows(c, "10.9.9.9"));
        assert_false(allows(c, "::ffff:10.9.9.9"));
        assert_true(allows(c, "11.0.0.1"));
        cfg_free(c);
}

static void test_unix_never_filtered(void **state)
{
        struct cfg *c = load("allow = [\"10.0.0.0/8\"]; deny = [\"0.0.0.0/0\", \"::/0\"];");
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        assert_true(acl_allows(&c->routes[0], (const struct sockaddr *)&un));
        assert_false(allows(c, "10.0.0.1"));
        cfg_free(c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_empty_allows_all), cmocka_unit_test(test_deny_wins),
            cmocka_unit_test(test_deny_only),        cmocka_unit_test(test_v6_prefixes),
            cmocka_unit_test(test_v4_mapped),        cmocka_unit_test(test_unix_never_filtered),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
