/* Connections that wait in their route's queue for a server (queue_timeout; conn_queue.h keeps
 * the list and the counts): entering it or giving up with end=no_server, the retry when a
 * connection of the route ends (on any worker) or after a reload, and the walk a retry makes under
 * the configuration in force by then. The other half of conn.c, through the private conn_int.h. */
#include <stdatomic.h>

#include "conn_int.h"
#include "gen.h"
#include "lgroup.h"
#include "listener.h"
#include "log.h"
#include "route.h"
#include "upstream.h"
#include "util.h"

/* e's connection retries now rather than at its next back-off. */
static void conn_queue_retry(struct conn_env *env, struct cq_entry *e)
{
        struct conn *c = container_of(e, struct conn, qe);

        cq_retrying(e); /* the next slot that frees wakes the next client */
        evio_timer_cancel(env->drv, &c->timer);
        c->timer_fired = true;
        evio_driver_defer(env->drv, &c->run);
}

/* One more of st's kicks for other workers to claim, unless there are max already (more
 * credits than waiting clients would only wake clients for nothing later). */
static void credit(struct route_stats *st, unsigned max)
{
        unsigned k = atomic_load_explicit(&st->kicks, memory_order_relaxed);

        while (k < max) {
                if (atomic_compare_exchange_weak_explicit(
                        &st->kicks, &k, k + 1, memory_order_relaxed, memory_order_relaxed))
                        return;
        }
}

/* One of st's kicks for this worker, if any is left. */
static bool claim(struct route_stats *st)
{
        unsigned k = atomic_load_explicit(&st->kicks, memory_order_relaxed);

        while (k > 0) {
                if (atomic_compare_exchange_weak_explicit(
                        &st->kicks, &k, k - 1, memory_order_relaxed, memory_order_relaxed))
                        return true;
        }
        return false;
}

/* A connection of route st ended, so a server of it has a slot: the oldest client of this
 * worker waiting for that route retries now, or, if none waits here, one of another worker. */
void conn_queue_kick(struct conn_env *env, struct route_stats *st)
{
        unsigned queued = atomic_load_explicit(&st->queued, memory_order_relaxed);
        struct cq_entry *e;

        if (queued == 0)
                return;
        e = cq_oldest(&env->queue, st);
        if (e) {
                log_debug("route %s: a connection ended: the oldest queued client retries now",
                          st->name);
                conn_queue_retry(env, e);
                return;
        }
        if (!env->kick_others)
                return;
        credit(st, queued); /* its clients wait on other workers */
        log_debug("route %s: a connection ended: a queued client of another worker retries now",
                  st->name);
        env->kick_others(env);
}

void conn_queue_claim(struct conn_env *env)
{
        struct cq_entry *e;

        for (e = TAILQ_FIRST(&env->queue.list); e; e = TAILQ_NEXT(e, link)) {
                if (!e->retrying && claim(e->st)) {
                        log_debug("route %s: a slot freed on another worker: the oldest queued "
                                  "client here retries now",
                                  e->st->name);
                        conn_queue_retry(env, e);
                }
        }
}

void conn_queue_retry_all(struct conn_env *env)
{
        struct cq_entry *e;

        if (env->queue.n)
                log_debug("%u queued clients retry under the new configuration", env->queue.n);
        for (e = TAILQ_FIRST(&env->queue.list); e; e = TAILQ_NEXT(e, link)) {
                if (!e->retrying)
                        conn_queue_retry(env, e);
        }
}

/* The walk found no server, or the route's set has none (its names have no address yet: a
 * slow-starting backend like any other): wait in the route's queue (queue_timeout), or close
 * with end=no_server when the queue is full or the wait is over. false: the route has no
 * queue. */
bool conn_queue_wait(struct conn *c)
{
        struct route *rt = c->l->route;
        char client[ADDR_STRLEN];
        uint64_t at = 0;
        enum cq_verdict v;

        v = cq_wait(&c->env->queue, &c->qe, rt->st, rt->cfg, evio_now_ms(), &at);
        if (v == CQ_OFF)
                return false;
        if (v == CQ_WAIT) {
                c->state = CONN_QUEUED;
                c->timer_fired = false;
                if (evio_timer_arm(c->env->drv, &c->timer, at) < 0)
                        conn_close(c, END_ERROR, false, false);
                return true;
        }
        conn_client_text(c->l, addr_slot_get(&c->client), c->client.len, client, sizeof(client));
        upstream_no_server(rt, &c->pick, client); /* the set was empty: names the names */
        if (v == CQ_FULL)
                log_warning("route %s: client %s: no server free and the queue is full "
                            "(queue_size %u)",
                            rt->cfg->name, client, rt->cfg->queue_size);
        else
                log_warning("route %s: client %s: no server within queue_timeout (%gs)",
                            rt->cfg->name, client, (double)rt->cfg->queue_timeout_ms / 1000.0);
        conn_close(c, END_NO_SERVER, false, false);
        return true;
}

/* The listener of g that serves what old served: the same route (by its counters, which a
 * reload hands on by name) on the same address, a shared address's member included; NULL if
 * g dropped either. */
static struct listener *conn_listener_in(struct gen *g, const struct listener *old)
{
        for (size_t i = 0; i < g->n_listeners; i++) {
                struct listener *l = &g->listeners[i];
                size_t n = l->group ? l->group->n_members : 1;

                for (size_t j = 0; j < n; j++) {
                        struct listener *m = l->group ? &l->group->members[j] : l;

                        if (m->route->st == old->route->st && cfg_addr_equal(m->addr, old->addr))
                                return m;
                }
        }
        return NULL;
}

/* A queued client waits for servers, and a reload is how an operator adds them: its retry
 * walks the route as the configuration now in force has it (servers, states, balance), not as
 * it was when the client came. Limits and the queue place are the route's counters, which
 * the generations share, so nothing is taken or released. */
static void conn_follow_reload(struct conn *c)
{
        struct gen *now = c->env->gen, *old = c->l->gen;
        struct listener *m;

        if (!now || now == old || !(m = conn_listener_in(now, c->l)))
                return;
        upstream_end(c->l->route, &c->pick); /* the old walk's set, on the old route */
        gen_ref(now);
        c->l = m;
        gen_unref(old); /* may free the old listener: c no longer points into it */
}

/* Queued: only the retry timer (or a freed slot, conn_queue_kick) moves it on; readiness of
 * the client (registered for its PROXY header) is not read while it waits. */
void conn_run_queued(struct conn *c)
{
        if (!c->timer_fired)
                return;
        c->timer_fired = false;
        cq_retrying(&c->qe);
        conn_follow_reload(c);
        conn_walk(c);
}
