/* Address sets: immutable, reference-counted (atomically: workers may hold them), sorted by
 * address (family, bytes, port) and deduplicated, so "did it change" is one linear compare and
 * "is this server still there" a binary search. An address named twice (two SRV records) keeps
 * the lowest priority and then the highest weight. */
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "resolver_int.h"

/* The comparable parts of an address. Copied out with memcpy, never read through a cast
 * pointer: a sockaddr_storage written as a sockaddr_in and read as itself is an aliasing
 * violation that -O2 does miscompile. */
struct addr_key {
        sa_family_t family;
        unsigned char ip[16];
        uint32_t scope;
        uint16_t port; /* host order */
};

static struct addr_key key_of(const struct sockaddr_storage *ss)
{
        struct addr_key k = {.family = ss->ss_family};

        if (k.family == AF_INET) {
                struct sockaddr_in in;
                memcpy(&in, ss, sizeof(in));
                memcpy(k.ip, &in.sin_addr, sizeof(in.sin_addr));
                k.port = ntohs(in.sin_port);
        } else if (k.family == AF_INET6) {
                struct sockaddr_in6 in6;
                memcpy(&in6, ss, sizeof(in6));
                memcpy(k.ip, &in6.sin6_addr, sizeof(in6.sin6_addr));
                k.scope = in6.sin6_scope_id;
                k.port = ntohs(in6.sin6_port);
        }
        return k;
}

/* Order by family, address, scope, port: priority and weight left out. */
static int addr_key_cmp(const struct resolver_addr *a, const struct resolver_addr *b)
{
        struct addr_key ka = key_of(&a->addr), kb = key_of(&b->addr);
        int c;

        if (ka.family != kb.family)
                return ka.family < kb.family ? -1 : 1;
        c = memcmp(ka.ip, kb.ip, sizeof(ka.ip));
        if (c)
                return c;
        if (ka.scope != kb.scope)
                return ka.scope < kb.scope ? -1 : 1;
        return (int)ka.port - (int)kb.port;
}

/* Sort order: the key, then the best duplicate first (lowest priority, highest weight). */
static int addr_sort_cmp(const void *pa, const void *pb)
{
        const struct resolver_addr *a = pa, *b = pb;
        int c = addr_key_cmp(a, b);

        if (c)
                return c;
        if (a->priority != b->priority)
                return a->priority < b->priority ? -1 : 1;
        if (a->weight != b->weight)
                return a->weight > b->weight ? -1 : 1;
        return 0;
}

bool resolver__addr_set(struct resolver_addr *out, const struct sockaddr *sa, uint16_t port,
                        uint16_t priority, uint16_t weight)
{
        sa_family_t family;

        memcpy(&family, &sa->sa_family, sizeof(family));
        memset(out, 0, sizeof(*out));
        out->priority = priority;
        out->weight = weight;
        if (family == AF_INET) {
                struct sockaddr_in in;
                memcpy(&in, sa, sizeof(in));
                in = (struct sockaddr_in){
                    .sin_family = AF_INET, .sin_addr = in.sin_addr, .sin_port = htons(port)};
                memcpy(&out->addr, &in, sizeof(in));
                out->len = sizeof(in);
                return true;
        }
        if (family == AF_INET6) {
                struct sockaddr_in6 in6;
                memcpy(&in6, sa, sizeof(in6));
                in6 = (struct sockaddr_in6){.sin6_family = AF_INET6,
                                            .sin6_addr = in6.sin6_addr,
                                            .sin6_scope_id = in6.sin6_scope_id,
                                            .sin6_port = htons(port)};
                memcpy(&out->addr, &in6, sizeof(in6));
                out->len = sizeof(in6);
                return true;
        }
        return false;
}

struct resolver_addrset *resolver__addrset_new(const struct resolver_addr *addrs, size_t n,
                                               enum resolver_status status)
{
        struct resolver_addrset *s = malloc(sizeof(*s) + n * sizeof(s->addrs[0]));
        size_t len = 0;

        if (!s)
                return NULL;
        atomic_init(&s->refs, 1);
        s->generation = 0;
        s->status = status;
        if (n)
                memcpy(s->addrs, addrs, n * sizeof(s->addrs[0]));
        qsort(s->addrs, n, sizeof(s->addrs[0]), addr_sort_cmp);
        for (size_t i = 0; i < n; i++)
                if (len == 0 || addr_key_cmp(&s->addrs[len - 1], &s->addrs[i]) != 0)
                        s->addrs[len++] = s->addrs[i];
        s->len = len;
        return s;
}

struct resolver_addrset *resolver_addrset_ref(struct resolver_addrset *s)
{
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
        return s;
}

void resolver_addrset_unref(struct resolver_addrset *s)
{
        if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
                free(s);
}

bool resolver_addrset_same(const struct resolver_addrset *a, const struct resolver_addrset *b)
{
        if (a->len != b->len)
                return false;
        for (size_t i = 0; i < a->len; i++)
                if (addr_sort_cmp(&a->addrs[i], &b->addrs[i]) != 0)
                        return false;
        return true;
}

long resolver_addrset_find(const struct resolver_addrset *s, const struct sockaddr *sa,
                           socklen_t len)
{
        struct resolver_addr key = {0};
        size_t lo = 0, hi = s->len;
        sa_family_t family;

        memcpy(&family, &sa->sa_family, sizeof(family));
        if ((family != AF_INET || len < sizeof(struct sockaddr_in)) &&
            (family != AF_INET6 || len < sizeof(struct sockaddr_in6)))
                return -1;
        memcpy(&key.addr, sa, len < sizeof(key.addr) ? len : sizeof(key.addr));
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = addr_key_cmp(&key, &s->addrs[mid]);
                if (c == 0)
                        return (long)mid;
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return -1;
}

unsigned resolver__addrset_missing(const struct resolver_addrset *a,
                                   const struct resolver_addrset *b)
{
        size_t i = 0, j = 0;
        unsigned missing = 0;

        while (j < b->len) {
                int c = i < a->len ? addr_key_cmp(&a->addrs[i], &b->addrs[j]) : 1;
                if (c < 0) {
                        i++;
                } else if (c == 0) {
                        i++;
                        j++;
                } else {
                        missing++;
                        j++;
                }
        }
        return missing;
}
