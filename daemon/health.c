/* Passive health (see health.h for the state machine). Workers race on the same server, so
 * every transition is a compare-and-swap whose winner alone logs and sets the back-off; the
 * probe after a back-off is a lease on retry_ms, so only one connection probes a down server
 * per back-off period while the others keep to the servers that are up. */
#include "health.h"
#include "route.h"
#include "log.h"
#include "server_set.h"
#include "upstream.h"

bool health_is_up(const struct server_entry *e)
{
        return !atomic_load_explicit(&e->srv->down, memory_order_relaxed);
}

bool health_available(const struct server_entry *e, uint64_t now_ms)
{
        const struct upstream_server *s = e->srv;

        if (atomic_load_explicit(&s->admin, memory_order_relaxed) != 0)
                return false; /* drained or in maintenance (admin_proto.h) */
        if (!atomic_load_explicit(&s->down, memory_order_acquire))
                return true;
        return now_ms >= atomic_load_explicit(&s->retry_ms, memory_order_relaxed);
}

enum health_claim health_claim(const struct server_entry *e, uint64_t now_ms)
{
        struct upstream_server *s = e->srv;
        uint64_t retry, lease;

        if (!atomic_load_explicit(&s->down, memory_order_acquire))
                return HEALTH_UP;
        retry = atomic_load_explicit(&s->retry_ms, memory_order_relaxed);
        if (now_ms < retry)
                return HEALTH_SKIP;
        /* The lease: if this probe never reports, the next one may go a back-off later. */
        lease = now_ms + atomic_load_explicit(&s->backoff_ms, memory_order_relaxed);
        if (!atomic_compare_exchange_strong(&s->retry_ms, &retry, lease))
                return HEALTH_SKIP;
        return HEALTH_PROBE;
}

static void health_up(struct route *r, const struct server_entry *e, const char *how)
{
        struct upstream_server *s = e->srv;

        atomic_store_explicit(&s->fails, 0, memory_order_relaxed);
        if (!atomic_load_explicit(&s->down, memory_order_relaxed))
                return;
        if (atomic_exchange(&s->down, false))
                log_notice("route %s: upstream %s is up again (%s)", r->cfg->name, e->addr.text,
                           how);
}

/* A failure while up: after `fails` in a row, the server goes down for the first back-off. */
static void health_count_failure(struct route *r, const struct server_entry *e, uint64_t now_ms,
                                 const char *how)
{
        const struct cfg_health *h = &r->cfg->health;
        struct upstream_server *s = e->srv;
        uint64_t backoff = h->backoff_ms;
        unsigned fails;
        bool was_down = false;

        fails = atomic_fetch_add_explicit(&s->fails, 1, memory_order_relaxed) + 1;
        if (h->fails == 0 || fails < h->fails || atomic_load(&s->down))
                return;
        atomic_store(&s->backoff_ms, backoff);
        atomic_store(&s->retry_ms, now_ms + backoff);
        if (atomic_compare_exchange_strong(&s->down, &was_down, true))
                log_warning("route %s: upstream %s is down after %u failed connects (%s); "
                            "skipping it for %gs",
                            r->cfg->name, e->addr.text, fails, how, (double)backoff / 1000.0);
}

void health_report(struct route *r, const struct server_entry *e, int result, bool probe,
                   uint64_t now_ms)
{
        const struct cfg_health *h = &r->cfg->health;
        struct upstream_server *s = e->srv;
        uint64_t backoff, max = h->backoff_max_ms;

        if (result == 0) {
                health_up(r, e, probe ? "probe connected" : "connected");
                return;
        }
        if (!probe) {
                health_count_failure(r, e, now_ms, "client traffic");
                return;
        }
        atomic_fetch_add_explicit(&s->fails, 1, memory_order_relaxed);
        backoff = atomic_load(&s->backoff_ms) * 2;
        if (backoff > max)
                backoff = max;
        if (backoff == 0)
                backoff = h->backoff_ms;
        atomic_store(&s->backoff_ms, backoff);
        atomic_store(&s->retry_ms, now_ms + backoff);
        log_debug("route %s: upstream %s still down; next probe in %gs", r->cfg->name, e->addr.text,
                  (double)backoff / 1000.0);
}

void health_report_check(struct route *r, const struct server_entry *e, int result, uint64_t now_ms)
{
        if (result == 0)
                health_up(r, e, "health check connected");
        else
                health_count_failure(r, e, now_ms, "health check");
}
