/* Config tests, part 3: addresses and CIDRs parsed into the exact sockaddrs and prefixes the
 * daemon will bind, connect and match with, plus cfg_addr_equal and cfg_cidr_match. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/un.h>

#include "test_config.h"

#define PATH107                                                                                    \
        "/run/aaaaaaaaabbbbbbbbbbccccccccccddddddddddeeeeeeeeeeffffffffffgggggggggghhhhhhhhhhiiii" \
        "iiiiiijjjjjjjjjj123"

static struct cfg_addr parse_ok(const char *text, bool for_listen)
{
        struct cfg_addr a;
        char msg[200] = "";
        int r = cfg_addr_parse(text, for_listen, &a, msg, sizeof(msg));

        if (r < 0)
                print_error("%s: %s\n", text, msg);
        assert_int_equal(r, 0);
        assert_string_equal(a.text, text);
        return a;
}

static void test_inet4(void **state)
{
        struct cfg_addr a = parse_ok("127.0.0.1:8080", false);
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&a.sa;

        assert_int_equal(a.kind, CFG_ADDR_INET);
        assert_int_equal(a.sa_len, sizeof(struct sockaddr_in));
        assert_int_equal(sin->sin_family, AF_INET);
        assert_int_equal(ntohs(sin->sin_port), 8080);
        assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
        assert_false(a.wildcard);

        a = parse_ok("localhost:65535", false);
        assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
        assert_int_equal(ntohs(sin->sin_port), 65535);
        a = parse_ok("0.0.0.0:1", true);
        assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_ANY));
        assert_int_equal(ntohs(sin->sin_port), 1);
        a = parse_ok("10.20.30.40:00080", false);
        assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x0a141e28);
        assert_int_equal(ntohs(sin->sin_port), 80);
}

static void test_inet6(void **state)
{
        struct cfg_addr a = parse_ok("[::1]:8080", false);
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a.sa;

        assert_int_equal(a.kind, CFG_ADDR_INET);
        assert_int_equal(a.sa_len, sizeof(struct sockaddr_in6));
        assert_int_equal(sin6->sin6_family, AF_INET6);
        assert_int_equal(ntohs(sin6->sin6_port), 8080);
        assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
        assert_int_equal(sin6->sin6_scope_id, 0);
        assert_int_equal(sin6->sin6_flowinfo, 0);
        assert_false(a.wildcard);

        a = parse_ok("[2001:db8::ff]:443", false);
        assert_int_equal(sin6->sin6_addr.s6_addr[0], 0x20);
        assert_int_equal(sin6->sin6_addr.s6_addr[15], 0xff);

        a = parse_ok("*:9000", true);
        assert_true(a.wildcard);
        assert_int_equal(a.kind, CFG_ADDR_INET);
        assert_int_equal(sin6->sin6_family, AF_INET6);
        assert_true(IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr));
        assert_int_equal(ntohs(sin6->sin6_port), 9000);
}

static void test_unix(void **state)
{
        struct cfg_addr a = parse_ok("unix:/run/app.sock", false);
        const struct sockaddr_un *un = (const struct sockaddr_un *)&a.sa;

        assert_int_equal(a.kind, CFG_ADDR_UNIX);
        assert_int_equal(un->sun_family, AF_UNIX);
        assert_string_equal(un->sun_path, "/run/app.sock");
        assert_int_equal(a.sa_len, offsetof(struct sockaddr_un, sun_path) + 14);

        a = parse_ok("unix:" PATH107, true);
        assert_int_equal(strlen(PATH107), 107);
        assert_string_equal(un->sun_path, PATH107);
        assert_int_equal(a.sa_len, sizeof(struct sockaddr_un));

        a = parse_ok("unix:@app", false);
        assert_int_equal(a.kind, CFG_ADDR_ABSTRACT);
        assert_int_equal(un->sun_family, AF_UNIX);
        assert_int_equal(un->sun_path[0], '\0');
        assert_memory_equal(un->sun_path + 1, "app", 3);
        assert_int_equal(a.sa_len, offsetof(struct sockaddr_un, sun_path) + 1 + 3);

        a = parse_ok("unix:@" PATH107, true);
        assert_int_equal(a.sa_len, sizeof(struct sockaddr_un));
}

static void test_systemd(void **state)
{
        struct cfg_addr a = parse_ok("systemd:web.tls:8443_x-y", true);
        char msg[200];

        assert_int_equal(a.kind, CFG_ADDR_SYSTEMD);
        assert_string_equal(a.name, "web.tls:8443_x-y");
        assert_int_equal(a.sa_len, 0);
        assert_int_equal(cfg_addr_parse("systemd:web", false, &a, msg, sizeof(msg)), -EINVAL);
        assert_string_equal(msg, "systemd: sockets can only be used to listen");
        assert_int_equal(cfg_addr_parse("systemd:"
                                        "a123456789b123456789c123456789d123456789e123456789f1234567"
                                        "89g123",
                                        true, &a, msg, sizeof(msg)),
                         -EINVAL);
        assert_string_equal(msg, "systemd socket name too long (at most 63 characters)");
}

static void test_addr_equal(void **state)
{
        struct cfg_addr a = parse_ok("127.0.0.1:80", true), b = parse_ok("localhost:80", true);

        assert_true(cfg_addr_equal(&a, &b));
        b = parse_ok("127.0.0.1:81", true);
        assert_false(cfg_addr_equal(&a, &b));
        a = parse_ok("[::]:80", true);
        b = parse_ok("*:80", true);
        assert_false(cfg_addr_equal(&a, &b)); /* different IPV6_V6ONLY: a different socket */
        a = parse_ok("unix:@x", true);
        b = parse_ok("unix:/x", true);
        assert_false(cfg_addr_equal(&a, &b));
        a = parse_ok("systemd:x", true);
        b = parse_ok("systemd:x", true);
        assert_true(cfg_addr_equal(&a, &b));
        b = parse_ok("systemd:y", true);
        assert_false(cfg_addr_equal(&a, &b));
        a = parse_ok("[::1]:80", true);
        b = parse_ok("[0::0:1]:80", true);
        assert_true(cfg_addr_equal(&a, &b));
}

static struct cfg_cidr cidr_ok(const char *text)
{
        struct cfg_cidr c;
        char msg[200] = "";
        int r = cfg_cidr_parse(text, &c, msg, sizeof(msg));

        if (r < 0)
                print_error("%s: %s\n", text, msg);
        assert_int_equal(r, 0);
        return c;
}

static bool matches(const struct cfg_cidr *c, const char *ip)
{
        struct sockaddr_in sin = {.sin_family = AF_INET};
        struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};

        if (inet_pton(AF_INET, ip, &sin.sin_addr) == 1)
                return cfg_cidr_match(c, (struct sockaddr *)&sin);
        assert_int_equal(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
        return cfg_cidr_match(c, (struct sockaddr *)&sin6);
}

static void test_cidr(void **state)
{
        static const uint8_t zero[16] = {0};
        struct cfg_cidr c = cidr_ok("192.168.1.77/20");

        assert_int_equal(c.family, AF_INET);
        assert_int_equal(c.prefix, 20);
        assert_memory_equal(c.addr, "\xc0\xa8\x00\x00", 4); /* host bits cleared */
        assert_memory_equal(c.addr + 4, zero, 12);
        assert_true(matches(&c, "192.168.15.255"));
        assert_false(matches(&c, "192.168.16.0"));
        assert_true(matches(&c, "::ffff:192.168.1.1")); /* v4 client on a dual-stack socket */
        assert_false(matches(&c, "2001:db8::1"));

        c = cidr_ok("10.0.0.1");
        assert_int_equal(c.prefix, 32);
        assert_true(matches(&c, "10.0.0.1"));
        assert_false(matches(&c, "10.0.0.2"));

        c = cidr_ok("0.0.0.0/0");
        assert_true(matches(&c, "1.2.3.4"));
        assert_false(matches(&c, "::1"));

        c = cidr_ok("2001:db8:abcd::1/33");
        assert_int_equal(c.family, AF_INET6);
        assert_int_equal(c.prefix, 33);
        assert_memory_equal(c.addr, "\x20\x01\x0d\xb8\x80\x00", 6);
        assert_true(matches(&c, "2001:db8:ffff::"));
        assert_false(matches(&c, "2001:db8:7fff::"));
        assert_false(matches(&c, "10.0.0.1"));

        c = cidr_ok("::1");
        assert_int_equal(c.prefix, 128);
        assert_true(matches(&c, "::1"));

        c = cidr_ok("::ffff:10.1.0.0/112");
        assert_int_equal(c.family, AF_INET);
        assert_int_equal(c.prefix, 16);
        assert_true(matches(&c, "10.1.200.3"));

        c = cidr_ok("::/0");
        assert_int_equal(c.family, AF_INET6);
        assert_true(matches(&c, "2001:db8::1"));
        assert_false(matches(&c, "10.1.200.3"));
}

const struct CMUnitTest addr_tests[] = {
    cmocka_unit_test(test_inet4),   cmocka_unit_test(test_inet6),      cmocka_unit_test(test_unix),
    cmocka_unit_test(test_systemd), cmocka_unit_test(test_addr_equal), cmocka_unit_test(test_cidr),
};
const size_t n_addr_tests = sizeof(addr_tests) / sizeof(addr_tests[0]);
