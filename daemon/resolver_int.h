/* Internals shared by the resolver's files: the resolver itself (resolver.c: options, the c-ares
 * channel, its sockets on the driver, its timer), watches and their lookups (resolver_watch.c),
 * address sets (resolver_addrset.c) and the DNS answer TTL reader (resolver_dns.c).
 * Everything here runs on the driver's thread. */
#ifndef EVPROXYD_RESOLVER_INT_H
#define EVPROXYD_RESOLVER_INT_H

#include <assert.h>
#include <pthread.h>
#include <sys/types.h>

#include <ares.h>
#include <evproxy/timer.h>

#include "resolver.h"

struct resolver_sock;

/* resolv.conf as last seen, to notice that it changed. */
struct resolver_conf_stamp {
        bool exists;
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtime;
};

struct resolver {
        struct evio_driver *driver;
        struct evio_handle *handle;
        pthread_t owner;
        ares_channel channel;
        struct resolver_options o; /* defaults filled in; strings below are owned */
        char *resolv_conf;         /* NULL: the system's */
        char *servers_csv;         /* NULL: resolv.conf's */
        struct evio_timer ares_timer;
        struct resolver_sock *socks;
        struct resolver_watch *watches;
        unsigned depth; /* calls into c-ares in progress (callbacks run inside them) */
        bool freeing;   /* resolver_free() is tearing down: no callback, no new timer */
        bool pump_more; /* some socket stopped with input left: the ares timer goes on */
        uint64_t conf_checked_ms;
        struct resolver_conf_stamp conf;
        uint64_t rng;
        uint64_t sock_serial;
        struct resolver_metrics m;
};

enum resolver_health {
        RESOLVER_HEALTH_UNKNOWN,
        RESOLVER_HEALTH_OK,
        RESOLVER_HEALTH_FAILING,
};

struct resolver_round;

struct resolver_watch {
        struct resolver *res;
        struct resolver_watch *prev, *next; /* res->watches, while watched */
        unsigned refs;                      /* the handle, and a lookup in flight */
        bool dead;                          /* unwatched (or resolver freed) */
        bool srv;
        bool is_static; /* a numeric address: one lookup is enough */
        char *name;
        uint16_t port;
        enum resolver_family family;
        resolver_watch_fn *cb;
        void *arg;
        struct evio_timer timer; /* the next lookup */
        struct resolver_round *round;
        struct resolver_addrset *set;
        enum resolver_health health;
        enum resolver_status last_status;
        unsigned failures; /* lookups without an answer in a row */
        uint64_t last_success_ms, last_start_ms, negative_since_ms; /* 0: never */
        uint64_t lookups[RESOLVER_STATUS_COUNT];
        uint32_t ttl_min_ms, ttl_max_ms, hold_ms; /* 0: the resolver's (resolver_watch_limits) */
};

#define resolver__assert_owner(res) assert(pthread_equal(pthread_self(), (res)->owner))

/* resolver.c */
void resolver__enter(struct resolver *res);
void resolver__leave(struct resolver *res);
/* Rebuild the channel if resolv.conf changed since last look (at most every conf_check_ms). */
void resolver__check_conf(struct resolver *res);
uint64_t resolver__random(struct resolver *res);
/* Arm a driver timer; a failure is counted (the caller's lookup then waits for another event). */
void resolver__arm(struct resolver *res, struct evio_timer *t, uint64_t deadline_ms);
enum resolver_status resolver__status_from_ares(int status);

/* resolver_watch.c: at resolver_free(), stop every watch (no callback, no timer), then, once
 * the channel is gone, free them. */
void resolver__watches_stop(struct resolver *res);
void resolver__watches_free(struct resolver *res);

/* resolver_addrset.c: a new set of the n addresses (sorted and deduplicated here), refs 1. */
struct resolver_addrset *resolver__addrset_new(const struct resolver_addr *addrs, size_t n,
                                               enum resolver_status status);
/* Addresses in b that are not in a (both sorted). */
unsigned resolver__addrset_missing(const struct resolver_addrset *a,
                                   const struct resolver_addrset *b);
/* Fill out from an AF_INET/AF_INET6 sockaddr, with port; false for another family. */
bool resolver__addr_set(struct resolver_addr *out, const struct sockaddr *sa, uint16_t port,
                        uint16_t priority, uint16_t weight);

/* resolver_dns.c: the smallest TTL (seconds) of the answer section's records of this type and
 * of its CNAMEs. Returns how many such records there are (0: *ttl untouched), or -EBADMSG. */
int resolver__dns_answer_ttl(const unsigned char *buf, size_t len, uint16_t type, uint32_t *ttl);

#endif
