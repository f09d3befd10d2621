/* Balancing policies, apart from how servers are stored: each policy sees a route's servers
 * through a struct balance_view (n servers, weight/active/usable/id accessors) and returns the
 * index of the server a connection's walk starts from, or -1 when no server is usable.
 * Smooth weighted round-robin (nginx), weighted least-conn (active/weight), weighted random
 * with two choices, and weighted rendezvous hashing of the client's address (consistent). */
#ifndef EVPROXYD_BALANCE_H
#define EVPROXYD_BALANCE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* A route's servers as a policy sees them. usable(i): up (or due for a probe), not drained,
 * not at max_connections. id(i): what identifies the server across reloads and set changes
 * (the address as written), for hashing. weight(i) >= 1. */
struct balance_view {
        unsigned n;
        const void *ctx;
        unsigned (*weight)(const void *ctx, unsigned i);
        unsigned (*active)(const void *ctx, unsigned i);
        bool (*usable)(const void *ctx, unsigned i);
        const char *(*id)(const void *ctx, unsigned i);
        /* Which set of servers this is (server_set.serial): index i of one serial is the same
         * server; another serial may put another server at i (0: a fixed set). */
        uint64_t serial;
};

/* Per-route policy state, shared by every worker. SWRR's current weights are one vector that
 * every pick updates whole, so they sit under a mutex (held for O(n) additions, next to an
 * accept and a connect); they reset when the set of servers (its serial: a reload, a DNS
 * answer) or the usable ones among them change, since an index may then name another server. */
struct balance_state {
        pthread_mutex_t lock;
        int64_t *current; /* SWRR current weights, n_current of them */
        uint8_t *usable;  /* which servers were usable at the last pick (same allocation) */
        unsigned n_current;
        uint64_t serial;    /* the view's serial the vector is for */
        atomic_uint cursor; /* where least-conn starts looking (ties), and fallbacks */
};

int balance_state_init(struct balance_state *s);
/* Accepts a state that was zeroed and never initialised. */
void balance_state_destroy(struct balance_state *s);

/* Smooth weighted round-robin over the usable servers: weights 5,1,1 give a a b a c a a. On
 * -ENOMEM for its vector, a plain rotation over the usable servers. */
int balance_swrr(struct balance_state *s, const struct balance_view *v);
/* Fewest active connections per unit of weight; ties go to the first from a rotating cursor. */
int balance_least_conn(struct balance_state *s, const struct balance_view *v);
/* Two servers drawn by weight (distinct when two are usable); the one with fewer active
 * connections per unit of weight wins. rnd: uniform 32-bit random numbers. */
int balance_random_two(const struct balance_view *v, uint32_t (*rnd)(void));
/* Weighted rendezvous hashing: the usable server with the highest
 * -weight / ln(hash01(key, id)). Removing a server moves only the keys it had. */
int balance_hash(const struct balance_view *v, uint64_t key);

/* The hash key of a client address: IPv4 (also v4-mapped IPv6) as is, IPv6 masked to its first
 * prefix6 bits. false for other families (unix clients have no address to hash). */
bool balance_client_key(const struct sockaddr *sa, unsigned prefix6, uint64_t *key);

#endif
