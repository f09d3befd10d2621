/* The resolver tests' harness: dnsmasq on loopback, a black-hole DNS server, an event recorder
 * and bounded driver loops (see resolver_harness.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <evproxy/timer.h>

#include "resolver_harness.h"

#define DNSMASQ "/usr/sbin/dnsmasq"

void skip_or_fail(const char *why)
{
        const char *no_skip = getenv("EVTEST_NO_SKIP");

        print_message("resolver test: %s\n", why);
        if (no_skip && strcmp(no_skip, "1") == 0)
                fail_msg("cannot skip under EVTEST_NO_SKIP=1: %s", why);
        skip();
}

void write_file(const char *path, const char *text)
{
        char tmp[256];
        FILE *f;

        snprintf(tmp, sizeof(tmp), "%s.new", path);
        f = fopen(tmp, "w");
        assert_non_null(f);
        assert_int_equal(fputs(text, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(chmod(tmp, 0644), 0);
        assert_int_equal(rename(tmp, path), 0);
}

static bool port_free(int type, int port)
{
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0), one = 1;
        bool ok;

        assert_true(fd >= 0);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)); /* as dnsmasq does */
        ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(fd);
        return ok;
}

/* A port free for both UDP and TCP, below the ephemeral range (32768-) so that the client
 * connections of other tests running meanwhile do not take it. */
static int free_port(void)
{
        for (int i = 0; i < 200; i++) {
                int port = 20000 + (int)(((unsigned)getpid() * 7919u + (unsigned)rand()) % 12000);

                if (port_free(SOCK_DGRAM, port) && port_free(SOCK_STREAM, port))
                        return port;
        }
        fail_msg("no free port for dnsmasq");
        return -1;
}

/* Ready when its TCP port accepts; false if it exited (port taken) or 5 s passed. */
static bool dns_wait_ready(struct dns_server *s)
{
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)s->port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

        for (int i = 0; i < 500; i++) {
                int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), st;
                bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;

                if (fd >= 0)
                        close(fd);
                if (ok)
                        return true;
                if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
                        s->pid = -1;
                        return false;
                }
                usleep(10000);
        }
        return false;
}

static pid_t dns_spawn(struct dns_server *s, int ttl_s, const char *const *extra)
{
        char port[32], ttl[32], hosts[128];
        const char *argv[64] = {
            DNSMASQ,
            "--no-daemon",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--local=/test/",
            "--pid-file=",
            "--user=root",
            port,
            ttl,
            hosts,
        };
        size_t n = 13;
        pid_t pid;

        snprintf(port, sizeof(port), "--port=%d", s->port);
        snprintf(ttl, sizeof(ttl), "--local-ttl=%d", ttl_s);
        snprintf(hosts, sizeof(hosts), "--addn-hosts=%s", s->hosts);
        for (size_t i = 0; extra && extra[i] && n < 62; i++)
                argv[n++] = extra[i];
        argv[n] = NULL;
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                /* Dies with the test, even one that failed before it could stop it. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                execv(DNSMASQ, (char *const *)argv);
                _exit(127);
        }
        return pid;
}

bool dns_start(struct dns_server *s, int port, int ttl_s, const char *hosts,
               const char *const *extra)
{
        if (access(DNSMASQ, X_OK) != 0)
                return false;
        if (!s->dir[0]) {
                snprintf(s->dir, sizeof(s->dir), "/tmp/evtest-dns-XXXXXX");
                assert_non_null(mkdtemp(s->dir));
                assert_int_equal(chmod(s->dir, 0755), 0);
                snprintf(s->hosts, sizeof(s->hosts), "%s/hosts", s->dir);
                snprintf(s->log, sizeof(s->log), "%s/dnsmasq.log", s->dir);
        }
        write_file(s->hosts, hosts);
        for (int attempt = 0; attempt < 5; attempt++) {
                s->port = port ? port : free_port();
                s->pid = dns_spawn(s, ttl_s, extra);
                if (dns_wait_ready(s))
                        return true;
                if (s->pid > 0)
                        dns_kill(s);
                usleep(100000);
        }
        fail_msg("dnsmasq did not start; see %s", s->log);
        return false;
}

void dns_set_hosts(struct dns_server *s, const char *hosts)
{
        write_file(s->hosts, hosts);
        assert_int_equal(kill(s->pid, SIGHUP), 0);
        usleep(50000); /* dnsmasq re-reads in its own loop; a query before that gets the old */
}

void dns_kill(struct dns_server *s)
{
        int st;

        if (s->pid <= 0)
                return;
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &st, 0);
        s->pid = -1;
}

/* Kill it and remove its directory with whatever the test wrote there. */
void dns_stop(struct dns_server *s)
{
        DIR *dir;
        struct dirent *e;

        dns_kill(s);
        if (!s->dir[0])
                return;
        dir = opendir(s->dir);
        while (dir && (e = readdir(dir)) != NULL)
                if (e->d_name[0] != '.')
                        unlinkat(dirfd(dir), e->d_name, 0);
        if (dir)
                closedir(dir);
        rmdir(s->dir);
        s->dir[0] = 0;
}

int blackhole_open(int *port)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
        *port = ntohs(sa.sin_port);
        return fd;
}

void recorder_cb(void *arg, const struct resolver_event *ev)
{
        struct recorder *r = arg;

        if (r->w == NULL && r->unwatch_on_event) {
                r->after_unwatch++;
                return;
        }
        r->status = ev->status;
        switch (ev->kind) {
        case RESOLVER_EVENT_CHANGED:
                assert_non_null(ev->old);
                assert_int_equal(ev->set->generation, ev->old->generation + 1);
                r->changed++;
                r->changed_ms = evio_now_ms();
                resolver_addrset_unref(r->set);
                r->set = resolver_addrset_ref(ev->set);
                r->added = ev->added;
                r->removed = ev->removed;
                break;
        case RESOLVER_EVENT_FAILING:
                assert_non_null(ev->detail);
                r->failing++;
                r->failing_ms = evio_now_ms();
                break;
        case RESOLVER_EVENT_RECOVERED:
                r->recovered++;
                break;
        }
        if (r->unwatch_on_event && r->w) {
                resolver_unwatch(r->w);
                r->w = NULL;
        }
}

void recorder_clear(struct recorder *r)
{
        resolver_addrset_unref(r->set);
        r->set = NULL;
}

bool turn_until_count(struct evio_driver *d, const unsigned *counter, unsigned want,
                      unsigned timeout_ms)
{
        uint64_t end = evio_now_ms() + timeout_ms;

        while (*counter < want && evio_now_ms() < end)
                evio_driver_turn(d, 20);
        return *counter >= want;
}

void turn_for(struct evio_driver *d, unsigned ms)
{
        uint64_t end = evio_now_ms() + ms;

        while (evio_now_ms() < end)
                evio_driver_turn(d, 20);
}

const char *set_text(const struct resolver_addrset *s, char *buf, size_t size)
{
        size_t used = 0;

        buf[0] = 0;
        for (size_t i = 0; i < s->len && used < size; i++) {
                const struct resolver_addr *a = &s->addrs[i];
                char ip[INET6_ADDRSTRLEN];
                int port, n;

                if (a->addr.ss_family == AF_INET) {
                        struct sockaddr_in in;
                        memcpy(&in, &a->addr, sizeof(in));
                        inet_ntop(AF_INET, &in.sin_addr, ip, sizeof(ip));
                        port = ntohs(in.sin_port);
                        n = snprintf(buf + used, size - used, "%s%s:%d", i ? " " : "", ip, port);
                } else {
                        struct sockaddr_in6 in6;
                        memcpy(&in6, &a->addr, sizeof(in6));
                        inet_ntop(AF_INET6, &in6.sin6_addr, ip, sizeof(ip));
                        port = ntohs(in6.sin6_port);
                        n = snprintf(buf + used, size - used, "%s[%s]:%d", i ? " " : "", ip, port);
                }
                used += (size_t)n;
                if (used < size && (a->priority || a->weight))
                        used += (size_t)snprintf(buf + used, size - used, "/p%u/w%u", a->priority,
                                                 a->weight);
        }
        return buf;
}

struct resolver_options test_options(const char *const ns[1])
{
        return (struct resolver_options){
            .nameservers = ns,
            .n_nameservers = ns ? 1 : 0,
            .timeout_ms = 300,
            .attempts = 2,
            .ttl_min_ms = 500,
            .ttl_max_ms = 60000,
            .retry_min_ms = 200,
            .retry_max_ms = 400,
            .nxdomain_hold_ms = 1500,
            .refresh_now_min_ms = 1000,
            .conf_check_ms = 200,
        };
}

struct rfix *rfix_new(int ttl_s, const char *hosts, const char *const *extra)
{
        struct rfix *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        if (!dns_start(&f->dns, 0, ttl_s, hosts, extra)) {
                free(f);
                skip_or_fail("dnsmasq is not installed (apt-get install dnsmasq-base)");
        }
        snprintf(f->ns, sizeof(f->ns), "127.0.0.1:%d", f->dns.port);
        f->nsv[0] = f->ns;
        f->o = test_options(f->nsv);
        assert_int_equal(evio_driver_new(&f->d, NULL), 0);
        return f;
}

void rfix_start(struct rfix *f)
{
        assert_int_equal(resolver_new(f->d, &f->o, &f->res), 0);
}

void rfix_free(struct rfix *f)
{
        struct evio_driver_metrics dm;

        resolver_free(f->res);
        /* Every c-ares socket was deregistered (before c-ares closed it). */
        evio_handle_metrics(evio_driver_handle(f->d), &dm);
        assert_int_equal(dm.registered_count, dm.deregistered_count);
        recorder_clear(&f->rec);
        evio_driver_free(f->d);
        dns_stop(&f->dns);
        free(f);
}
