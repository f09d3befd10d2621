/* The per-client table: open addressing in 64 shards, each a fixed array behind its own mutex,
 * so workers contend only when their clients hash to the same shard. A key lives within PROBE
 * slots of its hash; a lookup scans that window (no tombstones needed), so take and release
 * cost O(PROBE) whatever the load. An entry is idle once it holds no connection and its rate
 * bucket is full again: idle entries are freed on release, or reused by the next new key.
 * When a new key finds no free or idle slot in its window the table is full: the connection is
 * let through uncounted (fail open) and counted in `full` -- refusing would let one client
 * that fills the table lock out every newcomer. Rate buckets are GCRA (one time per entry). */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "client_limit.h"

#define SHARDS 64
#define PROBE  16

struct slot {
        struct client_key key;
        bool used;
        uint32_t conns;
        uint64_t tat_us; /* GCRA: when the bucket is full again (microseconds) */
};

struct shard {
        pthread_mutex_t lock;
        struct slot *slots;
} __attribute__((aligned(64)));

struct client_table {
        struct shard shards[SHARDS];
        size_t shard_cap;
        uint64_t seed;
        atomic_size_t entries;
        atomic_uint_least64_t full;
        atomic_uint_least64_t last_full_ms;
};

int client_table_new(size_t capacity, struct client_table **out)
{
        struct client_table *t = calloc(1, sizeof(*t));

        if (!t)
                return -ENOMEM;
        t->shard_cap = (capacity + SHARDS - 1) / SHARDS;
        if (t->shard_cap == 0)
                t->shard_cap = 1;
        /* An unpredictable seed: clients must not be able to aim at one window. */
        if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != sizeof(t->seed))
                t->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uintptr_t)t;
        for (size_t i = 0; i < SHARDS; i++) {
                t->shards[i].slots = calloc(t->shard_cap, sizeof(struct slot));
                if (!t->shards[i].slots) {
                        client_table_free(t);
                        return -ENOMEM;
                }
                pthread_mutex_init(&t->shards[i].lock, NULL);
        }
        *out = t;
        return 0;
}

void client_table_free(struct client_table *t)
{
        if (!t)
                return;
        for (size_t i = 0; i < SHARDS; i++) {
                if (!t->shards[i].slots)
                        continue;
                pthread_mutex_destroy(&t->shards[i].lock);
                free(t->shards[i].slots);
        }
        free(t);
}

bool client_key_make(const struct sockaddr *sa, unsigned prefix6, uint64_t scope,
                     struct client_key *k)
{
        static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        const uint8_t *a6;

        memset(k, 0, sizeof(*k));
        k->scope = scope;
        if (sa->sa_family == AF_INET) {
                memcpy(k->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
                k->family = AF_INET;
                return true;
        }
        if (sa->sa_family != AF_INET6)
                return false;
        a6 = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (memcmp(a6, v4mapped, sizeof(v4mapped)) == 0) {
                memcpy(k->addr, a6 + 12, 4);
                k->family = AF_INET;
                return true;
        }
        assert(prefix6 >= 1 && prefix6 <= 128);
        memcpy(k->addr, a6, prefix6 / 8);
        if (prefix6 % 8)
                k->addr[prefix6 / 8] = a6[prefix6 / 8] & (uint8_t)(0xff00u >> (prefix6 % 8));
        k->family = AF_INET6;
        return true;
}

static uint64_t mix(uint64_t h, uint64_t w)
{
        h ^= w;
        h *= 0x9e3779b97f4a7c15ull;
        return h ^ (h >> 29);
}

static uint64_t key_hash(const struct client_table *t, const struct client_key *k)
{
        uint64_t lo, hi;

        memcpy(&lo, k->addr, 8);
        memcpy(&hi, k->addr + 8, 8);
        return mix(mix(mix(mix(t->seed, k->scope), lo), hi), k->family);
}

static bool key_equal(const struct client_key *a, const struct client_key *b)
{
        return a->scope == b->scope && a->family == b->family &&
               memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

static bool slot_idle(const struct slot *s, uint64_t now_us)
{
        return s->conns == 0 && s->tat_us <= now_us;
}

/* The shard of k, locked, and the window's match (or NULL) and first reusable slot. */
static struct shard *find(struct client_table *t, const struct client_key *k, uint64_t now_us,
                          struct slot **match, struct slot **spare)
{
        uint64_t h = key_hash(t, k);
        struct shard *sh = &t->shards[h % SHARDS];
        size_t start = (size_t)((h / SHARDS) % t->shard_cap);
        size_t n = t->shard_cap < PROBE ? t->shard_cap : PROBE;

        *match = *spare = NULL;
        pthread_mutex_lock(&sh->lock);
        /* cppcheck-suppress knownConditionTrueFalse ; shard_cap >= 1 (client_table_new) */
        for (size_t i = 0; i < n; i++) {
                struct slot *s = &sh->slots[(start + i) % t->shard_cap];

                if (s->used && key_equal(&s->key, k)) {
                        *match = s;
                        return sh;
                }
                if (!*spare && (!s->used || slot_idle(s, now_us)))
                        *spare = s;
        }
        return sh;
}

static enum client_verdict check(struct slot *s, const struct client_rule *rule, uint64_t now_us)
{
        uint64_t tat, interval;

        if (rule->max_conns && s->conns >= rule->max_conns)
                return CLIENT_OVER_LIMIT;
        if (rule->rate) {
                interval = 1000000u / rule->rate;
                if (interval == 0)
                        interval = 1;
                tat = s->tat_us > now_us ? s->tat_us : now_us;
                if (tat + interval - now_us > (uint64_t)rule->burst * interval)
                        return CLIENT_RATE_LIMITED;
                s->tat_us = tat + interval;
        }
        s->conns++;
        return CLIENT_OK;
}

enum client_verdict client_table_take(struct client_table *t, const struct client_key *k,
                                      const struct client_rule *rule, uint64_t now_ms)
{
        uint64_t now_us = now_ms * 1000;
        struct slot *s, *spare;
        struct shard *sh = find(t, k, now_us, &s, &spare);
        enum client_verdict v;

        if (!s && !spare) {
                pthread_mutex_unlock(&sh->lock);
                atomic_fetch_add_explicit(&t->full, 1, memory_order_relaxed);
                atomic_store_explicit(&t->last_full_ms, now_ms, memory_order_relaxed);
                return CLIENT_TABLE_FULL;
        }
        if (!s) {
                if (!spare->used)
                        atomic_fetch_add_explicit(&t->entries, 1, memory_order_relaxed);
                *spare = (struct slot){.key = *k, .used = true, .tat_us = now_us};
                s = spare;
        }
        v = check(s, rule, now_us);
        pthread_mutex_unlock(&sh->lock);
        return v;
}

void client_table_release(struct client_table *t, const struct client_key *k, uint64_t now_ms)
{
        uint64_t now_us = now_ms * 1000;
        struct slot *s, *spare;
        struct shard *sh = find(t, k, now_us, &s, &spare);

        /* A release without its take is a bug that would lift a client's limit for good. */
        assert(s && s->conns > 0);
        if (s && s->conns > 0 && --s->conns == 0 && slot_idle(s, now_us)) {
                s->used = false;
                atomic_fetch_sub_explicit(&t->entries, 1, memory_order_relaxed);
        }
        pthread_mutex_unlock(&sh->lock);
}

void client_table_stats(struct client_table *t, struct client_table_stats *out)
{
        out->capacity = t->shard_cap * SHARDS;
        out->entries = atomic_load_explicit(&t->entries, memory_order_relaxed);
        out->full = atomic_load_explicit(&t->full, memory_order_relaxed);
        out->last_full_ms = atomic_load_explicit(&t->last_full_ms, memory_order_relaxed);
}
