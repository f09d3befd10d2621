/* Config tests, part 1: the temp-directory helpers, valid files (defaults, every setting, the
 * packaged example, @include), file-level failures (missing, directory, FIFO, ...) and
 * cfg_error_format. main() runs every group of the test_config executable. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "test_config.h"

#define TEST_DIR_TEMPLATE "/tmp/evproxy-config-test-XXXXXX"
static char test_dir[] = TEST_DIR_TEMPLATE;

void test_path(const char *name, char *buf, size_t len)
{
        snprintf(buf, len, "%s/%s", test_dir, name);
}

void test_write(const char *name, const char *text)
{
        char path[512];
        FILE *f;

        test_path(name, path, sizeof(path));
        f = fopen(path, "w");
        assert_non_null(f);
        assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
        assert_int_equal(fclose(f), 0);
}

struct cfg *test_load_ok(const char *text)
{
        char path[512], msg[5000];
        struct cfg_error err;
        struct cfg *c = NULL;
        int r;

        test_write("evproxy.conf", text);
        test_path("evproxy.conf", path, sizeof(path));
        r = cfg_load(path, &c, &err);
        if (r < 0) {
                cfg_error_format(&err, msg, sizeof(msg));
                print_error("unexpected error %d: %s\n--- text:\n%s\n", r, msg, text);
                fail();
        }
        assert_non_null(c);
        assert_string_equal(c->path, path);
        return c;
}

bool test_error_is(const char *text, int line, const char *setting, const char *message)
{
        char path[512];
        struct cfg_error err;
        struct cfg *c = (struct cfg *)1;
        int r;

        test_write("evproxy.conf", text);
        test_path("evproxy.conf", path, sizeof(path));
        r = cfg_load(path, &c, &err);
        if (r == -EINVAL && !c && strcmp(err.file, path) == 0 && err.line == line &&
            strcmp(err.setting, setting) == 0 && strcmp(err.message, message) == 0)
                return true;
        print_error("--- text:\n%s--- expected -EINVAL %s:%d: [%s] [%s]\n--- got %d %s:%d: [%s] "
                    "[%s]\n",
                    text, path, line, setting, message, r, err.file, err.line, err.setting,
                    err.message);
        cfg_free(c != (struct cfg *)1 ? c : NULL);
        return false;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path);
}

int test_dir_setup(void **state)
{
        memcpy(test_dir, TEST_DIR_TEMPLATE, sizeof(test_dir));
        return mkdtemp(test_dir) ? 0 : -1;
}

int test_dir_teardown(void **state)
{
        return nftw(test_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void test_defaults(void **state)
{
        struct cfg *c = test_load_ok(ONE_ROUTE);
        const struct cfg_route *r = &c->routes[0];

        assert_int_equal(c->workers, 0);
        assert_int_equal(c->max_connections, 10000);
        assert_true(c->drain_timeout_ms == 30000);
        assert_int_equal(c->log_level, LOG_INFO);
        assert_true(c->access_log);
        assert_null(c->user);
        assert_false(c->has_metrics);
        assert_int_equal(c->forwarding, CFG_FORWARD_SPLICE);
        assert_int_equal(c->buffer_size, 65536);
        assert_int_equal(c->n_routes, 1);
        assert_string_equal(r->name, "web");
        assert_int_equal(r->n_listen, 1);
        assert_string_equal(r->listen[0].text, "127.0.0.1:8080");
        assert_int_equal(r->n_upstreams, 1);
        assert_int_equal(r->balance, CFG_BALANCE_ROUND_ROBIN);
        assert_true(r->connect_timeout_ms == 5000);
        assert_true(r->idle_timeout_ms == 300000);
        assert_int_equal(r->max_connections, 0);
        assert_int_equal(r->n_allow, 0);
        assert_null(r->allow);
        assert_int_equal(r->n_deny, 0);
        assert_int_equal(r->proxy_protocol, CFG_PROXY_OFF);
        assert_false(r->accept_proxy_protocol);
        assert_true(r->proxy_protocol_timeout_ms == 5000);
        assert_int_equal(r->unix_mode, 0660);
        assert_int_equal(r->health.fails, 3);
        assert_true(r->health.backoff_ms == 10000);
        assert_true(r->health.backoff_max_ms == 300000);
        assert_true(r->health.check_interval_ms == 0);
        assert_int_equal(r->line, 1);
        cfg_free(c);
}

static const char full_text[] =
    "workers = 4;\nmax_connections = 500000;\ndrain_timeout = 2.5;\nlog_level = \"debug\";\n"
    "access_log = true;\nuser = \"evproxy\";\nforwarding = \"copy\";\nbuffer_size = 16777216;\n"
    "metrics = { listen = \"unix:/run/evproxy/metrics.sock\"; };\n"
    "routes = (\n"
    "  { name = \"a.b-c_1\"; listen = [ \"*:80\", \"systemd:web:tls\" ];\n"
    "    upstreams = ( \"localhost:81\", \"unix:@app\" ); balance = \"least-conn\";\n"
    "    connect_timeout = 0.25; idle_timeout = 0; max_connections = 1000000;\n"
    "    allow = [ \"10.1.2.3/8\", \"::ffff:192.168.1.0/120\", \"2001:db8::1\" ];\n"
    "    deny = [ \"0.0.0.0/0\" ]; proxy_protocol = \"v2\"; accept_proxy_protocol = true;\n"
    "    proxy_protocol_timeout = 1L; unix_mode = \"600\";\n"
    "    health = { fails = 0; backoff = 600; }; health_check = { };\n"
    "  },\n"
    "  { name = \"second\"; listen = [ \"unix:/run/x.sock\" ]; upstreams = [ \"[::1]:9\" ];\n"
    "    balance = \"random\"; proxy_protocol = \"v1\"; log = 1; }\n"
    ");\n";

static void test_every_setting(void **state)
{
        char text[sizeof(full_text)];
        struct cfg *c;
        const struct cfg_route *r;

        /* The line with an unknown key proves the second route is parsed at all. */
        assert_true(test_error_is(full_text, 20, "routes[1].log", "unknown setting"));
        memcpy(text, full_text, sizeof(text));
        memcpy(strstr(text, "log = 1;"), "        ", 8);
        c = test_load_ok(text);
        assert_int_equal(c->workers, 4);
        assert_int_equal(c->max_connections, 500000);
        assert_true(c->drain_timeout_ms == 2500);
        assert_int_equal(c->log_level, LOG_DEBUG);
        assert_true(c->access_log);
        assert_string_equal(c->user, "evproxy");
        assert_int_equal(c->forwarding, CFG_FORWARD_COPY);
        assert_int_equal(c->buffer_size, 16777216);
        assert_true(c->has_metrics);
        assert_int_equal(c->metrics_listen.kind, CFG_ADDR_UNIX);
        assert_int_equal(c->n_routes, 2);
        r = &c->routes[0];
        assert_string_equal(r->name, "a.b-c_1");
        assert_int_equal(r->line, 11);
        assert_true(r->listen[0].wildcard);
        assert_int_equal(r->listen[1].kind, CFG_ADDR_SYSTEMD);
        assert_string_equal(r->listen[1].name, "web:tls");
        assert_int_equal(r->upstreams[1].addr.kind, CFG_ADDR_ABSTRACT);
        assert_int_equal(r->balance, CFG_BALANCE_LEAST_CONN);
        assert_true(r->connect_timeout_ms == 250);
        assert_true(r->idle_timeout_ms == 0);
        assert_int_equal(r->max_connections, 1000000);
        assert_int_equal(r->n_allow, 3);
        assert_int_equal(r->allow[0].family, AF_INET);
        assert_int_equal(r->allow[0].prefix, 8);
        assert_memory_equal(r->allow[0].addr, "\x0a\x00\x00\x00", 4);
        assert_int_equal(r->allow[1].family, AF_INET); /* v4-mapped becomes v4 */
        assert_int_equal(r->allow[1].prefix, 24);
        assert_memory_equal(r->allow[1].addr, "\xc0\xa8\x01\x00", 4);
        assert_int_equal(r->allow[2].family, AF_INET6);
        assert_int_equal(r->allow[2].prefix, 128);
        assert_int_equal(r->n_deny, 1);
        assert_int_equal(r->deny[0].prefix, 0);
        assert_int_equal(r->proxy_protocol, CFG_PROXY_V2);
        assert_true(r->accept_proxy_protocol);
        assert_true(r->proxy_protocol_timeout_ms == 1000);
        assert_int_equal(r->unix_mode, 0600);
        assert_int_equal(r->health.fails, 0);
        assert_true(r->health.backoff_ms == 600000);
        assert_true(r->health.backoff_max_ms == 600000); /* default follows a larger backoff */
        assert_true(r->health.check_interval_ms == 5000);
        r = &c->routes[1];
        assert_int_equal(r->balance, CFG_BALANCE_RANDOM);
        assert_int_equal(r->proxy_protocol, CFG_PROXY_V1);
        assert_int_equal(r->upstreams[0].addr.sa.ss_family, AF_INET6);
        cfg_free(c);
}

/* Durations are converted to milliseconds once, by one rule: nearest millisecond, and a
 * positive value is never 0 (which would mean "none" for idle_timeout and drain_timeout). */
static void test_durations_ms(void **state)
{
        static const struct {
                const char *value;
                uint64_t ms;
        } cases[] = {{"0", 0},     {"0.0004", 1},    {"0.0015", 2},      {"2.5", 2500},
                     {"1L", 1000}, {"0.9996", 1000}, {"86400", 86400000}};
        char text[512];

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct cfg *c;

                snprintf(
                    text, sizeof(text),
                    "drain_timeout = %s;\nroutes = ({ name = \"a\"; listen = [ \"127.0.0.1:1\" ];"
                    " upstreams = [ \"127.0.0.1:2\" ]; idle_timeout = %s; });\n",
                    cases[i].value, cases[i].value);
                c = test_load_ok(text);
                assert_true(c->drain_timeout_ms == cases[i].ms);
                assert_true(c->routes[0].idle_timeout_ms == cases[i].ms);
                cfg_free(c);
        }
}

/* 5,000 routes load (bench/cost-curves measures that many); 16,385 are too many. */
static void test_many_routes(void **state)
{
        size_t cap = 16400 * 96, len = 0;
        char *text = malloc(cap);
        struct cfg_error err;
        struct cfg *c = NULL;

        (void)state;
        assert_non_null(text);
        len += (size_t)snprintf(text + len, cap - len, "routes = (\n");
        for (int i = 0; i < 16385; i++) {
                len += (size_t)snprintf(text + len, cap - len,
                                        "%s{ name = \"r%d\"; listen = [ \"127.0.0.1:%d\" ]; "
                                        "upstreams = [ \"127.0.0.2:9\" ]; }\n",
                                        i ? "," : "", i, 1 + i);
                if (i == 4999) {
                        char *five = strndup(text, len);

                        assert_non_null(five);
                        five = realloc(five, len + 4);
                        assert_non_null(five);
                        strcpy(five + len, ");\n");
                        assert_int_equal(cfg_load_string(five, NULL, &c, &err), 0);
                        assert_int_equal(c->n_routes, 5000);
                        cfg_free(c);
                        free(five);
                }
        }
        snprintf(text + len, cap - len, ");\n");
        assert_int_equal(cfg_load_string(text, NULL, &c, &err), -EINVAL);
        assert_non_null(strstr(err.message, "too many routes (16385, at most 16384)"));
        free(text);
}

/* upstreams may mix address strings and { address; weight; max_connections; } groups. */
static void test_upstream_groups(void **state)
{
        const char *text = "routes = ( { name = \"web\"; listen = [ \"127.0.0.1:8080\" ];\n"
                           "  upstreams = ( \"127.0.0.1:8081\",\n"
                           "    { address = \"127.0.0.1:8082\"; weight = 3; },\n"
                           "    { address = \"unix:/run/app.sock\"; max_connections = 7; } );\n"
                           "} );\n";
        struct cfg *c = test_load_ok(text);
        const struct cfg_route *r = &c->routes[0];

        (void)state;
        assert_int_equal(r->n_upstreams, 3);
        assert_string_equal(r->upstreams[0].addr.text, "127.0.0.1:8081");
        assert_int_equal(r->upstreams[0].weight, 1);
        assert_int_equal(r->upstreams[0].max_connections, 0);
        assert_int_equal(r->upstreams[0].line, 2);
        assert_string_equal(r->upstreams[1].addr.text, "127.0.0.1:8082");
        assert_int_equal(r->upstreams[1].weight, 3);
        assert_int_equal(r->upstreams[1].line, 3);
        assert_int_equal(r->upstreams[2].addr.kind, CFG_ADDR_UNIX);
        assert_int_equal(r->upstreams[2].weight, 1);
        assert_int_equal(r->upstreams[2].max_connections, 7);
        cfg_free(c);
}

/* balance = "hash"; queue_timeout (off by default) and queue_size (1024 by default). */
static void test_hash_and_queue(void **state)
{
        struct cfg *c = test_load_ok("routes = ( { name = \"a\"; listen = [ \"127.0.0.1:1\" ];\n"
                                     "  upstreams = [ \"127.0.0.1:2\" ]; },\n"
                                     "  { name = \"b\"; listen = [ \"127.0.0.1:3\" ];\n"
                                     "  upstreams = [ \"127.0.0.1:4\" ]; balance = \"hash\";\n"
                                     "  queue_timeout = 2.5; queue_size = 7; } );\n");

        (void)state;
        assert_int_equal(c->routes[0].queue_timeout_ms, 0);
        assert_int_equal(c->routes[0].queue_size, 1024);
        assert_int_equal(c->routes[1].balance, CFG_BALANCE_HASH);
        assert_int_equal(c->routes[1].queue_timeout_ms, 2500);
        assert_int_equal(c->routes[1].queue_size, 7);
        cfg_free(c);
}

/* pipe_memory: bytes or "N[KMG]"; unset, max_connections x 16 KiB. */
static void test_pipe_memory(void **state)
{
        static const struct {
                const char *line;
                size_t want;
        } cases[] = {
            {"", (size_t)10000 << 14},
            {"max_connections = 2000;", (size_t)2000 << 14},
            {"pipe_memory = \"256M\";", (size_t)256 << 20},
            {"pipe_memory = \"1G\"; max_connections = 5;", (size_t)1 << 30},
            {"pipe_memory = \"2048K\";", (size_t)2 << 20},
            {"pipe_memory = 1048576;", (size_t)1 << 20},
            {"pipe_memory = 1099511627776L;", (size_t)1 << 40},
        };
        char text[512];

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct cfg *c;

                snprintf(text, sizeof(text), "%s\n" ONE_ROUTE, cases[i].line);
                c = test_load_ok(text);
                assert_int_equal(c->pipe_memory, cases[i].want);
                cfg_free(c);
        }
}

static void test_log_levels(void **state)
{
        static const char *const words[] = {"debug", "info", "notice", "warning", "error"};
        static const int levels[] = {LOG_DEBUG, LOG_INFO, LOG_NOTICE, LOG_WARNING, LOG_ERR};
        char text[512];
        size_t i;

        for (i = 0; i < 5; i++) {
                struct cfg *c;

                snprintf(text, sizeof(text), "log_level = \"%s\";\n" ONE_ROUTE, words[i]);
                c = test_load_ok(text);
                assert_int_equal(c->log_level, levels[i]);
                cfg_free(c);
        }
}

static void test_example_config(void **state)
{
        struct cfg_error err;
        struct cfg *c;
        char msg[5000];
        int r;

        r = cfg_load(EVPROXY_EXAMPLE_CONF, &c, &err);
        if (r < 0) {
                cfg_error_format(&err, msg, sizeof(msg));
                print_error("%s\n", msg);
        }
        assert_int_equal(r, 0);
        assert_int_equal(c->n_routes, 1);
        assert_string_equal(c->routes[0].name, "echo-demo");
        assert_int_equal(c->routes[0].n_listen, 2);
        assert_string_equal(c->routes[0].listen[0].text, "127.0.0.1:8080");
        assert_string_equal(c->routes[0].listen[1].text, "[::1]:8080");
        assert_string_equal(c->routes[0].upstreams[0].addr.text, "127.0.0.1:8081");
        assert_true(c->has_metrics);
        assert_string_equal(c->metrics_listen.text, "127.0.0.1:9901");
        assert_true(c->admin.enabled);
        assert_string_equal(c->admin.listen.text, "unix:/run/evproxy/admin.sock");
        assert_string_equal(c->admin.state_file, CFG_ADMIN_STATE_FILE);
        assert_null(c->user);
        cfg_free(c);
}

static void test_include(void **state)
{
        char main_path[512], inc_path[512], dir[512], msg[1200];
        struct cfg_error err;
        struct cfg *c;

        test_path("inc.d", dir, sizeof(dir));
        assert_int_equal(mkdir(dir, 0700), 0);
        test_write("inc.d/routes.conf", "routes = ( { name = \"inc\";\n"
                                        "  listen = [ \"127.0.0.1:7000\" ];\n"
                                        "  upstreams = [ \"127.0.0.1:99999\" ]; } );\n");
        test_write("main.conf", "workers = 2;\n\n@include \"inc.d/routes.conf\"\n");
        test_path("main.conf", main_path, sizeof(main_path));
        test_path("inc.d/routes.conf", inc_path, sizeof(inc_path));

        /* An error inside the included file points into it, resolved from the main file's
         * directory whatever the current directory is. */
        assert_int_equal(cfg_load(main_path, &c, &err), -EINVAL);
        assert_null(c);
        assert_string_equal(err.file, inc_path);
        assert_int_equal(err.line, 3);
        assert_string_equal(err.setting, "routes[0].upstreams[0]");
        assert_string_equal(err.message, "\"127.0.0.1:99999\": port out of range");

        /* A syntax error inside the included file, too. */
        test_write("inc.d/routes.conf", "routes = ( { name = \"inc\";\n  listen = [ ;\n");
        assert_int_equal(cfg_load(main_path, &c, &err), -EINVAL);
        assert_string_equal(err.file, inc_path);
        assert_int_equal(err.line, 2);
        assert_string_equal(err.setting, "");
        assert_string_equal(err.message, "syntax error");

        /* A missing include is reported at the @include line of the main file. */
        test_write("main.conf", "workers = 2;\n@include \"inc.d/nope.conf\"\n");
        assert_int_equal(cfg_load(main_path, &c, &err), -EINVAL);
        assert_string_equal(err.file, main_path);
        assert_int_equal(err.line, 2);
        snprintf(msg, sizeof(msg),
                 "cannot open include file (@include paths are relative to \"%s\")", dir);
        *strrchr(msg, '/') = '\0';
        strcat(msg, "\")");
        assert_string_equal(err.message, msg);

        /* libconfig 1.5 cannot include by absolute path: it always prepends the directory. */
        snprintf(msg, sizeof(msg), "@include \"%s\"\n", inc_path);
        test_write("main.conf", msg);
        assert_int_equal(cfg_load(main_path, &c, &err), -EINVAL);
        assert_int_equal(err.line, 1);
        assert_memory_equal(err.message, "cannot open include file", 24);

        test_write("inc.d/routes.conf", ONE_ROUTE);
        test_write("main.conf", "workers = 2;\n@include \"inc.d/routes.conf\"\n");
        assert_int_equal(cfg_load(main_path, &c, &err), 0);
        assert_int_equal(c->workers, 2);
        assert_string_equal(c->routes[0].name, "web");
        cfg_free(c);
}

static void expect_file_error(const char *path, int r_expected, const char *message_prefix)
{
        struct cfg_error err;
        struct cfg *c = (struct cfg *)1;
        int r = cfg_load(path, &c, &err);

        if (r != r_expected || strncmp(err.message, message_prefix, strlen(message_prefix)))
                print_error("%s: expected %d \"%s...\", got %d \"%s\"\n", path, r_expected,
                            message_prefix, r, err.message);
        assert_int_equal(r, r_expected);
        assert_null(c);
        assert_string_equal(err.file, path);
        assert_int_equal(err.line, 0);
        assert_string_equal(err.setting, "");
        assert_memory_equal(err.message, message_prefix, strlen(message_prefix));
}

/* Root opens mode-000 files, so as root (as in CI) the EACCES case runs in a child that became
 * nobody, with the test directory open to others' search meanwhile: only the file's own mode
 * refuses it. */
static void expect_eacces_as_nobody(const char *path)
{
        const char *want = "cannot open: Permission denied";
        int status;
        pid_t pid;

        assert_int_equal(chmod(test_dir, 0711), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct cfg_error err;
                struct cfg *c = NULL;
                int r;

                if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
                        _exit(2);
                r = cfg_load(path, &c, &err);
                _exit(r == -EACCES && !c && strncmp(err.message, want, strlen(want)) == 0 ? 0 : 1);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_int_equal(chmod(test_dir, 0700), 0);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_file_errors(void **state)
{
        char path[512], big_path[512];
        struct cfg_error err;
        struct cfg *c;
        char *big;
        FILE *f;

        test_path("missing.conf", path, sizeof(path));
        expect_file_error(path, -ENOENT, "cannot open: No such file or directory");
        test_path("", path, sizeof(path));
        expect_file_error(path, -EISDIR, "is a directory");
        test_path("fifo", path, sizeof(path));
        assert_int_equal(mkfifo(path, 0600), 0);
        expect_file_error(path, -EINVAL, "not a regular file"); /* and does not hang */
        expect_file_error("/dev/null", -EINVAL, "not a regular file");
        test_write("plain", ONE_ROUTE);
        test_path("plain/evproxy.conf", path, sizeof(path));
        expect_file_error(path, -ENOTDIR, "cannot open: Not a directory");
        test_path("loop", path, sizeof(path));
        assert_int_equal(symlink(path, path), 0);
        expect_file_error(path, -ELOOP, "cannot open: ");

        test_path("nul.conf", path, sizeof(path));
        f = fopen(path, "w");
        assert_non_null(f);
        fwrite("workers = 1;\0" ONE_ROUTE, 1, 13 + sizeof(ONE_ROUTE) - 1, f);
        fclose(f);
        expect_file_error(path, -EINVAL, "not a text file (contains a NUL byte)");

        big = malloc((5u << 20) + 1);
        assert_non_null(big);
        memset(big, '\n', 5u << 20);
        big[5u << 20] = '\0';
        test_write("big.conf", big);
        free(big);
        test_path("big.conf", big_path, sizeof(big_path));
        expect_file_error(big_path, -EFBIG, "file too large (over 4 MiB)");

        test_write("secret.conf", ONE_ROUTE);
        test_path("secret.conf", path, sizeof(path));
        assert_int_equal(chmod(path, 0), 0);
        if (geteuid() == 0)
                expect_eacces_as_nobody(path);
        else
                expect_file_error(path, -EACCES, "cannot open: Permission denied");

        test_path("empty.conf", path, sizeof(path));
        test_write("empty.conf", "");
        assert_int_equal(cfg_load(path, &c, &err), -EINVAL);
        assert_string_equal(err.file, path);
        assert_int_equal(err.line, 0);
        assert_string_equal(err.setting, "routes");
        assert_string_equal(err.message, "no routes: at least one is required");
        assert_int_equal(cfg_load("", &c, NULL), -EINVAL);
        assert_null(c);
}

static void test_load_string(void **state)
{
        struct cfg_error err;
        struct cfg *c;

        assert_int_equal(cfg_load_string(ONE_ROUTE, NULL, &c, &err), 0);
        assert_string_equal(c->path, "<string>");
        cfg_free(c);
        assert_int_equal(cfg_load_string("workers = x;", "fuzz.conf", &c, &err), -EINVAL);
        assert_null(c);
        assert_string_equal(err.file, "fuzz.conf");
        assert_int_equal(err.line, 1);
        assert_string_equal(err.message, "syntax error");
        assert_int_equal(cfg_load_string("workers = -3;\n" ONE_ROUTE, "s", &c, NULL), -EINVAL);
        assert_int_equal(cfg_load_string(NULL, "s", &c, &err), -EINVAL);
        cfg_free(NULL);
}

static void test_error_format(void **state)
{
        struct cfg_error err = {.file = "evproxy.conf",
                                .line = 14,
                                .setting = "routes[0].upstreams[1]",
                                .message = "\"127.0.0.1:99999\": port out of range"};
        const char *want = "evproxy.conf:14: routes[0].upstreams[1]: \"127.0.0.1:99999\": port "
                           "out of range";
        char buf[256];

        assert_int_equal(cfg_error_format(&err, buf, sizeof(buf)), (int)strlen(want));
        assert_string_equal(buf, want);
        assert_int_equal(cfg_error_format(&err, NULL, 0), (int)strlen(want));
        assert_int_equal(cfg_error_format(&err, buf, 10), (int)strlen(want));
        assert_string_equal(buf, "evproxy.c");
        err.line = 0;
        cfg_error_format(&err, buf, sizeof(buf));
        assert_string_equal(buf, "evproxy.conf: routes[0].upstreams[1]: \"127.0.0.1:99999\": "
                                 "port out of range");
        err.line = 3;
        err.setting[0] = '\0';
        strcpy(err.message, "syntax error");
        cfg_error_format(&err, buf, sizeof(buf));
        assert_string_equal(buf, "evproxy.conf:3: syntax error");
        assert_int_equal(cfg_error_format(NULL, buf, sizeof(buf)), -EINVAL);
}

int main(void)
{
        static const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_defaults),        cmocka_unit_test(test_every_setting),
            cmocka_unit_test(test_log_levels),      cmocka_unit_test(test_durations_ms),
            cmocka_unit_test(test_example_config),  cmocka_unit_test(test_include),
            cmocka_unit_test(test_file_errors),     cmocka_unit_test(test_load_string),
            cmocka_unit_test(test_error_format),    cmocka_unit_test(test_pipe_memory),
            cmocka_unit_test(test_upstream_groups), cmocka_unit_test(test_many_routes),
            cmocka_unit_test(test_hash_and_queue),
        };
        int failed = 0;

        failed += _cmocka_run_group_tests("load", tests, sizeof(tests) / sizeof(tests[0]),
                                          test_dir_setup, test_dir_teardown);
        failed += _cmocka_run_group_tests("errors", error_tests, n_error_tests, test_dir_setup,
                                          test_dir_teardown);
        failed += _cmocka_run_group_tests("addresses", addr_tests, n_addr_tests, NULL, NULL);
        failed += _cmocka_run_group_tests("diff", diff_tests, n_diff_tests, NULL, NULL);
        failed += _cmocka_run_group_tests("admin", admin_tests, n_admin_tests, test_dir_setup,
                                          test_dir_teardown);
        failed += _cmocka_run_group_tests("names", name_tests, n_name_tests, test_dir_setup,
                                          test_dir_teardown);
        failed += _cmocka_run_group_tests("policy", policy_tests, n_policy_tests, test_dir_setup,
                                          test_dir_teardown);
        failed += _cmocka_run_group_tests("handover", handover_tests, n_handover_tests,
                                          test_dir_setup, test_dir_teardown);
        failed += _cmocka_run_group_tests("match", match_tests, n_match_tests, test_dir_setup,
                                          test_dir_teardown);
        return failed ? 1 : 0;
}
