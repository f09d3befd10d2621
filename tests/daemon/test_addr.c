/* cmocka tests of daemon/addr.c: the address text used in access and error logs. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/un.h>

#include <cmocka.h>

#include "addr.h"

static void test_inet(void **state)
{
        struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(5)};
        char buf[ADDR_STRLEN];

        inet_pton(AF_INET, "1.2.3.4", &in.sin_addr);
        assert_string_equal(addr_format((struct sockaddr *)&in, sizeof(in), buf, sizeof(buf)),
                            "1.2.3.4:5");
}

static void test_inet6_and_mapped(void **state)
{
        struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(8080)};
        char buf[ADDR_STRLEN];

        inet_pton(AF_INET6, "::1", &in6.sin6_addr);
        assert_string_equal(addr_format((struct sockaddr *)&in6, sizeof(in6), buf, sizeof(buf)),
                            "[::1]:8080");
        inet_pton(AF_INET6, "::ffff:127.0.0.1", &in6.sin6_addr);
        assert_string_equal(addr_format((struct sockaddr *)&in6, sizeof(in6), buf, sizeof(buf)),
                            "127.0.0.1:8080");
}

static void test_unix(void **state)
{
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        socklen_t len;
        char buf[ADDR_STRLEN];

        strcpy(un.sun_path, "/run/app.sock");
        len = offsetof(struct sockaddr_un, sun_path) + strlen(un.sun_path) + 1;
        assert_string_equal(addr_format((struct sockaddr *)&un, len, buf, sizeof(buf)),
                            "unix:/run/app.sock");
        memcpy(un.sun_path, "\0app\n", 5);
        len = offsetof(struct sockaddr_un, sun_path) + 5;
        assert_string_equal(addr_format((struct sockaddr *)&un, len, buf, sizeof(buf)),
                            "unix:@app?");
        len = offsetof(struct sockaddr_un, sun_path);
        assert_true(addr_is_unnamed((struct sockaddr *)&un, len));
        assert_string_equal(addr_format((struct sockaddr *)&un, len, buf, sizeof(buf)), "-");
}

static void test_truncates(void **state)
{
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        char buf[8];

        strcpy(un.sun_path, "/a/very/long/path");
        addr_format((struct sockaddr *)&un, sizeof(un), buf, sizeof(buf));
        assert_string_equal(buf, "unix:/a");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_inet),
            cmocka_unit_test(test_inet6_and_mapped),
            cmocka_unit_test(test_unix),
            cmocka_unit_test(test_truncates),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
