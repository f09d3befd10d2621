/* Building and releasing server sets (server_set.h). Sets are built on the main thread (start,
 * reload, a name's answer changed) and read by every thread; the only shared mutable parts are
 * the reference counts of the set and of its servers' state. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "resolver.h"
#include "server_set.h"
#include "upstream.h"

static struct upstream_server *server_new(void)
{
        struct upstream_server *s = calloc(1, sizeof(*s));

        if (!s)
                return NULL;
        atomic_init(&s->refs, 1);
        return s;
}

static void server_unref(struct upstream_server *s)
{
        if (s && atomic_fetch_sub(&s->refs, 1) == 1)
                free(s);
}

long server_set_find(const struct server_set *s, const struct cfg_addr *a)
{
        for (size_t i = 0; s && i < s->n; i++)
                if (cfg_addr_equal(&s->e[i].addr, a))
                        return (long)i;
        return -1;
}

long server_set_find_text(const struct server_set *s, const char *text)
{
        struct cfg_addr want;
        char msg[200];

        for (size_t i = 0; s && i < s->n; i++)
                if (strcmp(s->e[i].addr.text, text) == 0)
                        return (long)i;
        if (cfg_addr_parse(text, false, &want, msg, sizeof(msg)) < 0)
                return -1;
        return server_set_find(s, &want);
}

struct builder {
        struct server_set *set;
        size_t cap;
        const struct server_set *prev;
};

static int reserve(struct builder *b, size_t more)
{
        struct server_set *s;
        size_t cap = b->cap ? b->cap : 8;

        if (b->set && b->set->n + more <= b->cap)
                return 0;
        while (cap < (b->set ? b->set->n : 0) + more)
                cap *= 2;
        s = realloc(b->set, sizeof(*s) + cap * sizeof(s->e[0]));
        if (!s)
                return -ENOMEM;
        if (!b->set) {
                atomic_init(&s->refs, 1);
                s->n = 0;
        }
        b->set = s;
        b->cap = cap;
        return 0;
}

/* Append e (addr, weight, ... filled in) unless its address is there already. */
static int add(struct builder *b, struct server_entry *e)
{
        long old;
        int r;

        if (server_set_find(b->set, &e->addr) >= 0)
                return 0;
        r = reserve(b, 1);
        if (r < 0)
                return r;
        old = server_set_find(b->prev, &e->addr);
        if (old >= 0) {
                e->srv = b->prev->e[old].srv;
                atomic_fetch_add(&e->srv->refs, 1);
        } else if (!(e->srv = server_new())) {
                return -ENOMEM;
        }
        b->set->e[b->set->n++] = *e;
        return 0;
}

static int add_resolved(struct builder *b, const struct cfg_upstream *u, unsigned i,
                        const struct resolver_addr *ra)
{
        struct server_entry e = {
            .weight = u->weight, .max_connections = u->max_connections, .upstream = i};

        if (u->kind == CFG_UPSTREAM_SRV) {
                e.priority = ra->priority;
                e.weight = ra->weight == 0               ? 1
                           : ra->weight > CFG_MAX_WEIGHT ? CFG_MAX_WEIGHT
                                                         : ra->weight;
        }
        e.addr.kind = CFG_ADDR_INET;
        memcpy(&e.addr.sa, &ra->addr, ra->len);
        e.addr.sa_len = ra->len;
        addr_format((const struct sockaddr *)&ra->addr, ra->len, e.addr.text, sizeof(e.addr.text));
        snprintf(e.name, sizeof(e.name), "%s", u->addr.text);
        return add(b, &e);
}

/* The entries prev had for upstream u (same name as written), carried into a new set. */
static int add_carried(struct builder *b, const struct cfg_upstream *u, unsigned i)
{
        for (size_t k = 0; b->prev && k < b->prev->n; k++) {
                struct server_entry e = b->prev->e[k];
                int r;

                if (strcmp(e.name, u->addr.text) != 0)
                        continue;
                e.upstream = i;
                if (u->kind == CFG_UPSTREAM_NAME)
                        e.weight = u->weight;
                e.max_connections = u->max_connections;
                e.srv = NULL;
                r = add(b, &e);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int add_upstream(struct builder *b, const struct cfg_route *rc, unsigned i,
                        struct resolver_addrset *const *named)
{
        const struct cfg_upstream *u = &rc->upstreams[i];
        struct server_entry e = {.addr = u->addr,
                                 .weight = u->weight,
                                 .max_connections = u->max_connections,
                                 .upstream = i};
        int r = 0;

        if (u->kind == CFG_UPSTREAM_ADDR)
                return add(b, &e);
        if (!named || !named[i])
                return add_carried(b, u, i);
        for (size_t k = 0; r == 0 && k < named[i]->len; k++)
                r = add_resolved(b, u, i, &named[i]->addrs[k]);
        return r;
}

/* The serial of the last set built (struct server_set.serial), by any thread. */
static atomic_uint_least64_t serials;

int server_set_build(const struct cfg_route *rc, struct resolver_addrset *const *named,
                     const struct server_set *prev, struct server_set **out)
{
        struct builder b = {.prev = prev};
        int r = reserve(&b, rc->n_upstreams ? rc->n_upstreams : 1);

        for (unsigned i = 0; r == 0 && i < rc->n_upstreams; i++)
                r = add_upstream(&b, rc, i, named);
        if (r < 0) {
                server_set_unref(b.set);
                return r;
        }
        b.set->serial = atomic_fetch_add_explicit(&serials, 1, memory_order_relaxed) + 1;
        *out = b.set;
        return 0;
}

struct server_set *server_set_ref(struct server_set *s)
{
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
        return s;
}

void server_set_unref(struct server_set *s)
{
        if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
                return;
        for (size_t i = 0; i < s->n; i++)
                server_unref(s->e[i].srv);
        free(s);
}
