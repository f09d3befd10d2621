/* evproxyctl [-s SOCKET] [--json] [-t SECONDS] COMMAND [ARGS]: one request to evproxyd's admin
 * socket, one answer printed (tables, or the JSON itself with --json). Exit status: 0 the
 * daemon did it, 1 it refused or failed (a reload with a bad file, an unknown server, no daemon
 * to talk to), 2 a usage error. Made to serve as systemd's ExecReload: `evproxyctl reload`
 * returns once every worker applied the new file, or fails with the file:line reason. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

#ifndef EVPROXY_VERSION
#define EVPROXY_VERSION "0.0.0"
#endif

/* Longer than the daemon waits for a reload, so its own timeout answer gets through. */
#define DEFAULT_TIMEOUT_S 70
_Static_assert(DEFAULT_TIMEOUT_S * 1000 > ADMIN_RELOAD_TIMEOUT_MS, "outwait the daemon");

struct opts {
        const char *socket;
        bool json, kill;
        const char *route, *server;
        double timeout_s;
};

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: evproxyctl [-s SOCKET] [--json] [-t SECONDS] COMMAND [ARGS]\n"
                "Talk to evproxyd's admin socket (default " ADMIN_DEFAULT_SOCKET ").\n\n"
                "Commands:\n"
                "  status                  version, uptime, last reload, per-route totals\n"
                "  servers [ROUTE]         upstream servers: state, health, connections\n"
                "  drain ROUTE SERVER      no new connections; open ones finish\n"
                "  maint ROUTE SERVER      no new connections (kept across restarts)\n"
                "  ready ROUTE SERVER      back into service\n"
                "  reload                  reload the configuration and wait until applied\n"
                "  check                   validate the configuration file, apply nothing\n"
                "  conns [--route R] [--server S]   open connections\n"
                "  kill CONN_ID            reset one connection\n\n"
                "Options:\n"
                "  -s, --socket PATH   admin socket\n"
                "  -j, --json          print the daemon's JSON answer\n"
                "  -t, --timeout SECS  give up after this long (default %d)\n"
                "  -h, --help          this help;  -V, --version  the version\n",
                DEFAULT_TIMEOUT_S);
}

static int usage_error(const char *fmt, const char *arg)
{
        fprintf(stderr, "evproxyctl: ");
        fprintf(stderr, fmt, arg);
        fprintf(stderr, "\nTry 'evproxyctl --help'.\n");
        return 2;
}

static int copy_arg(char *dst, size_t size, const char *src, const char *what)
{
        if (!src[0] || strlen(src) >= size)
                return usage_error("%s must have 1 to a few dozen characters", what);
        memcpy(dst, src, strlen(src) + 1);
        return 0;
}

static int parse_id(const char *s, uint64_t *out)
{
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || end == s || *end || v == 0 || s[0] == '-')
                return usage_error("not a connection id: '%s'", s);
        *out = v;
        return 0;
}

/* COMMAND [ARGS] -> req. 0 or the exit status 2 (message printed). */
static int parse_command(int argc, char **argv, const struct opts *o, struct admin_request *req)
{
        static const char *const names[] = {"status", "servers", "drain", "maint", "ready",
                                            "reload", "check",   "conns", "kill"};
        static const int nargs[] = {0, -1, 2, 2, 2, 0, 0, 0, 1}; /* -1: 0 or 1 */
        int i, n = argc - 1;

        memset(req, 0, sizeof(*req));
        if (argc < 1)
                return usage_error("%s", "no command given");
        for (i = 0; i < 9 && strcmp(argv[0], names[i]) != 0; i++)
                ;
        if (i == 9)
                return usage_error("unknown command '%s'", argv[0]);
        req->cmd = (enum admin_cmd)i;
        if (nargs[i] >= 0 ? n != nargs[i] : n > 1)
                return usage_error("wrong number of arguments for '%s'", argv[0]);
        if (o->kill && req->cmd != ADMIN_CMD_MAINT)
                return usage_error("%s", "--kill goes with maint only");
        if ((o->route || o->server) && req->cmd != ADMIN_CMD_CONNS)
                return usage_error("%s", "--route and --server go with conns only");
        req->kill = o->kill;
        if (req->cmd == ADMIN_CMD_KILL)
                return parse_id(argv[1], &req->id);
        if (n >= 1 && copy_arg(req->route, sizeof(req->route), argv[1], "ROUTE"))
                return 2;
        if (n == 2 && copy_arg(req->server, sizeof(req->server), argv[2], "SERVER"))
                return 2;
        if (o->route && copy_arg(req->route, sizeof(req->route), o->route, "--route"))
                return 2;
        if (o->server && copy_arg(req->server, sizeof(req->server), o->server, "--server"))
                return 2;
        return 0;
}

static long long ms_left(const struct timespec *end)
{
        struct timespec now;

        clock_gettime(CLOCK_MONOTONIC, &now);
        return (long long)(end->tv_sec - now.tv_sec) * 1000 +
               (end->tv_nsec - now.tv_nsec) / 1000000;
}

/* Wait for events on fd until the deadline: 0, or -ETIMEDOUT / -errno. */
static int wait_fd(int fd, short events, const struct timespec *end)
{
        struct pollfd p = {.fd = fd, .events = events};
        long long left;
        int n;

        for (;;) {
                left = ms_left(end);
                if (left <= 0)
                        return -ETIMEDOUT;
                n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
                if (n > 0)
                        return 0;
                if (n < 0 && errno != EINTR)
                        return -errno;
        }
}

static int connect_to(const char *path, int *out)
{
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        int fd;

        if (strlen(path) >= sizeof(sun.sun_path))
                return -ENAMETOOLONG;
        memcpy(sun.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd == -1)
                return -errno;
        /* A unix connect completes at once or fails (EAGAIN: the backlog is full). */
        if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
                int r = -errno;

                close(fd);
                return r;
        }
        *out = fd;
        return 0;
}

static int send_all(int fd, const char *buf, size_t len, const struct timespec *end)
{
        while (len > 0) {
                ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
                int r;

                if (n > 0) {
                        buf += n;
                        len -= (size_t)n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n == 0 || errno != EAGAIN)
                        return n == 0 ? -EPIPE : -errno;
                r = wait_fd(fd, POLLOUT, end);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Read the whole answer (until the daemon closes) into a NUL-terminated buffer. */
static int recv_all(int fd, char **out, size_t *out_len, const struct timespec *end)
{
        size_t len = 0, cap = 4096;
        char *buf = malloc(cap), *p;
        int r = 0;

        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n;

                if (len + 1 == cap) {
                        p = cap >= ADMIN_MAX_RESPONSE ? NULL : realloc(buf, cap * 2);
                        if (!p) {
                                r = -EFBIG;
                                break;
                        }
                        buf = p;
                        cap *= 2;
                }
                n = recv(fd, buf + len, cap - len - 1, 0);
                if (n > 0) {
                        len += (size_t)n;
                        continue;
                }
                if (n == 0 || errno == ECONNRESET) /* a reset after the answer: keep it */
                        break;
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN) {
                        r = -errno;
                        break;
                }
                if ((r = wait_fd(fd, POLLIN, end)) < 0)
                        break;
        }
        if (r < 0) {
                free(buf);
                return r;
        }
        buf[len] = '\0';
        *out = buf;
        *out_len = len;
        return 0;
}

/* Send req, return the answer. Failures are printed; returns 0 or 1 (the exit status). */
static int exchange(const struct opts *o, const struct admin_request *req, json_t **resp)
{
        char *line = admin_request_format(req), *text = NULL;
        struct timespec end;
        json_error_t jerr;
        size_t len = 0;
        int fd = -1, r;

        if (!line) {
                fprintf(stderr, "evproxyctl: out of memory (or an argument is not UTF-8)\n");
                return 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &end);
        end.tv_sec += (time_t)o->timeout_s;
        end.tv_nsec += (long)((o->timeout_s - (double)(time_t)o->timeout_s) * 1e9);
        if (end.tv_nsec >= 1000000000) {
                end.tv_sec++;
                end.tv_nsec -= 1000000000;
        }
        r = connect_to(o->socket, &fd);
        if (r < 0) {
                fprintf(stderr, "evproxyctl: %s: %s%s\n", o->socket, strerror(-r),
                        r == -ENOENT || r == -ECONNREFUSED
                            ? " (is evproxyd running with admin = { listen = ... }?)"
                            : "");
                free(line);
                return 1;
        }
        r = send_all(fd, line, strlen(line), &end);
        free(line);
        /* A daemon that will not talk to us closes at once: say so below, not "Broken pipe". */
        if (r == 0 || r == -EPIPE || r == -ECONNRESET)
                r = recv_all(fd, &text, &len, &end);
        close(fd);
        if (r < 0) {
                fprintf(stderr, "evproxyctl: %s: %s\n", o->socket,
                        r == -ETIMEDOUT ? "no answer in time" : strerror(-r));
                return 1;
        }
        if (len == 0) {
                fprintf(stderr,
                        "evproxyctl: %s: the daemon closed the connection without an "
                        "answer (is this user root, the daemon's user or in the "
                        "socket's group?)\n",
                        o->socket);
                free(text);
                return 1;
        }
        *resp = json_loads(text, 0, &jerr);
        free(text);
        if (!*resp || !json_is_object(*resp)) {
                fprintf(stderr, "evproxyctl: the daemon's answer is not a JSON object: %s\n",
                        jerr.text);
                json_decref(*resp);
                return 1;
        }
        return 0;
}

static int parse_options(int argc, char **argv, struct opts *o)
{
        static const struct option longs[] = {{"socket", required_argument, NULL, 's'},
                                              {"json", no_argument, NULL, 'j'},
                                              {"timeout", required_argument, NULL, 't'},
                                              {"kill", no_argument, NULL, 'k'},
                                              {"route", required_argument, NULL, 'r'},
                                              {"server", required_argument, NULL, 'S'},
                                              {"help", no_argument, NULL, 'h'},
                                              {"version", no_argument, NULL, 'V'},
                                              {NULL, 0, NULL, 0}};
        char *end;
        int c;

        while ((c = getopt_long(argc, argv, "s:jt:hV", longs, NULL)) != -1) {
                switch (c) {
                case 's':
                        o->socket = optarg;
                        break;
                case 'j':
                        o->json = true;
                        break;
                case 't':
                        o->timeout_s = strtod(optarg, &end);
                        if (*end || !(o->timeout_s > 0 && o->timeout_s <= 86400))
                                return usage_error("not a timeout in seconds: '%s'", optarg);
                        break;
                case 'k':
                        o->kill = true;
                        break;
                case 'r':
                        o->route = optarg;
                        break;
                case 'S':
                        o->server = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        exit(0);
                case 'V':
                        printf("evproxyctl %s\n", EVPROXY_VERSION);
                        exit(0);
                default:
                        fprintf(stderr, "Try 'evproxyctl --help'.\n");
                        return 2;
                }
        }
        return 0;
}

int main(int argc, char **argv)
{
        struct opts o = {.socket = ADMIN_DEFAULT_SOCKET, .timeout_s = DEFAULT_TIMEOUT_S};
        struct admin_request req;
        json_t *resp = NULL;
        bool ok;
        int r;

        r = parse_options(argc, argv, &o);
        if (r == 0)
                r = parse_command(argc - optind, argv + optind, &o, &req);
        if (r != 0)
                return r;
        if (exchange(&o, &req, &resp) != 0)
                return 1;
        ok = json_is_true(json_object_get(resp, "ok"));
        if (o.json) {
                json_dumpf(resp, stdout, JSON_INDENT(2));
                fputc('\n', stdout);
        } else if (ok) {
                ctl_print(stdout, &req, resp);
        } else {
                const char *why = json_string_value(json_object_get(resp, "error"));

                fprintf(stderr, "evproxyctl: %s%s\n",
                        req.cmd == ADMIN_CMD_RELOAD ? "reload failed: " : "",
                        why ? why : "the daemon refused, without saying why");
        }
        json_decref(resp);
        return ok && fflush(stdout) == 0 ? 0 : 1;
}
