/* The resolver's own logic and its failure policy: address sets (sort, dedup, find, diff), the
 * DNS TTL reader, option checks, a numeric name looked up once; a DNS server killed (last good
 * set kept, "failing" once, "recovered" once), NXDOMAIN (set dropped after the hold), a name
 * that appears later, a server that never answers (the driver's other work sees no latency),
 * reconfigure with a lookup in flight, unwatch and free mid-lookup or from a callback; and
 * failure injection (-Wl,--wrap) of the c-ares channel, driver registration and timers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ares.h>
#include <evproxy/driver.h>
#include <evproxy/timer.h>

#include "resolver_harness.h"
#include "resolver_int.h"

/* ----- failure injection ----- */

static bool fail_ares_init, fail_register, fail_timer_arm;

int __real_ares_init_options(ares_channel *ch, struct ares_options *o, int mask);
int __wrap_ares_init_options(ares_channel *ch, struct ares_options *o, int mask);
int __real_evio_handle_register(struct evio_handle *h, int fd, uint32_t interest,
                                const struct evio_waker *w, struct evio_scheduled_io **out);
int __wrap_evio_handle_register(struct evio_handle *h, int fd, uint32_t interest,
                                const struct evio_waker *w, struct evio_scheduled_io **out);
int __real_evio_timer_arm(struct evio_driver *d, struct evio_timer *t, uint64_t deadline_ms);
int __wrap_evio_timer_arm(struct evio_driver *d, struct evio_timer *t, uint64_t deadline_ms);

int __wrap_ares_init_options(ares_channel *ch, struct ares_options *o, int mask)
{
        return fail_ares_init ? ARES_ENOMEM : __real_ares_init_options(ch, o, mask);
}

int __wrap_evio_handle_register(struct evio_handle *h, int fd, uint32_t interest,
                                const struct evio_waker *w, struct evio_scheduled_io **out)
{
        return fail_register ? -ENOMEM : __real_evio_handle_register(h, fd, interest, w, out);
}

int __wrap_evio_timer_arm(struct evio_driver *d, struct evio_timer *t, uint64_t deadline_ms)
{
        return fail_timer_arm ? -ENOMEM : __real_evio_timer_arm(d, t, deadline_ms);
}

/* ----- address sets ----- */

static struct resolver_addr v4(const char *ip, uint16_t port, uint16_t prio, uint16_t weight)
{
        struct sockaddr_in sa = {.sin_family = AF_INET};
        struct resolver_addr a;

        assert_int_equal(inet_pton(AF_INET, ip, &sa.sin_addr), 1);
        assert_true(resolver__addr_set(&a, (struct sockaddr *)&sa, port, prio, weight));
        return a;
}

static struct resolver_addr v6(const char *ip, uint16_t port)
{
        struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
        struct resolver_addr a;

        assert_int_equal(inet_pton(AF_INET6, ip, &sa.sin6_addr), 1);
        assert_true(resolver__addr_set(&a, (struct sockaddr *)&sa, port, 0, 0));
        return a;
}

static void test_addrset(void **state)
{
        struct resolver_addr in[] = {
            v4("10.0.0.2", 80, 2, 5), v6("fd00::1", 80),        v4("10.0.0.1", 81, 0, 0),
            v4("10.0.0.2", 80, 1, 3), v4("10.0.0.1", 80, 0, 0), v4("10.0.0.2", 80, 1, 9),
        };
        struct resolver_addrset *s = resolver__addrset_new(in, 6, RESOLVER_STATUS_OK), *t, *e;
        struct resolver_addr probe = v4("10.0.0.1", 81, 0, 0), missing = v4("10.0.0.1", 82, 0, 0);
        char buf[256];

        assert_string_equal(set_text(s, buf, sizeof(buf)),
                            "10.0.0.1:80 10.0.0.1:81 10.0.0.2:80/p1/w9 [fd00::1]:80");
        assert_int_equal(resolver_addrset_find(s, (struct sockaddr *)&probe.addr, probe.len), 1);
        assert_int_equal(resolver_addrset_find(s, (struct sockaddr *)&missing.addr, missing.len),
                         -1);
        assert_int_equal(resolver_addrset_find(s, (struct sockaddr *)&in[1].addr, in[1].len), 3);
        /* Same addresses in another order and with duplicates: the same set. */
        t = resolver__addrset_new((struct resolver_addr[]){in[1], in[5], in[4], in[2], in[4]}, 5,
                                  RESOLVER_STATUS_OK);
        assert_true(resolver_addrset_same(s, t));
        resolver_addrset_unref(t);
        /* A weight change is a change; one address replaced: one added, one removed. */
        t = resolver__addrset_new((struct resolver_addr[]){in[1], in[3], in[4], in[2]}, 4,
                                  RESOLVER_STATUS_OK);
        assert_false(resolver_addrset_same(s, t));
        assert_int_equal(resolver__addrset_missing(s, t), 0);
        resolver_addrset_unref(t);
        t = resolver__addrset_new((struct resolver_addr[]){in[1], in[5], in[4], missing}, 4,
                                  RESOLVER_STATUS_OK);
        assert_int_equal(resolver__addrset_missing(s, t), 1);
        assert_int_equal(resolver__addrset_missing(t, s), 1);
        e = resolver__addrset_new(NULL, 0, RESOLVER_STATUS_NXDOMAIN);
        assert_int_equal(e->len, 0);
        assert_int_equal(resolver__addrset_missing(e, s), 4);
        assert_int_equal(resolver__addrset_missing(s, e), 0);
        assert_ptr_equal(resolver_addrset_ref(t), t);
        resolver_addrset_unref(t);
        resolver_addrset_unref(t);
        resolver_addrset_unref(e);
        resolver_addrset_unref(s);
        resolver_addrset_unref(NULL);
}

/* Sets are published to workers: refs taken and dropped on other threads, the last one frees
 * (TSan checks the counting; ASan/valgrind that the set is freed once, after its last read). */
static void *hold_and_read(void *arg)
{
        struct resolver_addrset *s = arg;
        unsigned sum = 0;

        for (int i = 0; i < 2000; i++) {
                struct resolver_addrset *mine = resolver_addrset_ref(s);
                sum += (unsigned)mine->len + mine->addrs[0].len;
                resolver_addrset_unref(mine);
        }
        resolver_addrset_unref(s); /* the reference the main thread handed over */
        return (void *)(uintptr_t)sum;
}

static void test_addrset_across_threads(void **state)
{
        struct resolver_addr a = v4("10.0.0.1", 1, 0, 0);
        struct resolver_addrset *s = resolver__addrset_new(&a, 1, RESOLVER_STATUS_OK);
        pthread_t t[4];

        for (int i = 0; i < 4; i++)
                assert_int_equal(
                    pthread_create(&t[i], NULL, hold_and_read, resolver_addrset_ref(s)), 0);
        resolver_addrset_unref(s); /* the threads may now hold the last references */
        for (int i = 0; i < 4; i++) {
                void *sum;
                assert_int_equal(pthread_join(t[i], &sum), 0);
                assert_int_equal((uintptr_t)sum, 2000 * (1 + sizeof(struct sockaddr_in)));
        }
}

/* ----- the DNS TTL reader ----- */

static size_t put(unsigned char *b, size_t at, const void *p, size_t n)
{
        memcpy(b + at, p, n);
        return at + n;
}

/* Header + question "x.test" SRV IN + answers (name: pointer to the question). */
static size_t dns_msg(unsigned char *b, const uint16_t *types, const uint32_t *ttls, int n)
{
        unsigned char hdr[12] = {0x12, 0x34, 0x81, 0x80, 0, 1, 0, (unsigned char)n, 0, 0, 0, 0};
        static const unsigned char q[] = {1, 'x', 4, 't', 'e', 's', 't', 0, 0, 33, 0, 1};
        size_t at = put(b, 0, hdr, sizeof(hdr));

        at = put(b, at, q, sizeof(q));
        for (int i = 0; i < n; i++) {
                unsigned char rr[16] = {0xc0,
                                        12,
                                        0,
                                        (unsigned char)types[i],
                                        0,
                                        1,
                                        (unsigned char)(ttls[i] >> 24),
                                        (unsigned char)(ttls[i] >> 16),
                                        (unsigned char)(ttls[i] >> 8),
                                        (unsigned char)ttls[i],
                                        0,
                                        4,
                                        1,
                                        2,
                                        3,
                                        4};
                at = put(b, at, rr, sizeof(rr));
        }
        return at;
}

static void test_dns_answer_ttl(void **state)
{
        unsigned char b[512];
        uint32_t ttl = 7;
        size_t len;

        len = dns_msg(b, (uint16_t[]){33, 33, 1}, (uint32_t[]){300, 60, 5}, 3);
        assert_int_equal(resolver__dns_answer_ttl(b, len, 33, &ttl), 2);
        assert_int_equal(ttl, 60); /* the A record's 5 is not an SRV's */
        len = dns_msg(b, (uint16_t[]){5, 33}, (uint32_t[]){30, 60}, 2);
        assert_int_equal(resolver__dns_answer_ttl(b, len, 33, &ttl), 2);
        assert_int_equal(ttl, 30); /* a CNAME on the way bounds it */
        len = dns_msg(b, (uint16_t[]){33}, (uint32_t[]){0x80000000u}, 1);
        assert_int_equal(resolver__dns_answer_ttl(b, len, 33, &ttl), 1);
        assert_int_equal(ttl, 0); /* RFC 2181: the top bit means 0 */
        ttl = 7;
        len = dns_msg(b, NULL, NULL, 0);
        assert_int_equal(resolver__dns_answer_ttl(b, len, 33, &ttl), 0);
        assert_int_equal(ttl, 7);
        /* Every truncation of a good message is refused, never read past. */
        len = dns_msg(b, (uint16_t[]){33, 33}, (uint32_t[]){300, 60}, 2);
        for (size_t cut = 0; cut < len; cut++) {
                unsigned char *copy = malloc(cut ? cut : 1);
                memcpy(copy, b, cut);
                assert_int_equal(resolver__dns_answer_ttl(copy, cut, 33, &ttl), -EBADMSG);
                free(copy);
        }
        /* A label type 0x40; a name whose labels run past the end. */
        len = dns_msg(b, NULL, NULL, 0);
        b[12] = 0x41;
        assert_int_equal(resolver__dns_answer_ttl(b, len, 33, &ttl), -EBADMSG);
        memset(b, 0, sizeof(b));
        b[5] = 1;
        for (size_t at = 12; at < sizeof(b); at += 64)
                b[at] = 63;
        assert_int_equal(resolver__dns_answer_ttl(b, sizeof(b), 33, &ttl), -EBADMSG);
}

/* ----- options, watches without DNS ----- */

static void nothing(void *arg, const struct resolver_event *ev)
{
}

static void test_bad_options(void **state)
{
        const char *bad_ns[][1] = {{"1.2.3.4, 5.6.7.8"}, {""}, {"not-an-address"}};
        struct evio_driver *d;
        struct resolver *res = NULL;
        struct resolver_watch *w = NULL;
        struct resolver_options o = test_options(NULL);
        char long_name[300];

        assert_int_equal(evio_driver_new(&d, NULL), 0);
        for (size_t i = 0; i < 3; i++) {
                o = test_options(bad_ns[i]);
                assert_int_equal(resolver_new(d, &o, &res), -EINVAL);
        }
        o = test_options(NULL);
        o.ttl_min_ms = 10000;
        o.ttl_max_ms = 5000;
        assert_int_equal(resolver_new(d, &o, &res), -EINVAL);
        o = test_options(NULL);
        o.jitter_pct = 100;
        assert_int_equal(resolver_new(d, &o, &res), -EINVAL);
        assert_int_equal(resolver_new(d, NULL, &res), 0); /* all defaults, system resolv.conf */
        memset(long_name, 'a', sizeof(long_name) - 1);
        long_name[sizeof(long_name) - 1] = 0;
        assert_int_equal(resolver_watch(res, "", 1, RESOLVER_FAMILY_ANY, nothing, NULL, &w),
                         -EINVAL);
        assert_int_equal(resolver_watch(res, long_name, 1, RESOLVER_FAMILY_ANY, nothing, NULL, &w),
                         -EINVAL);
        assert_int_equal(resolver_watch(res, "x.test", 1, RESOLVER_FAMILY_ANY, NULL, NULL, &w),
                         -EINVAL);
        assert_int_equal(
            resolver_watch(res, "x.test", 1, (enum resolver_family)7, nothing, NULL, &w), -EINVAL);
        o = test_options(bad_ns[2]);
        assert_int_equal(resolver_reconfigure(res, &o), -EINVAL);
        assert_null(w);
        resolver_free(res);
        resolver_free(NULL);
        evio_driver_free(d);
}

/* A numeric name resolves without DNS, once: there is nothing to refresh. */
static void test_numeric_name(void **state)
{
        struct evio_driver *d;
        struct resolver *res;
        struct resolver_watch *w;
        struct resolver_options o = test_options(NULL);
        struct resolver_metrics m;
        struct recorder rec = {0};
        char buf[128];

        o.ttl_min_ms = o.ttl_max_ms = 100;
        assert_int_equal(evio_driver_new(&d, NULL), 0);
        assert_int_equal(resolver_new(d, &o, &res), 0);
        assert_int_equal(
            resolver_watch(res, "192.0.2.7", 53, RESOLVER_FAMILY_ANY, recorder_cb, &rec, &w), 0);
        assert_int_equal(rec.changed, 0);
        assert_true(turn_until_count(d, &rec.changed, 1, 1000));
        assert_string_equal(set_text(rec.set, buf, sizeof(buf)), "192.0.2.7:53");
        turn_for(d, 400);
        resolver_metrics(res, &m);
        assert_int_equal(m.lookups_started, 1);
        assert_int_equal(m.watches, 1);
        resolver_unwatch(w);
        resolver_metrics(res, &m);
        assert_int_equal(m.watches, 0);
        resolver_free(res);
        recorder_clear(&rec);
        evio_driver_free(d);
}

/* ----- failure policy against dnsmasq ----- */

static struct rfix *fx_new(int ttl_s, const char *hosts)
{
        struct rfix *f = rfix_new(ttl_s, hosts, NULL);

        rfix_start(f);
        return f;
}

static void fx_watch(struct rfix *f, const char *name)
{
        assert_int_equal(
            resolver_watch(f->res, name, 5, RESOLVER_FAMILY_IPV4, recorder_cb, &f->rec, &f->w), 0);
}

/* The DNS server dies: the last good set stays, "failing" is said once however many lookups
 * fail; it comes back on the same port: "recovered" once, still the same set. */
static void test_server_killed(void **state)
{
        struct rfix *f = fx_new(1, "10.0.0.1 db.test\n10.0.0.2 db.test\n");
        struct resolver_watch_info info;
        int port = f->dns.port;

        fx_watch(f, "db.test");
        assert_true(turn_until_count(f->d, &f->rec.changed, 1, 3000));
        dns_kill(&f->dns);
        assert_true(turn_until_count(f->d, &f->rec.failing, 1, 4000));
        assert_true(f->rec.status == RESOLVER_STATUS_REFUSED ||
                    f->rec.status == RESOLVER_STATUS_TIMEOUT);
        turn_for(f->d, 2000); /* several more failed lookups (retry 200..400 ms) */
        resolver_watch_info(f->w, &info);
        assert_true(info.failing);
        assert_true(info.lookups[RESOLVER_STATUS_REFUSED] + info.lookups[RESOLVER_STATUS_TIMEOUT] >=
                    3);
        assert_true(info.ms_since_success >= 2000);
        assert_int_equal(info.addresses, 2);
        assert_int_equal(f->rec.failing, 1);
        assert_int_equal(f->rec.changed, 1);
        assert_int_equal(resolver_watch_set(f->w)->len, 2);

        assert_true(dns_start(&f->dns, port, 1, "10.0.0.1 db.test\n10.0.0.2 db.test\n", NULL));
        assert_true(turn_until_count(f->d, &f->rec.recovered, 1, 3000));
        turn_for(f->d, 1200);
        assert_int_equal(f->rec.recovered, 1);
        assert_int_equal(f->rec.failing, 1);
        assert_int_equal(f->rec.changed, 1);
        rfix_free(f);
}

/* NXDOMAIN: "failing" at once, the set kept for the hold (1.5 s), then emptied. */
static void test_nxdomain_hold(void **state)
{
        struct rfix *f = fx_new(1, "10.0.0.1 db.test\n");
        uint64_t held;

        fx_watch(f, "db.test");
        assert_true(turn_until_count(f->d, &f->rec.changed, 1, 3000));
        dns_set_hosts(&f->dns, "10.0.0.9 other.test\n");
        assert_true(turn_until_count(f->d, &f->rec.failing, 1, 3000));
        assert_int_equal(f->rec.status, RESOLVER_STATUS_NXDOMAIN);
        assert_int_equal(resolver_watch_set(f->w)->len, 1);
        assert_true(turn_until_count(f->d, &f->rec.changed, 2, 3000));
        held = f->rec.changed_ms - f->rec.failing_ms;
        print_message("NXDOMAIN: set emptied %llu ms after the first negative answer (hold 1500)\n",
                      (unsigned long long)held);
        assert_true(held >= 1450 && held <= 2200);
        assert_int_equal(f->rec.set->len, 0);
        assert_int_equal(f->rec.set->status, RESOLVER_STATUS_NXDOMAIN);
        assert_int_equal(f->rec.removed, 1);
        assert_int_equal(f->rec.failing, 1);
        rfix_free(f);
}

/* A name unknown at start: an empty set, "failing"; once it exists, its set and "recovered". */
static void test_name_appears_later(void **state)
{
        struct rfix *f = fx_new(1, "10.0.0.1 db.test\n");

        fx_watch(f, "late.test");
        assert_true(turn_until_count(f->d, &f->rec.failing, 1, 3000));
        assert_int_equal(f->rec.changed, 0);
        assert_int_equal(resolver_watch_set(f->w)->len, 0);
        assert_int_equal(resolver_watch_set(f->w)->generation, 0);
        dns_set_hosts(&f->dns, "10.0.0.1 db.test\n10.0.0.7 late.test\n");
        assert_true(turn_until_count(f->d, &f->rec.changed, 1, 2000));
        assert_string_equal(set_text(f->rec.set, f->buf, sizeof(f->buf)), "10.0.0.7:5");
        assert_int_equal(f->rec.recovered, 1);
        rfix_free(f);
}

/* One lookup that brings two events (recovered, then changed): unwatching in the first one
 * means the second is never delivered. */
static void test_unwatch_between_events(void **state)
{
        struct rfix *f = fx_new(1, "10.0.0.1 db.test\n");

        fx_watch(f, "late.test");
        assert_true(turn_until_count(f->d, &f->rec.failing, 1, 3000));
        f->rec.unwatch_on_event = true;
        f->rec.w = f->w;
        dns_set_hosts(&f->dns, "10.0.0.7 late.test\n");
        assert_true(turn_until_count(f->d, &f->rec.recovered, 1, 2000));
        turn_for(f->d, 300);
        assert_null(f->rec.w);
        assert_int_equal(f->rec.changed, 0);
        assert_int_equal(f->rec.after_unwatch, 0);
        rfix_free(f);
}

/* ----- a server that never answers ----- */

struct pingpong {
        struct evio_driver *d;
        struct evio_timer t;
        int sv[2];
        struct timespec sent;
        uint64_t max_us;
        unsigned rounds;
};

static uint64_t us_since(const struct timespec *t0)
{
        struct timespec now;

        clock_gettime(CLOCK_MONOTONIC, &now);
        return (uint64_t)(now.tv_sec - t0->tv_sec) * 1000000 +
               (uint64_t)((now.tv_nsec - t0->tv_nsec) / 1000);
}

static void ping(struct evio_timer *t, void *arg)
{
        struct pingpong *p = arg;

        clock_gettime(CLOCK_MONOTONIC, &p->sent);
        assert_int_equal(write(p->sv[0], "x", 1), 1);
}

static void pong(void *arg, uint32_t ready)
{
        struct pingpong *p = arg;
        char c;
        uint64_t us = us_since(&p->sent);

        while (read(p->sv[1], &c, 1) == 1)
                ;
        if (us > p->max_us)
                p->max_us = us;
        p->rounds++;
        evio_timer_arm(p->d, &p->t, evio_now_ms() + 2);
}

static bool under_valgrind(void)
{
        const char *preload = getenv("LD_PRELOAD");

        return preload && strstr(preload, "valgrind");
}

static void test_stuck_server_no_latency(void **state)
{
        struct pingpong p = {0};
        struct evio_waker wk = {pong, &p};
        struct evio_scheduled_io *io;
        struct evio_driver *d;
        struct resolver *res;
        struct resolver_watch *w;
        struct recorder rec = {0};
        char ns[64];
        const char *nsv[1] = {ns};
        struct resolver_options o = test_options(nsv);
        int port, hole = blackhole_open(&port);
        uint64_t t0 = evio_now_ms();

        snprintf(ns, sizeof(ns), "127.0.0.1:%d", port);
        assert_int_equal(evio_driver_new(&d, NULL), 0);
        assert_int_equal(resolver_new(d, &o, &res), 0);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p.sv),
                         0);
        p.d = d;
        evio_timer_init(&p.t, ping, &p);
        assert_int_equal(
            evio_handle_register(evio_driver_handle(d), p.sv[1], EVIO_INTEREST_READABLE, &wk, &io),
            0);
        assert_int_equal(
            resolver_watch(res, "stuck.test", 1, RESOLVER_FAMILY_ANY, recorder_cb, &rec, &w), 0);
        evio_timer_arm(d, &p.t, evio_now_ms() + 2);
        assert_true(turn_until_count(d, &rec.failing, 1, 5000));
        print_message("stuck DNS server: timeout after %llu ms; %u ping-pongs on the same driver, "
                      "max latency %llu us\n",
                      (unsigned long long)(evio_now_ms() - t0), p.rounds,
                      (unsigned long long)p.max_us);
        assert_int_equal(rec.status, RESOLVER_STATUS_TIMEOUT);
        assert_int_equal(rec.changed, 0);
        assert_true(p.rounds > 100);
        /* A blocking lookup would stall the driver for a whole try (300 ms); under valgrind
         * everything is slower and spikes of tens of ms come from it, not from us. */
        assert_true(p.max_us < (under_valgrind() ? 200000u : 25000u));
        resolver_free(res);
        evio_timer_cancel(d, &p.t);
        evio_handle_deregister(evio_driver_handle(d), io);
        close(p.sv[0]);
        close(p.sv[1]);
        close(hole);
        evio_driver_free(d);
}

/* Every socket of this process is CLOEXEC and NONBLOCK (c-ares' ones too: we open them). */
static void assert_sockets_cloexec_nonblock(void)
{
        DIR *dir = opendir("/proc/self/fd");
        struct dirent *e;
        unsigned sockets = 0;

        assert_non_null(dir);
        while ((e = readdir(dir)) != NULL) {
                char path[64], target[64];
                int fd = atoi(e->d_name);
                ssize_t n;

                if (e->d_name[0] == '.' || fd == dirfd(dir))
                        continue;
                snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
                n = readlink(path, target, sizeof(target) - 1);
                if (n <= 0 || strncmp(target, "socket:", 7) != 0)
                        continue;
                sockets++;
                assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
                assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
        }
        closedir(dir);
        assert_true(sockets >= 2); /* the black hole and c-ares' */
}

/* reconfigure with a lookup stuck on a dead server: it starts again on the new channel. */
static void test_reconfigure_in_flight(void **state)
{
        struct rfix *f = fx_new(30, "10.0.0.1 db.test\n");
        struct resolver_options o = f->o;
        struct resolver_metrics m;
        char ns[64];
        const char *nsv[1] = {ns};
        int port, hole = blackhole_open(&port);
        uint64_t t0;

        snprintf(ns, sizeof(ns), "127.0.0.1:%d", port);
        o.nameservers = nsv;
        o.timeout_ms = 5000;
        assert_int_equal(resolver_reconfigure(f->res, &o), 0);
        fx_watch(f, "db.test");
        turn_for(f->d, 200);
        resolver_metrics(f->res, &m);
        assert_int_equal(m.sockets, 1); /* the query sits on the black hole */
        assert_sockets_cloexec_nonblock();
        t0 = evio_now_ms();
        assert_int_equal(resolver_reconfigure(f->res, &f->o), 0);
        assert_true(turn_until_count(f->d, &f->rec.changed, 1, 1000));
        assert_true(evio_now_ms() - t0 < 1000);
        assert_int_equal(f->rec.failing, 0);
        resolver_metrics(f->res, &m);
        assert_int_equal(m.channel_reloads, 2);
        assert_int_equal(m.lookups[RESOLVER_STATUS_OK], 1);
        close(hole);
        rfix_free(f);
}

/* Unwatch and free with lookups in flight, and unwatch from the callback: no call afterwards. */
static void test_unwatch_and_free_in_flight(void **state)
{
        struct rfix *f = fx_new(1, "10.0.0.1 db.test\n");
        struct recorder a = {0}, b = {0};
        struct resolver_watch *wa, *wb;
        struct resolver_options o = f->o;
        struct resolver_metrics m;
        char ns[64];
        const char *nsv[1] = {ns};
        int port, hole = blackhole_open(&port);

        f->rec.unwatch_on_event = true;
        fx_watch(f, "db.test");
        f->rec.w = f->w;
        assert_true(turn_until_count(f->d, &f->rec.changed, 1, 3000));
        turn_for(f->d, 1500); /* TTL 1 s: it would have been looked up again */
        assert_int_equal(f->rec.after_unwatch, 0);
        resolver_metrics(f->res, &m);
        assert_int_equal(m.watches, 0);
        assert_int_equal(m.lookups_started, 1);

        snprintf(ns, sizeof(ns), "127.0.0.1:%d", port);
        o.nameservers = nsv;
        o.timeout_ms = 300;
        assert_int_equal(resolver_reconfigure(f->res, &o), 0);
        assert_int_equal(
            resolver_watch(f->res, "a.test", 1, RESOLVER_FAMILY_ANY, recorder_cb, &a, &wa), 0);
        assert_int_equal(
            resolver_watch_srv(f->res, "_x._tcp.b.test", RESOLVER_FAMILY_ANY, recorder_cb, &b, &wb),
            0);
        turn_for(f->d, 100);
        resolver_unwatch(wa); /* its lookup is still waiting on the black hole */
        turn_for(f->d, 100);
        resolver_free(f->res); /* b's too */
        f->res = NULL;
        assert_int_equal(a.changed + a.failing + b.changed + b.failing, 0);
        close(hole);
        rfix_free(f);
}

/* ----- failure injection ----- */

static void test_inject_channel_and_timer(void **state)
{
        struct rfix *f = fx_new(30, "10.0.0.1 db.test\n");
        struct resolver *res = NULL;
        struct resolver_watch *w = NULL;
        struct resolver_metrics m;

        fail_ares_init = true;
        assert_int_equal(resolver_new(f->d, &f->o, &res), -ENOMEM);
        assert_null(res);
        assert_int_equal(resolver_reconfigure(f->res, &f->o), -ENOMEM);
        fail_ares_init = false;
        resolver_metrics(f->res, &m);
        assert_int_equal(m.channel_reload_errors, 1);
        assert_int_equal(m.channel_reloads, 0);

        fail_timer_arm = true;
        assert_int_equal(
            resolver_watch(f->res, "db.test", 1, RESOLVER_FAMILY_ANY, nothing, NULL, &w), -ENOMEM);
        fail_timer_arm = false;
        assert_null(w);
        resolver_metrics(f->res, &m);
        assert_int_equal(m.watches, 0);

        /* The old channel still works. */
        fx_watch(f, "db.test");
        assert_true(turn_until_count(f->d, &f->rec.changed, 1, 3000));
        rfix_free(f);
}

/* The driver refuses c-ares' socket: the lookup fails at once (no hang until a timeout), no
 * socket is left behind; once registration works again, the name resolves. */
static void test_inject_register(void **state)
{
        struct rfix *f = fx_new(30, "10.0.0.1 db.test\n");
        struct resolver_metrics m;
        uint64_t t0 = evio_now_ms();

        fail_register = true;
        fx_watch(f, "db.test");
        assert_true(turn_until_count(f->d, &f->rec.failing, 1, 3000));
        fail_register = false;
        assert_true(evio_now_ms() - t0 < 250); /* not the 300 + 600 ms of a timeout */
        assert_int_not_equal(f->rec.status, RESOLVER_STATUS_OK);
        resolver_metrics(f->res, &m);
        assert_int_equal(m.sockets, 0);
        assert_true(turn_until_count(f->d, &f->rec.recovered, 1, 3000));
        assert_int_equal(f->rec.changed, 1);
        rfix_free(f);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_addrset),
            cmocka_unit_test(test_addrset_across_threads),
            cmocka_unit_test(test_dns_answer_ttl),
            cmocka_unit_test(test_bad_options),
            cmocka_unit_test(test_numeric_name),
            cmocka_unit_test(test_server_killed),
            cmocka_unit_test(test_nxdomain_hold),
            cmocka_unit_test(test_name_appears_later),
            cmocka_unit_test(test_unwatch_between_events),
            cmocka_unit_test(test_stuck_server_no_latency),
            cmocka_unit_test(test_reconfigure_in_flight),
            cmocka_unit_test(test_unwatch_and_free_in_flight),
            cmocka_unit_test(test_inject_channel_and_timer),
            cmocka_unit_test(test_inject_register),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
