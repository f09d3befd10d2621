/* evsd_unit_job() against a private D-Bus bus (dbus-daemon) with a fake systemd on it: the
 * Manager's GetUnitByPID, a service unit (MainPID, Job), a scope unit (no Service interface)
 * and a job (JobType), served by sd-bus from a thread of this test. Also: no bus at all, and a
 * bus that accepts and never answers (the SIGTERM path must stay bounded). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include <evproxy/sd.h>

#include "test_job.h"

#define SERVICE "/org/freedesktop/systemd1/unit/evproxy_2eservice"
#define SCOPE   "/org/freedesktop/systemd1/unit/session_2d1_2escope"
#define JOB     "/org/freedesktop/systemd1/job/42"
#define GONE    "/org/freedesktop/systemd1/job/43" /* a job that finished: no object */

/* What the fake systemd answers (set by each test before it asks). */
static struct {
        const char *unit;     /* GetUnitByPID's answer */
        uint32_t main_pid;    /* the service's MainPID */
        uint32_t job_id;      /* 0: no job */
        const char *job_path; /* "/" with no job */
        const char *job_type;
} fake;

static char dir[64], bus_addr[160];
static pid_t bus_pid = -1;
static pthread_t server;
static atomic_bool stop;
static atomic_int server_ready; /* 1 ready, -1 failed */

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int get_unit_by_pid(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
        (void)userdata;
        (void)err;
        return sd_bus_reply_method_return(m, "o", fake.unit);
}

static int prop_main_pid(sd_bus *bus, const char *path, const char *iface, const char *prop,
                         sd_bus_message *reply, void *userdata, sd_bus_error *err)
{
        (void)bus, (void)path, (void)iface, (void)prop, (void)userdata, (void)err;
        return sd_bus_message_append(reply, "u", fake.main_pid);
}

static int prop_job(sd_bus *bus, const char *path, const char *iface, const char *prop,
                    sd_bus_message *reply, void *userdata, sd_bus_error *err)
{
        (void)bus, (void)path, (void)iface, (void)prop, (void)userdata, (void)err;
        return sd_bus_message_append(reply, "(uo)", fake.job_id, fake.job_path);
}

static int prop_job_type(sd_bus *bus, const char *path, const char *iface, const char *prop,
                         sd_bus_message *reply, void *userdata, sd_bus_error *err)
{
        (void)bus, (void)path, (void)iface, (void)prop, (void)userdata, (void)err;
        return sd_bus_message_append(reply, "s", fake.job_type);
}

static const sd_bus_vtable manager_vt[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("GetUnitByPID", "u", "o", get_unit_by_pid, 0),
    SD_BUS_VTABLE_END,
};
static const sd_bus_vtable service_vt[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("MainPID", "u", prop_main_pid, 0, 0),
    SD_BUS_VTABLE_END,
};
static const sd_bus_vtable unit_vt[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("Job", "(uo)", prop_job, 0, 0),
    SD_BUS_VTABLE_END,
};
static const sd_bus_vtable job_vt[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("JobType", "s", prop_job_type, 0, 0),
    SD_BUS_VTABLE_END,
};

static int serve_setup(sd_bus *bus)
{
        int r = sd_bus_add_object_vtable(bus, NULL, "/org/freedesktop/systemd1",
                                         "org.freedesktop.systemd1.Manager", manager_vt, NULL);
        if (r >= 0)
                r = sd_bus_add_object_vtable(bus, NULL, SERVICE, "org.freedesktop.systemd1.Service",
                                             service_vt, NULL);
        if (r >= 0)
                r = sd_bus_add_object_vtable(bus, NULL, SERVICE, "org.freedesktop.systemd1.Unit",
                                             unit_vt, NULL);
        if (r >= 0) /* a scope: a unit, but no Service interface */
                r = sd_bus_add_object_vtable(bus, NULL, SCOPE, "org.freedesktop.systemd1.Unit",
                                             unit_vt, NULL);
        if (r >= 0)
                r = sd_bus_add_object_vtable(bus, NULL, JOB, "org.freedesktop.systemd1.Job", job_vt,
                                             NULL);
        if (r >= 0)
                r = sd_bus_request_name(bus, "org.freedesktop.systemd1", 0);
        return r;
}

static void *serve(void *arg)
{
        sd_bus *bus = NULL;
        int r;

        (void)arg;
        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, bus_addr);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0)
                r = serve_setup(bus);
        atomic_store(&server_ready, r >= 0 ? 1 : -1);
        while (r >= 0 && !atomic_load(&stop)) {
                r = sd_bus_process(bus, NULL);
                if (r == 0)
                        r = sd_bus_wait(bus, 100000);
        }
        sd_bus_flush_close_unref(bus);
        return NULL;
}

static int setup(void **state)
{
        char conf[100], path[100];
        FILE *f;

        (void)state;
        strcpy(dir, "/tmp/evjob-XXXXXX");
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/bus", dir);
        snprintf(bus_addr, sizeof(bus_addr), "unix:path=%s", path);
        snprintf(conf, sizeof(conf), "%s/bus.conf", dir);
        f = fopen(conf, "w");
        assert_non_null(f);
        fprintf(f,
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration "
                "1.0//EN\" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                "<busconfig><type>custom</type><listen>%s</listen><auth>EXTERNAL</auth>\n"
                "<policy context=\"default\"><allow user=\"*\"/><allow own=\"*\"/>"
                "<allow send_destination=\"*\"/><allow receive_sender=\"*\"/></policy>"
                "</busconfig>\n",
                bus_addr);
        fclose(f);
        /* dbus-daemon from Debian's dbus-daemon package (.ci/install-deps installs it). */
        if (access(DBUS_DAEMON, X_OK) != 0) {
                print_error("%s not found: apt-get install dbus-daemon\n", DBUS_DAEMON);
                return -1;
        }
        bus_pid = fork();
        assert_true(bus_pid >= 0);
        if (bus_pid == 0) {
                char arg[120];

                snprintf(arg, sizeof(arg), "--config-file=%s", conf);
                if (!freopen("/dev/null", "w", stderr)) /* its complaint about the fd limit */
                        _exit(126);
                execl(DBUS_DAEMON, "dbus-daemon", arg, "--nofork", "--nopidfile", (char *)NULL);
                _exit(127);
        }
        for (int i = 0; i < 200 && access(path, F_OK) != 0; i++)
                usleep(20000);
        assert_int_equal(access(path, F_OK), 0);
        assert_int_equal(pthread_create(&server, NULL, serve, NULL), 0);
        for (int i = 0; i < 200 && atomic_load(&server_ready) == 0; i++)
                usleep(20000);
        assert_int_equal(atomic_load(&server_ready), 1);
        setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_addr, 1);
        return 0;
}

static int teardown(void **state)
{
        char path[100];

        (void)state;
        atomic_store(&stop, true);
        if (atomic_load(&server_ready) != 0)
                pthread_join(server, NULL);
        if (bus_pid > 0) {
                kill(bus_pid, SIGTERM);
                waitpid(bus_pid, NULL, 0);
        }
        unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
        snprintf(path, sizeof(path), "%s/bus", dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/bus.conf", dir);
        unlink(path);
        rmdir(dir);
        return 0;
}

static void as_service(const char *job_path, uint32_t id, const char *type)
{
        fake.unit = SERVICE;
        fake.main_pid = (uint32_t)getpid();
        fake.job_id = id;
        fake.job_path = job_path;
        fake.job_type = type;
}

static void test_restart_job(void **state)
{
        char type[32];

        (void)state;
        as_service(JOB, 42, "restart");
        assert_int_equal(evsd_unit_job(type, sizeof(type)), 1);
        assert_string_equal(type, "restart");
}

static void test_stop_job(void **state)
{
        char type[32];

        (void)state;
        as_service(JOB, 42, "stop");
        assert_int_equal(evsd_unit_job(type, sizeof(type)), 1);
        assert_string_equal(type, "stop");
}

static void test_no_job(void **state)
{
        char type[32] = "x";

        (void)state;
        as_service("/", 0, "unused");
        assert_int_equal(evsd_unit_job(type, sizeof(type)), 0);
        assert_string_equal(type, "");
}

/* The job finished between reading the unit's Job and asking its type. */
static void test_job_gone(void **state)
{
        char type[32];

        (void)state;
        as_service(GONE, 43, "unused");
        assert_int_equal(evsd_unit_job(type, sizeof(type)), 0);
}

/* A daemon under some unit whose main process it is not (a test runner's service): whatever
 * job that unit has is not ours. */
static void test_not_main_pid(void **state)
{
        char type[32];

        (void)state;
        as_service(JOB, 42, "stop");
        fake.main_pid = (uint32_t)getpid() + 1;
        assert_int_equal(evsd_unit_job(type, sizeof(type)), -ESRCH);
}

/* A daemon in a scope (started from a login shell): no Service interface, no main process. */
static void test_scope(void **state)
{
        char type[32];

        (void)state;
        as_service(JOB, 42, "stop");
        fake.unit = SCOPE;
        assert_int_equal(evsd_unit_job(type, sizeof(type)), -ESRCH);
}

/* No system bus: an error at once, never "no job" (which would mean: drain). */
static void test_without_bus(void **state)
{
        char type[32] = "x";
        char addr[160];

        (void)state;
        snprintf(addr, sizeof(addr), "unix:path=%s/no-bus", dir);
        setenv("DBUS_SYSTEM_BUS_ADDRESS", addr, 1);
        int r = evsd_unit_job(type, sizeof(type));
        setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_addr, 1);
        assert_true(r < 0 && r != -ESRCH);
        assert_string_equal(type, "");
}

/* A bus that accepts and never answers: sd-bus's method timeout does not cover the
 * authentication, which would hold the SIGTERM path for 90 s; one deadline covers it all. */
static void test_silent_bus_is_bounded(void **state)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        char type[32];
        char addr[160];
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        (void)state;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/silent-bus", dir);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(fd, 4), 0);
        snprintf(addr, sizeof(addr), "unix:path=%s", sa.sun_path);
        setenv("DBUS_SYSTEM_BUS_ADDRESS", addr, 1);
        double t0 = now_s();
        int r = evsd_unit_job(type, sizeof(type));
        double took = now_s() - t0;
        setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_addr, 1);
        print_message("silent bus: %d after %.2fs\n", r, took);
        assert_true(r < 0);
        assert_true(took < 5.0);
        close(fd);
        unlink(sa.sun_path);
}

int run_job_tests(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_restart_job),  cmocka_unit_test(test_stop_job),
            cmocka_unit_test(test_no_job),       cmocka_unit_test(test_job_gone),
            cmocka_unit_test(test_not_main_pid), cmocka_unit_test(test_scope),
            cmocka_unit_test(test_without_bus),  cmocka_unit_test(test_silent_bus_is_bounded),
        };
        return cmocka_run_group_tests_name("unit_job", tests, setup, teardown);
}
