/* Per-client limits applied to a connection: the daemon-wide scope (top-level keys) and the
 * route's scope (the route's own keys), both of which must allow it. Called at accept, or after
 * the PROXY header when the route accepts one (the true client is known only then). */
#include <stdio.h>

#include <evproxy/timer.h>

#include "client_limit.h"
#include "conn.h"
#include "gen.h"
#include "listener.h"
#include "log.h"

#define FULL_LOG_INTERVAL_MS 60000

static bool rule_of(const struct cfg_policy *p, struct client_rule *rule)
{
        *rule = (struct client_rule){p->max_per_client, p->client_rate, p->client_burst};
        return rule->max_conns || rule->rate;
}

/* Fail open, said once a minute at most: the table is too small for the clients seen. */
static void table_full(struct client_table *t, const struct listener *l, uint64_t now)
{
        static atomic_uint_least64_t last_log;
        uint64_t last = atomic_load_explicit(&last_log, memory_order_relaxed);
        struct client_table_stats st;

        if (last && now - last < FULL_LOG_INTERVAL_MS)
                return;
        if (!atomic_compare_exchange_strong(&last_log, &last, now))
                return;
        client_table_stats(t, &st);
        log_warning("route %s: the per-client table is full (%zu entries): new clients pass "
                    "unlimited (client_table_size; evproxy_client_table_full_total = %llu)",
                    l->route->cfg->name, st.capacity, (unsigned long long)st.full);
}

int client_limit_admit(struct client_table *t, const struct listener *l, const struct sockaddr *sa,
                       struct client_ticket *tk)
{
        const struct cfg_policy *scopes[2] = {&l->gen->cfg->policy, &l->route->cfg->policy};
        struct route_stats *st = l->route->st;
        uint64_t now = evio_now_ms();
        struct client_rule rule;

        tk->held = 0;
        for (unsigned i = 0; t && i < 2; i++) {
                enum client_verdict v;

                if (!rule_of(scopes[i], &rule) ||
                    !client_key_make(sa, scopes[i]->client_prefix6, i ? (uintptr_t)st : 0,
                                     &tk->keys[i]))
                        continue;
                v = client_table_take(t, &tk->keys[i], &rule, now);
                if (v == CLIENT_OK) {
                        tk->held |= (uint8_t)(1u << i);
                        continue;
                }
                if (v == CLIENT_TABLE_FULL) {
                        table_full(t, l, now);
                        continue;
                }
                client_limit_release(t, tk);
                if (v == CLIENT_RATE_LIMITED) {
                        atomic_fetch_add_explicit(&st->rate_limited, 1, memory_order_relaxed);
                        return END_RATE_LIMITED;
                }
                atomic_fetch_add_explicit(&st->refused_client_limit, 1, memory_order_relaxed);
                return END_CLIENT_LIMIT;
        }
        return 0;
}

void client_limit_release(struct client_table *t, struct client_ticket *tk)
{
        uint64_t now;

        if (!t || !tk->held)
                return;
        now = evio_now_ms();
        for (unsigned i = 0; i < 2; i++)
                if (tk->held & (1u << i))
                        client_table_release(t, &tk->keys[i], now);
        tk->held = 0;
}
