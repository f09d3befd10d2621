/* The resolver against a real DNS server (dnsmasq on loopback): A records, AAAA, SRV with ports,
 * an answer change picked up within TTL + 1 s, a search domain from resolv.conf and a change of
 * resolv.conf picked up, /etc/hosts and /etc/resolv.conf honoured (bind-mounted in a private
 * mount namespace), an answer too big for UDP read over TCP, max_addresses, and
 * resolver_refresh_now() with its rate limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <evproxy/driver.h>
#include <evproxy/timer.h>

#include "resolver_harness.h"

static const char *hosts_basic = "10.0.0.2 db.test\n10.0.0.1 db.test\n10.0.0.3 db.test\n"
                                 "fd00::1 db.test\n10.0.1.1 web.test\nfd00::2 web.test\n"
                                 "10.1.0.1 db.a.test\n10.2.0.1 db.b.test\n";

static struct rfix *basic(int ttl_s)
{
        struct rfix *f = rfix_new(ttl_s, hosts_basic, NULL);

        rfix_start(f);
        return f;
}

static void test_a_records(void **state)
{
        struct rfix *f = basic(30);

        assert_int_equal(resolver_watch(f->res, "db.test", 5432, RESOLVER_FAMILY_IPV4, recorder_cb,
                                        &f->rec, &f->w),
                         0);
        assert_int_equal(f->rec.changed, 0); /* never called before resolver_watch returns */
        assert_true(turn_until_count(f->d, &f->rec.changed, 1, 3000));
        assert_string_equal(set_text(f->rec.set, f->buf, sizeof(f->buf)),
                            "10.0.0.1:5432 10.0.0.2:5432 10.0.0.3:5432");
        assert_int_equal(f->rec.set->generation, 1);
        assert_int_equal(f->rec.set->status, RESOLVER_STATUS_OK);
        assert_int_equal(f->rec.added, 3);
        assert_int_equal(f->rec.removed, 0);
        assert_ptr_equal(resolver_watch_set(f->w), f->rec.set);
        assert_int_equal(f->rec.failing, 0);
        rfix_free(f);
}

static void test_aaaa_and_any(void **state)
{
        struct rfix *f = basic(30);
        struct recorder any = {0};
        struct resolver_watch *w2;
        struct resolver_watch_info info;

        assert_int_equal(resolver_watch(f->res, "db.test", 443, RESOLVER_FAMILY_IPV6, recorder_cb,
                                        &f->rec, &f->w),
                         0);
        assert_int_equal(
            resolver_watch(f->res, "web.test", 80, RESOLVER_FAMILY_ANY, recorder_cb, &any, &w2), 0);
        assert_true(turn_until_count(f->d, &f->rec.changed, 1, 3000));
        assert_true(turn_until_count(f->d, &any.changed, 1, 3000));
        assert_string_equal(set_text(f->rec.set, f->buf, sizeof(f->buf)), "[fd00::1]:443");
        assert_string_equal(set_text(any.set, f->buf, sizeof(f->buf)), "10.0.1.1:80 [fd00::2]:80");
        resolver_watch_info(w2, &info);
        assert_string_equal(info.name, "web.test");
        assert_int_equal(info.addresses, 2);
        assert_int_equal(info.lookups[RESOLVER_STATUS_OK], 1);
        assert_true(info.ms_since_success < 3000);
        assert_false(info.failing);
        resolver_unwatch(w2);
        recorder_clear(&any);
        rfix_free(f);
}

static void test_srv(void **state)
{
        static const char *const srv[] = {
            "--srv-host=_pg._tcp.svc.test,db.test,5432,1,10",
            "--srv-host=_pg._tcp.svc.test,web.test,5433,2,20",
            NULL,
        };
        struct rfix *f = rfix_new(30, hosts_basic, srv);

        rfix_start(f);
        assert_int_equal(resolver_watch_srv(f->res, "_pg._tcp.svc.test", RESOLVER_FAMILY_IPV4,
                                            recorder_cb, &f->rec, &f->w),
                         0);
        assert_true(turn_until_count(f->d, &f->rec.changed, 1, 3000));
        assert_string_equal(set_text(f->rec.set, f->buf, sizeof(f->buf)),
                            "10.0.0.1:5432/p1/w10 10.0.0.2:5432/p1/w10 10.0.0.3:5432/p1/w10 "
                            "10.0.1.1:5433/p2/w20");
        rfix_free(f);
}

/* TTL 1 s: after dnsmasq changed its answer, the new set arrives within TTL + 1 s. */
static void test_change_within_ttl(void **state)
{
        struct rfix *f = basic(1);
        uint64_t t0;

        assert_int_equal(
            resolver_watch(f->res, "db.test", 1, RESOLVER_FAMILY_IPV4, recorder_cb, &f->rec, &f->w),
            0);
        assert_true(turn_until_count(f->d, &f->rec.changed, 1, 3000));
        dns_set_hosts(&f->dns, "10.0.0.1 db.test\n10.0.0.4 db.test\n10.0.0.3 db.test\n");
        t0 = evio_now_ms();
        assert_true(turn_until_count(f->d, &f->rec.changed, 2, 4000));
        print_message("answer change picked up after %llu ms (TTL 1 s)\n",
                      (unsigned long long)(f->rec.changed_ms - t0));
        assert_true(f->rec.changed_ms - t0 <= 2000);
        assert_string_equal(set_text(f->rec.set, f->buf, sizeof(f->buf)),
                            "10.0.0.1:1 10.0.0.3:1 10.0.0.4:1");
        assert_int_equal(f->rec.set->generation, 2);
        assert_int_equal(f->rec.added, 1);
        assert_int_equal(f->rec.removed, 1);
        /* Unchanged answers do not make new sets. */
        turn_for(f->d, 1500);
        assert_int_equal(f->rec.changed, 2);
        rfix_free(f);
}

static void count_reload(void *arg, int err)
{
        assert_int_equal(err, 0);
        (*(int *)arg)++;
}

/* A search domain and ndots from a resolv.conf; then the file changes and is picked up. */
static void test_resolv_conf_search_and_change(void **state)
{
        struct rfix *f = rfix_new(1, hosts_basic, NULL);
        struct resolver_metrics m;
        char path[128];
        int reloads = 0;

        snprintf(path, sizeof(path), "%s/resolv.conf", f->dns.dir);
        write_file(path, "search a.test\noptions ndots:1\nnameserver 127.0.0.1\n");
        f->o.resolv_conf = path;
        f->o.on_reload = count_reload;
        f->o.on_reload_arg = &reloads;
        rfix_start(f);
        assert_int_equal(
            resolver_watch(f->res, "db", 7, RESOLVER_FAMILY_IPV4, recorder_cb, &f->rec, &f->w), 0);
        assert_true(turn_until_count(f->d, &f->rec.changed, 1, 3000));
        assert_string_equal(set_text(f->rec.set, f->buf, sizeof(f->buf)), "10.1.0.1:7");

        write_file(path, "search b.test\noptions ndots:1\nnameserver 127.0.0.1\n");
        assert_true(turn_until_count(f->d, &f->rec.changed, 2, 4000));
        assert_string_equal(set_text(f->rec.set, f->buf, sizeof(f->buf)), "10.2.0.1:7");
        resolver_metrics(f->res, &m);
        assert_int_equal(m.channel_reloads, 1);
        assert_int_equal(reloads, 1);
        rfix_free(f);
}

/* Child of test_etc_files, in its own mount namespace: 0 if both names resolved as expected. */
static int etc_files_child(const char *dir, const char *ns)
{
        const char *nsv[1] = {ns};
        struct resolver_options o = test_options(nsv);
        struct recorder a = {0}, b = {0};
        struct evio_driver *d;
        struct resolver *res;
        struct resolver_watch *wa, *wb;
        char hosts[128], conf[128], buf[256];
        int bad = 0;

        snprintf(hosts, sizeof(hosts), "%s/etc-hosts", dir);
        snprintf(conf, sizeof(conf), "%s/etc-resolv.conf", dir);
        if (unshare(CLONE_NEWNS) != 0 ||
            mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount(hosts, "/etc/hosts", "none", MS_BIND, NULL) != 0 ||
            mount(conf, "/etc/resolv.conf", "none", MS_BIND, NULL) != 0)
                return 77;
        if (evio_driver_new(&d, NULL) != 0 || resolver_new(d, &o, &res) != 0)
                return 2;
        resolver_watch(res, "only-in-hosts.example", 9, RESOLVER_FAMILY_ANY, recorder_cb, &a, &wa);
        resolver_watch(res, "web", 9, RESOLVER_FAMILY_IPV4, recorder_cb, &b, &wb);
        turn_until_count(d, &a.changed, 1, 3000);
        turn_until_count(d, &b.changed, 1, 3000);
        if (!a.set || strcmp(set_text(a.set, buf, sizeof(buf)), "10.9.9.9:9 [fd09::9]:9") != 0)
                bad |= 4;
        if (!b.set || strcmp(set_text(b.set, buf, sizeof(buf)), "10.0.1.1:9") != 0)
                bad |= 8;
        resolver_free(res);
        recorder_clear(&a);
        recorder_clear(&b);
        evio_driver_free(d);
        return bad;
}

/* What the daemon uses by default: /etc/hosts and /etc/resolv.conf (its search list). */
static void test_etc_files(void **state)
{
        struct rfix *f = rfix_new(30, hosts_basic, NULL);
        char path[128];
        pid_t pid;
        int st;

        snprintf(path, sizeof(path), "%s/etc-hosts", f->dns.dir);
        write_file(path, "10.9.9.9 only-in-hosts.example\nfd09::9 only-in-hosts.example\n");
        snprintf(path, sizeof(path), "%s/etc-resolv.conf", f->dns.dir);
        write_file(path, "search test\nnameserver 127.0.0.1\n");
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(etc_files_child(f->dns.dir, f->ns));
        assert_int_equal(waitpid(pid, &st, 0), pid);
        rfix_free(f);
        assert_true(WIFEXITED(st));
        if (WEXITSTATUS(st) == 77)
                skip_or_fail("no private mount namespace here (unshare/mount need root)");
        assert_int_equal(WEXITSTATUS(st), 0);
}

/* 120 A records do not fit a 512-byte UDP answer: c-ares asks again over TCP, whose answer the
 * socket pump must read to the end (the driver is edge-triggered). max_addresses cuts it. */
static void test_big_answer_over_tcp(void **state)
{
        char *hosts = malloc(120 * 32);
        struct rfix *f;
        struct resolver_metrics m;
        struct recorder cut = {0};
        struct resolver_watch *w2;
        size_t used = 0;

        assert_non_null(hosts);
        for (int i = 0; i < 120; i++)
                used += (size_t)snprintf(hosts + used, 32, "10.3.%d.%d big.test\n", i / 100,
                                         i % 100 + 1);
        f = rfix_new(30, hosts, NULL);
        free(hosts);
        f->o.max_addresses = 100;
        rfix_start(f);
        assert_int_equal(resolver_watch(f->res, "big.test", 1, RESOLVER_FAMILY_IPV4, recorder_cb,
                                        &f->rec, &f->w),
                         0);
        /* The whole answer, well before a timeout could have played a part. */
        assert_true(turn_until_count(f->d, &f->rec.changed, 1, 250));
        assert_int_equal(f->rec.set->len, 100);
        assert_int_equal(f->rec.status, RESOLVER_STATUS_OK);
        resolver_metrics(f->res, &m);
        assert_int_equal(m.addresses_truncated, 20);

        f->o.max_addresses = 0;
        assert_int_equal(resolver_reconfigure(f->res, &f->o), 0);
        assert_int_equal(
            resolver_watch(f->res, "big.test", 1, RESOLVER_FAMILY_IPV4, recorder_cb, &cut, &w2), 0);
        assert_true(turn_until_count(f->d, &cut.changed, 1, 250));
        assert_int_equal(cut.set->len, 120);
        resolver_unwatch(w2);
        recorder_clear(&cut);
        rfix_free(f);
}

/* refresh_now: a lookup at once (the TTL is long), then at most one per refresh_now_min_ms
 * however often it is asked, the deferred one done when the interval is over. */
static void test_refresh_now(void **state)
{
        struct rfix *f = rfix_new(300, hosts_basic, NULL);
        struct resolver_metrics m0, m1;
        bool started = false;
        unsigned limited = 0;

        f->o.ttl_min_ms = 60000;
        rfix_start(f);
        assert_int_equal(resolver_watch(f->res, "web.test", 1, RESOLVER_FAMILY_IPV4, recorder_cb,
                                        &f->rec, &f->w),
                         0);
        assert_true(turn_until_count(f->d, &f->rec.changed, 1, 3000));
        turn_for(f->d, 1000); /* past the rate limit of the first lookup */
        dns_set_hosts(&f->dns, "10.0.1.2 web.test\n");
        resolver_metrics(f->res, &m0);
        assert_true(resolver_refresh_now(f->w));
        for (int i = 0; i < 100; i++) {
                if (resolver_refresh_now(f->w))
                        started = true;
                else
                        limited++;
        }
        assert_false(started);
        assert_true(turn_until_count(f->d, &f->rec.changed, 2, 1000));
        assert_string_equal(set_text(f->rec.set, f->buf, sizeof(f->buf)), "10.0.1.2:1");
        for (int i = 0; i < 100; i++)
                limited += !resolver_refresh_now(f->w);
        turn_for(f->d, 600);
        resolver_metrics(f->res, &m1);
        assert_int_equal(m1.lookups_started - m0.lookups_started, 1);
        assert_int_equal(m1.refresh_now - m0.refresh_now, 201);
        assert_int_equal(m1.refresh_now_limited - m0.refresh_now_limited, 200);
        assert_int_equal(limited, 200);
        turn_for(f->d, 700); /* the interval is over: the deferred lookup ran, once */
        resolver_metrics(f->res, &m1);
        assert_int_equal(m1.lookups_started - m0.lookups_started, 2);
        rfix_free(f);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_a_records),
            cmocka_unit_test(test_aaaa_and_any),
            cmocka_unit_test(test_srv),
            cmocka_unit_test(test_change_within_ttl),
            cmocka_unit_test(test_resolv_conf_search_and_change),
            cmocka_unit_test(test_etc_files),
            cmocka_unit_test(test_big_answer_over_tcp),
            cmocka_unit_test(test_refresh_now),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
