/* Per-client limits (issue 16): concurrent connections and new connections per second per
 * client, where a client is an IPv4 address or an IPv6 prefix (client_prefix6), counted in one
 * fixed-capacity table shared by every worker. Each limit lives in a scope: 0 for the daemon-wide
 * keys, or a route's (its route_stats); a connection must pass both of its scopes. */
#ifndef EVPROXYD_CLIENT_LIMIT_H
#define EVPROXYD_CLIENT_LIMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct client_key {
        uint64_t scope;   /* 0: daemon-wide; else the route's identity */
        uint8_t addr[16]; /* IPv4 in addr[0..3]; IPv6 masked to the prefix */
        uint8_t family;   /* AF_INET or AF_INET6; 0 = no key (not limited) */
};

struct client_rule {
        unsigned max_conns; /* 0 = no concurrency limit */
        unsigned rate;      /* new connections per second; 0 = no rate limit */
        unsigned burst;     /* bucket size (connections) */
};

enum client_verdict {
        CLIENT_OK,
        CLIENT_OVER_LIMIT,   /* max_conns connections open already */
        CLIENT_RATE_LIMITED, /* the bucket is empty */
        CLIENT_TABLE_FULL,   /* no slot for a new client: let through, not counted (fail open) */
};

struct client_table;

/* A table of about capacity entries (rounded up to a multiple of its shards). 0 or -ENOMEM. */
int client_table_new(size_t capacity, struct client_table **out);
void client_table_free(struct client_table *t); /* accepts NULL */

/* The key of sa in scope: IPv4 (and v4-mapped IPv6) by address, IPv6 by its first prefix6 bits.
 * False (k->family 0) for addresses that have no key (unix sockets, unknown). */
bool client_key_make(const struct sockaddr *sa, unsigned prefix6, uint64_t scope,
                     struct client_key *k);

/* One new connection of k at now_ms under rule: CLIENT_OK takes a connection (release it with
 * client_table_release), the others take nothing. Any thread. */
enum client_verdict client_table_take(struct client_table *t, const struct client_key *k,
                                      const struct client_rule *rule, uint64_t now_ms);
/* Give back one connection taken for k. */
void client_table_release(struct client_table *t, const struct client_key *k, uint64_t now_ms);

struct client_table_stats {
        size_t capacity;
        size_t entries;        /* slots in use (idle entries linger until reused) */
        uint64_t full;         /* takes let through because no slot was free */
        uint64_t last_full_ms; /* when the table was last found full (0: never) */
};
void client_table_stats(struct client_table *t, struct client_table_stats *out);

/* What a connection holds: the keys it took a connection for (at most one per scope). */
struct client_ticket {
        struct client_key keys[2];
        uint8_t held; /* bit i: keys[i] was taken */
};

/* The daemon's side (client_admit.c): the limits of l's configuration for client sa. */
struct listener;
/* 0 when sa may connect (tk then says what to release), else END_CLIENT_LIMIT or
 * END_RATE_LIMITED (enum conn_end), counted in l's route. t NULL: no limits. */
int client_limit_admit(struct client_table *t, const struct listener *l, const struct sockaddr *sa,
                       struct client_ticket *tk);
/* Give back what tk holds (accepts an empty ticket). */
void client_limit_release(struct client_table *t, struct client_ticket *tk);

#endif
