/* Test harness for the resolver: a real dnsmasq on a loopback port (its hosts file rewritten and
 * re-read with SIGHUP), a black-hole DNS server (a UDP socket nobody reads), a recorder of watch
 * events, and bounded driver loops. Every wait has a deadline. */
#ifndef EVPROXY_TEST_RESOLVER_HARNESS_H
#define EVPROXY_TEST_RESOLVER_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <evproxy/driver.h>

#include "resolver.h"

struct dns_server {
        pid_t pid;
        int port;
        char dir[64];
        char hosts[96];
        char log[96];
};

/* Start dnsmasq authoritative for "test" (unknown names there: NXDOMAIN), serving the hosts
 * file text and the extra options (NULL-terminated, may be NULL), TTL ttl_s. port 0: a free
 * one. Returns false (after printing why) if dnsmasq is missing and the test may skip. */
bool dns_start(struct dns_server *s, int port, int ttl_s, const char *hosts,
               const char *const *extra);
void dns_set_hosts(struct dns_server *s, const char *hosts); /* rewrite + SIGHUP */
void dns_kill(struct dns_server *s);                         /* SIGKILL, reaped */
void dns_stop(struct dns_server *s);                         /* kill + remove files */

/* A UDP socket on 127.0.0.1 that receives queries and never answers. */
int blackhole_open(int *port);

/* Skip the test (cmocka) unless EVTEST_NO_SKIP=1, which makes it a failure. */
void skip_or_fail(const char *why);

struct recorder {
        unsigned changed, failing, recovered;
        struct resolver_addrset *set; /* the last CHANGED set, referenced */
        enum resolver_status status;  /* of the last event */
        unsigned added, removed;      /* of the last CHANGED */
        uint64_t changed_ms, failing_ms;
        bool unwatch_on_event; /* resolver_unwatch(w) from the callback, once */
        struct resolver_watch *w;
        unsigned after_unwatch; /* events after that: must stay 0 */
};

void recorder_cb(void *arg, const struct resolver_event *ev);
void recorder_clear(struct recorder *r);

/* Turn d until *counter reaches want or timeout_ms passes; true if it did. */
bool turn_until_count(struct evio_driver *d, const unsigned *counter, unsigned want,
                      unsigned timeout_ms);
void turn_for(struct evio_driver *d, unsigned ms);

/* "10.0.0.1:53 [fd00::1]:53" (SRV: "10.0.0.1:53/p1/w10"), in the set's order. */
const char *set_text(const struct resolver_addrset *s, char *buf, size_t size);

/* Options for tests: nameserver 127.0.0.1:port, short timeouts and bounds. */
struct resolver_options test_options(const char *const ns[1]);

/* A test's world: dnsmasq, a driver, options pointing at that dnsmasq, a resolver (once
 * started), a recorder and one watch. */
struct rfix {
        struct dns_server dns;
        char ns[64];
        const char *nsv[1];
        struct evio_driver *d;
        struct resolver_options o;
        struct resolver *res;
        struct recorder rec;
        struct resolver_watch *w;
        char buf[8192];
};

/* dnsmasq (see dns_start) and a driver; skips (or fails) the test without dnsmasq. */
struct rfix *rfix_new(int ttl_s, const char *hosts, const char *const *extra);
void rfix_start(struct rfix *f); /* the resolver, from f->o */
/* Free all, checking that every c-ares socket was deregistered from the driver. */
void rfix_free(struct rfix *f);

/* Write text to path (replacing it atomically, so a new inode and mtime). */
void write_file(const char *path, const char *text);

#endif
