/* The balancing policies of balance.h. Pure: they read servers only through the view and keep
 * nothing but struct balance_state, so they are tested without sockets or a configuration.
 * Every policy leaves out the servers that are not usable, so its choice is one the walk
 * (upstream.c) will hand out; -1 leaves the start to the caller. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "balance.h"

int balance_state_init(struct balance_state *s)
{
        int r;

        memset(s, 0, sizeof(*s));
        r = pthread_mutex_init(&s->lock, NULL);
        if (r != 0)
                return -r;
        atomic_init(&s->cursor, 0);
        return 0;
}

void balance_state_destroy(struct balance_state *s)
{
        if (!s)
                return;
        free(s->current);
        s->current = NULL;
        s->usable = NULL;
        s->n_current = 0;
        /* A zeroed mutex is glibc's PTHREAD_MUTEX_INITIALIZER: destroying it is harmless. */
        pthread_mutex_destroy(&s->lock);
}

/* A plain rotation over the usable servers, from the shared cursor. */
static int rotate(struct balance_state *s, const struct balance_view *v)
{
        unsigned from = atomic_fetch_add_explicit(&s->cursor, 1, memory_order_relaxed);

        for (unsigned k = 0; k < v->n; k++) {
                unsigned i = (from + k) % v->n;

                if (v->usable(v->ctx, i))
                        return (int)i;
        }
        return -1;
}

/* Note which servers are usable now; true if that differs from the last pick. */
static bool usable_changed(struct balance_state *s, const struct balance_view *v)
{
        bool changed = false;

        for (unsigned i = 0; i < v->n; i++) {
                uint8_t u = v->usable(v->ctx, i);

                changed |= u != s->usable[i];
                s->usable[i] = u;
        }
        return changed;
}

/* nginx's ngx_http_upstream_get_peer(): every usable server gains its weight, the one with the
 * highest current weight wins and pays the total back. When the usable set changes, the
 * sequence starts again: a server that comes back would otherwise keep the current weight it
 * left with, and make up for it (or be made up for) over the next picks. */
static int swrr_locked(struct balance_state *s, const struct balance_view *v)
{
        int64_t total = 0;
        int best = -1;

        if (usable_changed(s, v))
                memset(s->current, 0, v->n * sizeof(*s->current));
        for (unsigned i = 0; i < v->n; i++) {
                int64_t w;

                if (!s->usable[i])
                        continue;
                w = v->weight(v->ctx, i);
                s->current[i] += w;
                total += w;
                if (best < 0 || s->current[i] > s->current[best])
                        best = (int)i;
        }
        if (best >= 0)
                s->current[best] -= total;
        return best;
}

int balance_swrr(struct balance_state *s, const struct balance_view *v)
{
        int best;

        if (v->n == 0)
                return -1;
        pthread_mutex_lock(&s->lock);
        if (s->n_current != v->n) { /* the set changed: start the sequence again */
                free(s->current);
                s->current = calloc(v->n, sizeof(*s->current) + sizeof(*s->usable));
                s->usable = s->current ? (uint8_t *)(s->current + v->n) : NULL;
                s->n_current = s->current ? v->n : 0;
                s->serial = v->serial;
        } else if (s->serial != v->serial) { /* as many servers, maybe others: likewise */
                memset(s->current, 0, v->n * (sizeof(*s->current) + sizeof(*s->usable)));
                s->serial = v->serial;
        }
        best = s->current ? swrr_locked(s, v) : -2;
        pthread_mutex_unlock(&s->lock);
        return best == -2 ? rotate(s, v) : best;
}

/* Is a's load per unit of weight below b's? (a/wa < b/wb without division) */
static bool lighter(const struct balance_view *v, unsigned a, unsigned b)
{
        uint64_t la = v->active(v->ctx, a), lb = v->active(v->ctx, b);

        return la * v->weight(v->ctx, b) < lb * v->weight(v->ctx, a);
}

int balance_least_conn(struct balance_state *s, const struct balance_view *v)
{
        unsigned from;
        int best = -1;

        if (v->n == 0)
                return -1;
        from = atomic_fetch_add_explicit(&s->cursor, 1, memory_order_relaxed) % v->n;
        for (unsigned k = 0; k < v->n; k++) {
                unsigned i = (from + k) % v->n;

                if (!v->usable(v->ctx, i))
                        continue;
                if (best < 0 || lighter(v, i, (unsigned)best))
                        best = (int)i;
        }
        return best;
}

/* The usable server at weight offset x of the usable servers' total (skipping `except`). */
static int by_weight(const struct balance_view *v, uint64_t x, int except)
{
        for (unsigned i = 0; i < v->n; i++) {
                uint64_t w;

                if ((int)i == except || !v->usable(v->ctx, i))
                        continue;
                w = v->weight(v->ctx, i);
                if (x < w)
                        return (int)i;
                x -= w;
        }
        return -1;
}

int balance_random_two(const struct balance_view *v, uint32_t (*rnd)(void))
{
        uint64_t total = 0, total_b;
        int a, b;

        for (unsigned i = 0; i < v->n; i++) {
                if (v->usable(v->ctx, i))
                        total += v->weight(v->ctx, i);
        }
        if (total == 0)
                return -1;
        a = by_weight(v, ((uint64_t)rnd() * total) >> 32, -1);
        total_b = total - v->weight(v->ctx, (unsigned)a);
        if (total_b == 0)
                return a; /* the only usable server */
        b = by_weight(v, ((uint64_t)rnd() * total_b) >> 32, a);
        return lighter(v, (unsigned)b, (unsigned)a) ? b : a;
}

static uint64_t mix64(uint64_t x) /* splitmix64's finaliser */
{
        x ^= x >> 30;
        x *= UINT64_C(0xbf58476d1ce4e5b9);
        x ^= x >> 27;
        x *= UINT64_C(0x94d049bb133111eb);
        x ^= x >> 31;
        return x;
}

static uint64_t fnv1a(const void *data, size_t len, uint64_t h)
{
        const unsigned char *p = data;

        for (size_t i = 0; i < len; i++) {
                h ^= p[i];
                h *= UINT64_C(0x100000001b3);
        }
        return h;
}

#define FNV_BASIS UINT64_C(0xcbf29ce484222325)

/* hash01(key, id) in (0, 1), never 0 or 1, so its logarithm is finite and negative. */
static double hash01(uint64_t key, const char *id)
{
        uint64_t h = mix64(fnv1a(id, strlen(id), FNV_BASIS) ^ mix64(key));

        return ((double)(h >> 11) + 0.5) * 0x1p-53;
}

int balance_hash(const struct balance_view *v, uint64_t key)
{
        double best_score = 0;
        int best = -1;

        for (unsigned i = 0; i < v->n; i++) {
                double score;

                if (!v->usable(v->ctx, i))
                        continue;
                score = -(double)v->weight(v->ctx, i) / log(hash01(key, v->id(v->ctx, i)));
                if (best < 0 || score > best_score) {
                        best = (int)i;
                        best_score = score;
                }
        }
        return best;
}

bool balance_client_key(const struct sockaddr *sa, unsigned prefix6, uint64_t *key)
{
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        uint8_t bytes[17] = {0};

        if (!sa)
                return false;
        if (sa->sa_family == AF_INET) {
                bytes[0] = 4;
                memcpy(bytes + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        } else if (sa->sa_family == AF_INET6) {
                const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;

                if (memcmp(a, mapped, sizeof(mapped)) == 0) { /* a v4 client on a [::] socket */
                        bytes[0] = 4;
                        memcpy(bytes + 1, a + 12, 4);
                } else {
                        bytes[0] = 6;
                        for (unsigned b = 0; b < 128 && b < prefix6; b += 8) {
                                unsigned keep = prefix6 - b >= 8 ? 8 : prefix6 - b;

                                bytes[1 + b / 8] = (uint8_t)(a[b / 8] & (0xff00 >> keep));
                        }
                }
        } else {
                return false;
        }
        *key = mix64(fnv1a(bytes, sizeof(bytes), FNV_BASIS));
        return true;
}
