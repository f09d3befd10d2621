/* Watched names and their lookups. A watch's timer starts a round: one ares_getaddrinfo() for a
 * name, or an SRV query whose targets then get one ares_getaddrinfo() each. When the round's last
 * callback has come, its result is applied (see the state machine in resolver.h):
 *   answer    -> new set if the addresses differ; next lookup at TTL clamped, +-jitter
 *   failure   -> last good set kept; next lookup after a back-off doubling per failure
 *   negative  -> set kept until the name has been negative for nxdomain_hold_ms, then emptied
 * A round holds a reference on its watch, so unwatching mid-round is safe; a round cut short by
 * the channel being rebuilt (ARES_EDESTRUCTION) starts again at once. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <evproxy/timer.h>

#include "resolver_int.h"

#define DNS_NAME_LEN  253
#define DNS_CLASS_IN  1
#define DNS_TYPE_SRV  33
#define BACKOFF_SHIFT 16

struct resolver_round {
        struct resolver_watch *w;
        unsigned pending; /* callbacks still to come, plus one while a step is starting more */
        bool cancelled;   /* the channel went away under it */
        enum resolver_status srv_status;
        enum resolver_status fail_status, neg_status; /* first of each kind among targets */
        const char *fail_detail, *neg_detail;
        unsigned n_fail, n_neg;
        uint32_t ttl_s; /* smallest TTL seen; UINT32_MAX: none */
        struct resolver_addr *addrs;
        size_t n, cap;
};

/* One ares_getaddrinfo() of a round: the port, priority and weight its addresses get. */
struct resolver_target {
        struct resolver_round *round;
        uint16_t port, priority, weight;
};

static void watch_unref(struct resolver_watch *w)
{
        assert(w->refs > 0);
        if (--w->refs)
                return;
        resolver_addrset_unref(w->set);
        free(w->name);
        free(w);
}

static void emit(struct resolver_watch *w, const struct resolver_event *ev)
{
        if (!w->dead && !w->res->freeing)
                w->cb(w->arg, ev);
}

/* ----- collecting a round's answers ----- */

static void round_note_failure(struct resolver_round *rd, int status)
{
        enum resolver_status s = resolver__status_from_ares(status);

        if (status == ARES_EDESTRUCTION) {
                rd->cancelled = true;
        } else if (resolver_status_is_negative(s)) {
                if (!rd->n_neg++) {
                        rd->neg_status = s;
                        rd->neg_detail = ares_strerror(status);
                }
        } else if (!rd->n_fail++) {
                rd->fail_status = s;
                rd->fail_detail = ares_strerror(status);
        }
}

static void round_note_ttl(struct resolver_round *rd, int ttl)
{
        uint32_t t = ttl > 0 ? (uint32_t)ttl : 0;

        if (t < rd->ttl_s)
                rd->ttl_s = t;
}

static void round_add(struct resolver_round *rd, const struct sockaddr *sa,
                      const struct resolver_target *t)
{
        struct resolver *res = rd->w->res;

        if (rd->n == rd->cap) {
                size_t cap = rd->cap ? rd->cap * 2 : 8;
                struct resolver_addr *a;

                if (rd->n >= res->o.max_addresses) {
                        res->m.addresses_truncated++;
                        return;
                }
                if (cap > res->o.max_addresses)
                        cap = res->o.max_addresses;
                a = realloc(rd->addrs, cap * sizeof(*a));
                if (!a) {
                        round_note_failure(rd, ARES_ENOMEM);
                        return;
                }
                rd->addrs = a;
                rd->cap = cap;
        }
        if (resolver__addr_set(&rd->addrs[rd->n], sa, t->port, t->priority, t->weight))
                rd->n++;
}

static void round_finish(struct resolver_round *rd);

static void round_put(struct resolver_round *rd)
{
        assert(rd->pending > 0);
        if (--rd->pending == 0)
                round_finish(rd);
}

static void addrinfo_done(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
        struct resolver_target *t = arg;
        struct resolver_round *rd = t->round;
        size_t before = rd->n;

        if (status == ARES_SUCCESS && ai) {
                for (struct ares_addrinfo_node *n = ai->nodes; n; n = n->ai_next) {
                        round_add(rd, n->ai_addr, t);
                        round_note_ttl(rd, n->ai_ttl);
                }
                for (struct ares_addrinfo_cname *c = ai->cnames; c; c = c->next)
                        round_note_ttl(rd, c->ttl);
                if (rd->n == before && !ai->nodes)
                        round_note_failure(rd, ARES_ENODATA);
        } else {
                round_note_failure(rd, status == ARES_SUCCESS ? ARES_ENODATA : status);
        }
        ares_freeaddrinfo(ai);
        free(t);
        round_put(rd);
}

static void lookup_addrs(struct resolver_round *rd, const char *name, uint16_t port,
                         uint16_t priority, uint16_t weight)
{
        static const int families[] = {
            [RESOLVER_FAMILY_ANY] = AF_UNSPEC,
            [RESOLVER_FAMILY_IPV4] = AF_INET,
            [RESOLVER_FAMILY_IPV6] = AF_INET6,
        };
        struct resolver *res = rd->w->res;
        struct ares_addrinfo_hints hints = {
            .ai_family = families[rd->w->family],
            .ai_flags = ARES_AI_NOSORT, /* we sort; c-ares would connect() test sockets */
        };
        struct resolver_target *t = malloc(sizeof(*t));

        if (!t) {
                round_note_failure(rd, ARES_ENOMEM);
                return;
        }
        *t = (struct resolver_target){rd, port, priority, weight};
        rd->pending++;
        /* May call addrinfo_done() before it returns (/etc/hosts, a numeric name). */
        ares_getaddrinfo(res->channel, name, NULL, &hints, addrinfo_done, t);
}

static void srv_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
        struct resolver_round *rd = arg;
        struct resolver *res = rd->w->res;
        struct ares_srv_reply *srv = NULL;
        unsigned followed = 0;
        uint32_t ttl;

        if (status == ARES_SUCCESS)
                status = ares_parse_srv_reply(abuf, alen, &srv);
        if (status == ARES_SUCCESS &&
            resolver__dns_answer_ttl(abuf, (size_t)alen, DNS_TYPE_SRV, &ttl) > 0)
                round_note_ttl(rd, ttl > INT32_MAX ? INT32_MAX : (int)ttl);
        rd->srv_status = resolver__status_from_ares(status);
        if (status != ARES_SUCCESS) {
                if (status == ARES_EDESTRUCTION)
                        rd->cancelled = true;
                else
                        rd->fail_detail = ares_strerror(status);
        }
        for (struct ares_srv_reply *r = srv; r && !rd->cancelled && !rd->w->dead; r = r->next) {
                if (!r->host[0] || strcmp(r->host, ".") == 0) /* "no service here" */
                        continue;
                if (followed++ == res->o.max_srv_targets) {
                        res->m.addresses_truncated++;
                        break;
                }
                lookup_addrs(rd, r->host, r->port, r->priority, r->weight);
        }
        if (status == ARES_SUCCESS && !followed)
                round_note_failure(rd, ARES_ENODATA);
        ares_free_data(srv);
        round_put(rd);
}

/* ----- applying a round ----- */

static uint64_t jitter(struct resolver *res, uint64_t ms)
{
        uint64_t span = ms * res->o.jitter_pct / 100;

        if (!span)
                return ms;
        return ms - span + resolver__random(res) % (2 * span + 1);
}

static uint64_t backoff(struct resolver_watch *w)
{
        const struct resolver_options *o = &w->res->o;
        unsigned shift = w->failures > 1 ? w->failures - 1 : 0;
        uint64_t ms = (uint64_t)o->retry_min_ms << (shift > BACKOFF_SHIFT ? BACKOFF_SHIFT : shift);

        return jitter(w->res, ms < o->retry_max_ms ? ms : o->retry_max_ms);
}

static uint64_t refresh_delay(struct resolver_watch *w, uint32_t ttl_s)
{
        const struct resolver_options *o = &w->res->o;
        uint64_t ms = ttl_s == UINT32_MAX ? 0 : (uint64_t)ttl_s * 1000;
        uint64_t lo = w->ttl_min_ms ? w->ttl_min_ms : o->ttl_min_ms;
        uint64_t hi = w->ttl_max_ms ? w->ttl_max_ms : o->ttl_max_ms;

        if (ms < lo)
                ms = lo;
        if (ms > hi)
                ms = hi;
        return jitter(w->res, ms);
}

/* Replace the set if addrs differ from it, and say so. */
static void publish(struct resolver_watch *w, const struct resolver_addr *addrs, size_t n,
                    enum resolver_status status, const char *detail)
{
        struct resolver_addrset *set = resolver__addrset_new(addrs, n, status), *old = w->set;
        struct resolver_event ev = {.kind = RESOLVER_EVENT_CHANGED,
                                    .name = w->name,
                                    .srv = w->srv,
                                    .status = status,
                                    .detail = detail};

        if (!set) /* no memory: keep the old set, the next lookup tries again */
                return;
        if (resolver_addrset_same(set, old)) {
                resolver_addrset_unref(set);
                return;
        }
        set->generation = old->generation + 1;
        w->set = set;
        w->res->m.set_changes++;
        ev.set = set;
        ev.old = old;
        ev.added = resolver__addrset_missing(old, set);
        ev.removed = resolver__addrset_missing(set, old);
        emit(w, &ev);
        resolver_addrset_unref(old);
}

static void set_health(struct resolver_watch *w, enum resolver_health h,
                       enum resolver_status status, const char *detail)
{
        struct resolver_event ev = {
            .name = w->name, .srv = w->srv, .set = w->set, .status = status, .detail = detail};
        enum resolver_health was = w->health;

        w->health = h;
        if (h == RESOLVER_HEALTH_FAILING && was != RESOLVER_HEALTH_FAILING)
                ev.kind = RESOLVER_EVENT_FAILING;
        else if (h == RESOLVER_HEALTH_OK && was == RESOLVER_HEALTH_FAILING)
                ev.kind = RESOLVER_EVENT_RECOVERED;
        else
                return;
        emit(w, &ev);
}

/* The round's overall result: its SRV query's, else OK if anything answered and nothing
 * failed, else the first failure, else the first negative answer. */
static enum resolver_status round_status(const struct resolver_round *rd, const char **detail)
{
        *detail = rd->fail_detail;
        if (rd->srv_status != RESOLVER_STATUS_OK)
                return rd->srv_status;
        if (rd->n && !rd->n_fail)
                return RESOLVER_STATUS_OK;
        if (rd->n_fail)
                return rd->fail_status;
        *detail = rd->neg_detail;
        return rd->n_neg ? rd->neg_status : RESOLVER_STATUS_NODATA;
}

static void apply(struct resolver_watch *w, struct resolver_round *rd)
{
        struct resolver *res = w->res;
        const char *detail;
        enum resolver_status st = round_status(rd, &detail);
        uint64_t now = evio_now_ms(), delay;
        uint64_t hold = w->hold_ms ? w->hold_ms : res->o.nxdomain_hold_ms;

        w->lookups[st]++;
        res->m.lookups[st]++;
        w->last_status = st;
        if (st == RESOLVER_STATUS_OK) {
                w->failures = 0;
                w->negative_since_ms = 0;
                w->last_success_ms = now;
                delay = refresh_delay(w, rd->ttl_s);
        } else if (resolver_status_is_negative(st)) {
                w->failures++;
                if (!w->negative_since_ms)
                        w->negative_since_ms = now;
                delay = backoff(w);
                if (w->set->len && now - w->negative_since_ms < hold &&
                    w->negative_since_ms + hold - now < delay)
                        delay = w->negative_since_ms + hold - now;
        } else {
                w->failures++;
                delay = backoff(w);
        }
        /* Armed before anyone is told, so a callback's resolver_refresh_now() can bring it in. */
        if (!(w->is_static && st == RESOLVER_STATUS_OK))
                resolver__arm(res, &w->timer, now + delay);

        if (st == RESOLVER_STATUS_OK) {
                set_health(w, RESOLVER_HEALTH_OK, st, NULL);
                publish(w, rd->addrs, rd->n, st, NULL);
                return;
        }
        set_health(w, RESOLVER_HEALTH_FAILING, st, detail);
        if (resolver_status_is_negative(st)) {
                if (w->set->len && now - w->negative_since_ms >= hold)
                        publish(w, NULL, 0, st, detail);
        } else if (!w->set->len && rd->n) {
                /* Nothing good to keep: what did answer (some SRV targets) beats nothing. */
                publish(w, rd->addrs, rd->n, st, detail);
        }
}

static void round_finish(struct resolver_round *rd)
{
        struct resolver_watch *w = rd->w;
        struct resolver *res = w->res;

        w->round = NULL;
        if (rd->cancelled) {
                if (!w->dead && !res->freeing)
                        resolver__arm(res, &w->timer, evio_now_ms());
        } else if (!w->dead && !res->freeing) {
                apply(w, rd);
        }
        free(rd->addrs);
        free(rd);
        watch_unref(w);
}

static void round_start(struct resolver_watch *w)
{
        struct resolver *res = w->res;
        struct resolver_round *rd = calloc(1, sizeof(*rd));

        w->last_start_ms = evio_now_ms();
        if (!rd) {
                w->failures++;
                res->m.lookups[RESOLVER_STATUS_ERROR]++;
                resolver__arm(res, &w->timer, w->last_start_ms + backoff(w));
                return;
        }
        rd->w = w;
        rd->ttl_s = UINT32_MAX;
        rd->pending = 1; /* held while starting: callbacks may come before the calls return */
        w->refs++;
        w->round = rd;
        res->m.lookups_started++;
        resolver__enter(res);
        if (w->srv) {
                rd->pending++;
                ares_search(res->channel, w->name, DNS_CLASS_IN, DNS_TYPE_SRV, srv_done, rd);
        } else {
                lookup_addrs(rd, w->name, w->port, 0, 0);
        }
        round_put(rd);
        resolver__leave(res);
}

static void watch_timer_fired(struct evio_timer *t, void *arg)
{
        struct resolver_watch *w = arg;

        if (w->round) /* a restart armed while one was starting: it is running already */
                return;
        resolver__check_conf(w->res);
        round_start(w);
}

/* ----- the API ----- */

static bool is_numeric(const char *name)
{
        unsigned char buf[sizeof(struct in6_addr)];

        return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

static int watch_new(struct resolver *res, const char *name, uint16_t port,
                     enum resolver_family family, bool srv, resolver_watch_fn *cb, void *arg,
                     struct resolver_watch **out)
{
        struct resolver_watch *w;

        resolver__assert_owner(res);
        if (!name || !*name || strlen(name) > DNS_NAME_LEN || !cb ||
            (unsigned)family > RESOLVER_FAMILY_IPV6)
                return -EINVAL;
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (struct resolver_watch){.res = res,
                                     .refs = 1,
                                     .srv = srv,
                                     .port = port,
                                     .family = family,
                                     .cb = cb,
                                     .arg = arg,
                                     .is_static = !srv && is_numeric(name)};
        w->name = strdup(name);
        w->set = resolver__addrset_new(NULL, 0, RESOLVER_STATUS_OK);
        if (!w->name || !w->set) {
                watch_unref(w);
                return -ENOMEM;
        }
        evio_timer_init(&w->timer, watch_timer_fired, w);
        if (evio_timer_arm(res->driver, &w->timer, evio_now_ms()) < 0) {
                watch_unref(w);
                return -ENOMEM;
        }
        w->next = res->watches;
        if (w->next)
                w->next->prev = w;
        res->watches = w;
        res->m.watches++;
        *out = w;
        return 0;
}

int resolver_watch(struct resolver *res, const char *name, uint16_t port,
                   enum resolver_family family, resolver_watch_fn *cb, void *arg,
                   struct resolver_watch **out)
{
        return watch_new(res, name, port, family, false, cb, arg, out);
}

int resolver_watch_srv(struct resolver *res, const char *name, enum resolver_family family,
                       resolver_watch_fn *cb, void *arg, struct resolver_watch **out)
{
        return watch_new(res, name, 0, family, true, cb, arg, out);
}

static void watch_unlink(struct resolver_watch *w)
{
        struct resolver *res = w->res;

        evio_timer_cancel(res->driver, &w->timer);
        w->dead = true;
        if (w->prev)
                w->prev->next = w->next;
        else
                res->watches = w->next;
        if (w->next)
                w->next->prev = w->prev;
        w->prev = w->next = NULL;
        res->m.watches--;
}

void resolver_watch_limits(struct resolver_watch *w, uint32_t ttl_min_ms, uint32_t ttl_max_ms,
                           uint32_t nxdomain_hold_ms)
{
        resolver__assert_owner(w->res);
        w->ttl_min_ms = ttl_min_ms;
        w->ttl_max_ms = ttl_max_ms;
        w->hold_ms = nxdomain_hold_ms;
}

void resolver_unwatch(struct resolver_watch *w)
{
        if (!w)
                return;
        resolver__assert_owner(w->res);
        watch_unlink(w);
        watch_unref(w); /* a round in flight keeps it until its last callback */
}

bool resolver_refresh_now(struct resolver_watch *w)
{
        struct resolver *res = w->res;
        uint64_t now = evio_now_ms(), earliest;
        bool due = evio_timer_armed(&w->timer) && w->timer.deadline_ms <= now;

        resolver__assert_owner(res);
        res->m.refresh_now++;
        earliest = w->last_start_ms ? w->last_start_ms + res->o.refresh_now_min_ms : now;
        if (!w->round && !due && earliest <= now) {
                resolver__arm(res, &w->timer, now);
                return true;
        }
        /* In flight or about to start: merged; else deferred to the end of the interval. */
        res->m.refresh_now_limited++;
        if (!w->round && !due && (!evio_timer_armed(&w->timer) || w->timer.deadline_ms > earliest))
                resolver__arm(res, &w->timer, earliest);
        return false;
}

struct resolver_addrset *resolver_watch_set(const struct resolver_watch *w)
{
        resolver__assert_owner(w->res);
        return w->set;
}

void resolver_watch_info(const struct resolver_watch *w, struct resolver_watch_info *out)
{
        uint64_t now = evio_now_ms();

        resolver__assert_owner(w->res);
        *out = (struct resolver_watch_info){
            .name = w->name,
            .srv = w->srv,
            .failing = w->health == RESOLVER_HEALTH_FAILING,
            .addresses = w->set->len,
            .generation = w->set->generation,
            .last_status = w->last_status,
            .ms_since_success = w->last_success_ms ? now - w->last_success_ms : UINT64_MAX,
        };
        memcpy(out->lookups, w->lookups, sizeof(out->lookups));
}

void resolver__watches_stop(struct resolver *res)
{
        for (struct resolver_watch *w = res->watches; w; w = w->next) {
                evio_timer_cancel(res->driver, &w->timer);
                w->dead = true;
        }
}

void resolver__watches_free(struct resolver *res)
{
        struct resolver_watch *next;

        for (struct resolver_watch *w = res->watches; w; w = next) {
                next = w->next;
                watch_unlink(w);
                assert(w->refs == 1 && !w->round);
                watch_unref(w);
        }
        assert(!res->watches);
}
