/* The asynchronous resolver (issue 14): names -> address sets, on the main thread's driver, never
 * blocking. c-ares does the lookups; its sockets are registered with the driver and its timeouts
 * run on one driver timer. A watched name is looked up again when its answer's TTL (clamped to
 * [ttl_min, ttl_max], +-jitter) runs out; each change of its address set is handed to the watcher
 * as a new immutable, reference-counted struct resolver_addrset.
 *
 * Per watched name:
 *
 *   UNKNOWN --answer--> OK <--answer-- FAILING      answer: addresses (CHANGED if they differ)
 *      |                 |                ^           RECOVERED when coming back from FAILING
 *      +--- no answer ---+-- no answer ---+         no answer: timeout, SERVFAIL, refused, ...
 *                                                     (the last good set is kept) or NXDOMAIN /
 *                                                     no data (the set is emptied once the name
 *                                                     has stayed negative for nxdomain_hold_ms);
 *                                                     FAILING is reported once per streak
 *
 * How evproxyd is meant to wire it (a later change; nothing here knows about routes):
 *  - One resolver, created in daemon start-up on the main thread's driver from the config's
 *    `resolver = { nameservers = [...]; timeout = ...; attempts = ...; }` (absent: resolv.conf),
 *    rebuilt with resolver_reconfigure() on SIGHUP when those settings changed (c-ares 1.18 has
 *    no ares_reinit: the channel is recreated, lookups in flight start again, sets are kept).
 *  - Each named upstream of a route ("db.internal:5432" -> resolver_watch(), "srv:_pg._tcp.x" ->
 *    resolver_watch_srv()) becomes a watch; a name shared by routes may be one watch or several.
 *  - The watch callback, on RESOLVER_EVENT_CHANGED, builds a new server set for the route from
 *    event->set (each resolver_addr one server; SRV priority/weight kept), carrying each server's
 *    health and counters over by address from the old server set (resolver_addrset_find() on the
 *    sorted set), and publishes it to the workers the way a reload publishes a generation: a
 *    refcounted object swapped in atomically, the old one freed by whoever lets go last
 *    (resolver_addrset_ref/unref are atomic, so a set may be held by workers). It logs one line
 *    per change (added/removed addresses), and one when resolution starts failing
 *    (RESOLVER_EVENT_FAILING) or recovers (RESOLVER_EVENT_RECOVERED). The set starts empty: a
 *    name that does not resolve at start-up delays nothing but its own servers.
 *  - When every address of a name failed to connect N times in a row, a worker posts a task to
 *    the main thread that calls resolver_refresh_now() (rate-limited per name).
 *  - The metrics endpoint (main thread) reads resolver_metrics() and resolver_watch_info().
 *  - At shutdown: resolver_free() before evio_driver_free().
 * Everything but resolver_addrset_ref/unref/find/same runs on the driver's thread (asserted). */
#ifndef EVPROXYD_RESOLVER_H
#define EVPROXYD_RESOLVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct evio_driver;
struct resolver;
struct resolver_watch;

enum resolver_family {
        RESOLVER_FAMILY_ANY = 0, /* A and AAAA */
        RESOLVER_FAMILY_IPV4,
        RESOLVER_FAMILY_IPV6,
};

/* The result of one lookup. OK carries addresses; NXDOMAIN and NODATA are negative answers
 * (the set is dropped after the hold); the others are failures (the last good set is kept). */
enum resolver_status {
        RESOLVER_STATUS_OK = 0,
        RESOLVER_STATUS_NXDOMAIN, /* the name does not exist */
        RESOLVER_STATUS_NODATA,   /* it exists, without records of the type asked */
        RESOLVER_STATUS_TIMEOUT,  /* no server answered in time */
        RESOLVER_STATUS_SERVFAIL, /* the server could not answer */
        RESOLVER_STATUS_REFUSED,  /* refused, or connection refused (server down) */
        RESOLVER_STATUS_ERROR,    /* anything else: bad answer, no memory, bad name, ... */
        RESOLVER_STATUS_COUNT,
};

/* "ok", "nxdomain", "nodata", "timeout", "servfail", "refused", "error": metric labels. */
const char *resolver_status_name(enum resolver_status s);
bool resolver_status_is_negative(enum resolver_status s);

struct resolver_options {
        const char *resolv_conf; /* NULL: /etc/resolv.conf (search, ndots, options...) */
        const char *const
            *nameservers; /* NULL: resolv.conf's; else "ip", "ip:port", "[ip6]:port" */
        size_t n_nameservers;
        unsigned timeout_ms;         /* first try's timeout; 0: resolv.conf's (c-ares: 5 s) */
        unsigned attempts;           /* tries per server; 0: resolv.conf's (c-ares: 4) */
        uint32_t ttl_min_ms;         /* refresh bounds on an answer's TTL; 0: 5 s */
        uint32_t ttl_max_ms;         /* 0: 300 s */
        uint32_t retry_min_ms;       /* after a failed lookup, doubling per failure; 0: 1 s */
        uint32_t retry_max_ms;       /* 0: 30 s */
        uint32_t nxdomain_hold_ms;   /* a negative name keeps its set this long; 0: 60 s */
        uint32_t refresh_now_min_ms; /* resolver_refresh_now() at most once per this; 0: 1 s */
        uint32_t conf_check_ms;      /* how often resolv.conf is checked for changes; 0: 2 s */
        unsigned jitter_pct;         /* +- on each refresh delay; 0: 10 */
        unsigned max_addresses;      /* per name, whatever the DNS says; 0: 256 */
        unsigned max_srv_targets;    /* SRV records followed per name; 0: 32 */
        /* Told when the channel was rebuilt because resolv.conf changed (err 0) or could not be
         * (err < 0, the old channel stays); may be NULL. */
        void (*on_reload)(void *arg, int err);
        void *on_reload_arg;
};

/* One server of a set: an IPv4/IPv6 address with its port, and for SRV the record's priority
 * and weight (0 and 0 for A/AAAA). */
struct resolver_addr {
        struct sockaddr_storage addr;
        socklen_t len;
        uint16_t priority, weight;
};

/* An immutable set of addresses, sorted by address (family, bytes, port) and deduplicated (an
 * address named by several SRV records keeps the lowest priority, then the highest weight). */
struct resolver_addrset {
        atomic_uint refs;
        uint64_t generation;         /* 0: the empty set a watch starts with; +1 per change */
        enum resolver_status status; /* the lookup that produced it */
        size_t len;
        struct resolver_addr addrs[];
};

/* Any thread. unref accepts NULL; the last unref frees. */
struct resolver_addrset *resolver_addrset_ref(struct resolver_addrset *s);
void resolver_addrset_unref(struct resolver_addrset *s);
/* Same addresses, ports, priorities and weights (generation and status aside). */
bool resolver_addrset_same(const struct resolver_addrset *a, const struct resolver_addrset *b);
/* Index of sa (family, address, port) in s, or -1. */
long resolver_addrset_find(const struct resolver_addrset *s, const struct sockaddr *sa,
                           socklen_t len);

enum resolver_event_kind {
        RESOLVER_EVENT_CHANGED,   /* the set changed: set is the new one, old the one replaced */
        RESOLVER_EVENT_FAILING,   /* lookups started failing (once per streak): status says how */
        RESOLVER_EVENT_RECOVERED, /* a lookup succeeded after FAILING */
};

/* What a watch callback is told. The pointers are valid during the call; take a reference
 * (resolver_addrset_ref) to keep a set. */
struct resolver_event {
        enum resolver_event_kind kind;
        const char *name;             /* as watched */
        bool srv;                     /* watched with resolver_watch_srv() */
        struct resolver_addrset *set; /* the watch's current set (CHANGED: the new one) */
        struct resolver_addrset *old; /* CHANGED: the set replaced; else NULL */
        enum resolver_status status;  /* the lookup behind the event */
        const char *detail;           /* c-ares' words for it, for the log line */
        unsigned added, removed;      /* CHANGED: addresses new in set, gone from old */
};

typedef void resolver_watch_fn(void *arg, const struct resolver_event *ev);

/* Create on driver d (which must outlive it); options are copied. 0, -EINVAL (bad option, e.g.
 * a nameserver that does not parse), -ENOMEM, or the error of the c-ares channel. */
int resolver_new(struct evio_driver *d, const struct resolver_options *opts, struct resolver **out);
/* Cancel every lookup and free every watch (handles become invalid); no callback runs after
 * it returns. Accepts NULL. Not from inside a watch callback. */
void resolver_free(struct resolver *res);
/* New options (reload): a new channel is built first (on failure the old one stays and the
 * error is returned); lookups in flight are started again on it; watches and sets are kept. */
int resolver_reconfigure(struct resolver *res, const struct resolver_options *opts);

/* Watch name's A/AAAA records (family), each address with port. The first lookup starts on the
 * driver's next turn; cb is never called before this returns, nor after resolver_unwatch().
 * 0, -EINVAL (empty or over 253 characters, no cb), -ENOMEM. */
int resolver_watch(struct resolver *res, const char *name, uint16_t port,
                   enum resolver_family family, resolver_watch_fn *cb, void *arg,
                   struct resolver_watch **out);
/* Watch name's SRV records ("_pg._tcp.db.example"); each target's A/AAAA addresses (family)
 * become servers with the record's port, priority and weight. */
int resolver_watch_srv(struct resolver *res, const char *name, enum resolver_family family,
                       resolver_watch_fn *cb, void *arg, struct resolver_watch **out);
/* This watch's own refresh bounds and NXDOMAIN hold (a route's resolver settings); 0 keeps the
 * resolver's value. Takes effect from the next answer on. */
void resolver_watch_limits(struct resolver_watch *w, uint32_t ttl_min_ms, uint32_t ttl_max_ms,
                           uint32_t nxdomain_hold_ms);
/* Stop watching; w is invalid afterwards. Safe from the watch's own callback. Accepts NULL. */
void resolver_unwatch(struct resolver_watch *w);
/* Look the name up again now (e.g. every address failed to connect), at most once per
 * refresh_now_min_ms; a lookup in flight already counts. True if a lookup starts now, false if
 * this one was merged into one in flight or deferred to the end of the interval. */
bool resolver_refresh_now(struct resolver_watch *w);
/* The watch's current set (borrowed: ref it to keep it). Never NULL. */
struct resolver_addrset *resolver_watch_set(const struct resolver_watch *w);

struct resolver_watch_info {
        const char *name;
        bool srv, failing;
        size_t addresses;
        uint64_t generation;
        enum resolver_status last_status; /* of the last finished lookup */
        uint64_t ms_since_success;        /* UINT64_MAX: never succeeded */
        uint64_t lookups[RESOLVER_STATUS_COUNT];
};
void resolver_watch_info(const struct resolver_watch *w, struct resolver_watch_info *out);

/* Counters of the whole resolver (main thread). */
struct resolver_metrics {
        uint64_t lookups[RESOLVER_STATUS_COUNT]; /* finished lookups by result */
        uint64_t lookups_started;
        uint64_t set_changes;         /* CHANGED events */
        uint64_t refresh_now;         /* resolver_refresh_now() calls */
        uint64_t refresh_now_limited; /* ... merged or deferred by the rate limit */
        uint64_t channel_reloads;     /* channels rebuilt (reconfigure, resolv.conf) */
        uint64_t channel_reload_errors;
        uint64_t addresses_truncated; /* answers cut to max_addresses / max_srv_targets */
        uint64_t timer_errors;        /* driver timers that could not be armed */
        unsigned sockets;             /* c-ares sockets open now */
        unsigned watches;             /* names watched now */
};
void resolver_metrics(const struct resolver *res, struct resolver_metrics *out);

#endif
