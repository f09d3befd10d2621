/* A route's servers at one moment: an immutable, reference-counted array of entries (address,
 * shared state, weight, max_connections, the name it came from). The literal upstreams of the
 * configuration and every address their names resolve to, deduplicated by address. A route
 * publishes a new set whenever a name's answer changes (dns.c); a connection holds the set it
 * started with for its whole walk, so an address that left the answer drains. Server state
 * (struct upstream_server: health, counters, admin state, active count) follows an address
 * from one set to the next and across reloads. */
#ifndef EVPROXYD_SERVER_SET_H
#define EVPROXYD_SERVER_SET_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <evproxy/config.h>

struct upstream_server;
struct resolver_addrset;

struct server_entry {
        struct cfg_addr addr;        /* connect here; text as configured, or "ip:port" */
        struct upstream_server *srv; /* one reference */
        unsigned weight;             /* the config group's, or the SRV record's (1..1000) */
        unsigned max_connections;    /* the config group's; 0 = none */
        unsigned priority;           /* the SRV record's; 0 otherwise */
        unsigned upstream;           /* index in the route's cfg->upstreams */
        char name[128];              /* the name as written ("db:5432", "srv:_x._tcp.y"); "" */
};

struct server_set {
        atomic_uint refs;
        size_t n;
        uint64_t serial; /* a new number for every set built: keys state kept by position */
        struct server_entry e[];
};

/* A set for route rc: its literal upstreams, then for each named upstream i the addresses of
 * named[i] (NULL, or named itself NULL: the entries prev has for that name, so a reload loses
 * nothing while names are looked up again). State is taken from prev by address, else new.
 * 0 or -ENOMEM. */
int server_set_build(const struct cfg_route *rc, struct resolver_addrset *const *named,
                     const struct server_set *prev, struct server_set **out);
struct server_set *server_set_ref(struct server_set *s);
/* Accepts NULL; the last reference frees the set and drops its servers' references. */
void server_set_unref(struct server_set *s);
/* Index of the entry with address a (kind and sockaddr), or -1. */
long server_set_find(const struct server_set *s, const struct cfg_addr *a);
/* Index of the entry whose addr.text is text, else of the one text parses to; or -1. */
long server_set_find_text(const struct server_set *s, const char *text);

#endif
