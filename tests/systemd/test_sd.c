/* systemd glue against a test NOTIFY_SOCKET and hand-made LISTEN_FDS: exact messages, no-ops
 * outside systemd, the watchdog interval, named passed sockets (the unit's job: test_job.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <evproxy/sd.h>

#include "test_job.h"

static char dir[64];
static char sock_path[100];
static int notify_fd = -1;

static int setup(void **state)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};

        strcpy(dir, "/tmp/evsd-XXXXXX");
        assert_non_null(mkdtemp(dir));
        snprintf(sock_path, sizeof(sock_path), "%s/notify", dir);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
        notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        assert_int_equal(bind(notify_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        struct timeval tv = {2, 0};
        setsockopt(notify_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        return 0;
}

static int teardown(void **state)
{
        close(notify_fd);
        unlink(sock_path);
        rmdir(dir);
        return 0;
}

static void expect_msg(const char *want_prefix)
{
        char buf[512];
        ssize_t n = recv(notify_fd, buf, sizeof(buf) - 1, 0);
        assert_true(n > 0);
        buf[n] = 0;
        assert_memory_equal(buf, want_prefix, strlen(want_prefix));
}

static void test_not_under_systemd_is_noop(void **state)
{
        unsetenv("NOTIFY_SOCKET");
        assert_int_equal(evsd_notify_ready("x"), 0);
        assert_int_equal(evsd_notify_watchdog(), 0);
        unsetenv("WATCHDOG_USEC");
        assert_int_equal(evsd_watchdog_interval_usec(), 0);
        struct evsd_socket *s;
        size_t n = 99;
        unsetenv("LISTEN_FDS");
        assert_int_equal(evsd_listen_sockets(&s, &n), 0);
        assert_int_equal(n, 0);
        assert_null(s);
}

static void test_messages(void **state)
{
        setenv("NOTIFY_SOCKET", sock_path, 1);
        assert_int_equal(evsd_notify_ready("serving 3 listeners"), 1);
        expect_msg("READY=1\nSTATUS=serving 3 listeners");
        assert_int_equal(evsd_notify_ready(NULL), 1);
        expect_msg("READY=1");
        assert_int_equal(evsd_notify_reloading(), 1);
        expect_msg("RELOADING=1\nMONOTONIC_USEC=");
        assert_int_equal(evsd_notify_stopping("draining"), 1);
        expect_msg("STOPPING=1\nSTATUS=draining");
        assert_int_equal(evsd_notify_status("active=5"), 1);
        expect_msg("STATUS=active=5");
        assert_int_equal(evsd_notify_watchdog(), 1);
        expect_msg("WATCHDOG=1");
        unsetenv("NOTIFY_SOCKET");
}

static void test_watchdog_interval(void **state)
{
        char pid[32];
        snprintf(pid, sizeof(pid), "%d", (int)getpid());
        setenv("WATCHDOG_USEC", "3000000", 1);
        setenv("WATCHDOG_PID", pid, 1);
        assert_int_equal(evsd_watchdog_interval_usec(), 1500000);
        setenv("WATCHDOG_PID", "1", 1); /* meant for another process */
        assert_int_equal(evsd_watchdog_interval_usec(), 0);
        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
}

static int move_above(int fd, int min)
{
        int moved = fcntl(fd, F_DUPFD_CLOEXEC, min);
        assert_true(moved >= min);
        close(fd);
        return moved;
}

static void test_listen_sockets_named(void **state)
{
        /* Move the notify socket and the new ones above 3 and 4 before placing them there. */
        int a = move_above(socket(AF_UNIX, SOCK_STREAM, 0), 20);
        int b = move_above(socket(AF_INET, SOCK_STREAM, 0), 30);
        notify_fd = move_above(notify_fd, 40);
        char pid[32];
        struct evsd_socket *s;
        size_t n;

        assert_int_equal(dup2(a, 3), 3);
        assert_int_equal(dup2(b, 4), 4);
        close(a);
        close(b);
        snprintf(pid, sizeof(pid), "%d", (int)getpid());
        setenv("LISTEN_PID", pid, 1);
        setenv("LISTEN_FDS", "2", 1);
        setenv("LISTEN_FDNAMES", "web:api", 1);
        assert_int_equal(evsd_listen_sockets(&s, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(s[0].fd, 3);
        assert_string_equal(s[0].name, "web");
        assert_int_equal(s[1].fd, 4);
        assert_string_equal(s[1].name, "api");
        assert_true(fcntl(3, F_GETFL) & O_NONBLOCK);
        assert_true(fcntl(4, F_GETFD) & FD_CLOEXEC);
        assert_null(getenv("LISTEN_FDS")); /* unset: not passed on to children */
        free(s);
        close(3);
        close(4);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_not_under_systemd_is_noop),
            cmocka_unit_test(test_messages),
            cmocka_unit_test(test_watchdog_interval),
            cmocka_unit_test(test_listen_sockets_named),
        };
        int failed = cmocka_run_group_tests(tests, setup, teardown);

        return failed + run_job_tests();
}
