/* Listener groups (lgroup.h): built by gen.c while a generation's listeners are added, read by
 * the workers' connections afterwards (immutable then). Choosing scores every member's match
 * against the inspected bytes; groups are small (the routes of one address), so a linear scan
 * costs less than building an index, and a hash of names would not serve "*." patterns. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lgroup.h"

enum {
        SCORE_ANY = 1,
        SCORE_PROTOCOL = 10,
        SCORE_ALPN = 100,
        SCORE_WILDCARD = 1000, /* + the suffix length: the longest suffix wins */
        SCORE_EXACT = 3000,
};

static struct lgroup *lgroup_new(const struct listener *l)
{
        struct lgroup *g = calloc(1, sizeof(*g));

        if (!g)
                return NULL;
        /* Listener options are the members' (validated equal); nothing else applies yet. */
        g->cfg = *l->route->cfg;
        g->cfg.name = (char *)"-";
        g->cfg.upstreams = NULL;
        g->cfg.n_upstreams = 0;
        g->cfg.allow = g->cfg.deny = NULL;
        g->cfg.n_allow = g->cfg.n_deny = 0;
        g->cfg.max_connections = 0;
        g->cfg.match = NULL;
        snprintf(g->st.name, sizeof(g->st.name), "-");
        atomic_init(&g->st.refs, 1);
        g->route.cfg = &g->cfg;
        g->route.st = &g->st;
        return g;
}

static int add_member(struct lgroup *g, const struct listener *l, struct route *rt)
{
        struct listener *m = realloc(g->members, (g->n_members + 1) * sizeof(*m));

        if (!m)
                return -ENOMEM;
        g->members = m;
        m[g->n_members++] = (struct listener){
            .addr = l->addr, .route = rt, .gen = l->gen, .set = l->set, .group = NULL};
        return 0;
}

int lgroup_add(struct listener *l, struct route *add)
{
        struct lgroup *g = l->group;

        if (!g) {
                g = lgroup_new(l);
                if (!g || add_member(g, l, l->route) < 0) {
                        lgroup_free(g);
                        return -ENOMEM;
                }
                l->group = g;
                l->route = &g->route;
        }
        return add ? add_member(g, l, add) : 0;
}

void lgroup_free(struct lgroup *g)
{
        if (!g)
                return;
        free(g->members);
        free(g);
}

static unsigned sni_score(const struct cfg_match *m, const char *sni, struct lgroup_rule *rule)
{
        size_t n = strlen(sni), best_len = 0;
        unsigned best = 0;

        for (size_t i = 0; n && i < m->n_sni; i++) {
                const char *p = m->sni[i];
                size_t k;

                if (p[0] != '*') {
                        if (strcmp(p, sni) == 0) {
                                rule->value = p;
                                return SCORE_EXACT;
                        }
                        continue;
                }
                k = strlen(p + 1); /* ".example.org" */
                if (n > k && memcmp(sni + n - k, p + 1, k) == 0 && k > best_len) {
                        best_len = k;
                        best = SCORE_WILDCARD + (unsigned)k;
                        rule->value = p;
                }
        }
        return best;
}

static unsigned tls_score(const struct cfg_match *m, const struct inspect_result *res,
                          struct lgroup_rule *rule)
{
        unsigned score = 0;
        size_t i;

        if (m->n_sni) {
                score = sni_score(m, res->sni, rule);
                if (!score)
                        return 0;
                rule->kind = "sni";
        }
        if (m->n_alpn) {
                for (i = 0; i < m->n_alpn && !inspect_alpn_offers(res, m->alpn[i]); i++)
                        ;
                if (i == m->n_alpn)
                        return 0;
                if (!score) {
                        rule->kind = "alpn";
                        rule->value = m->alpn[i];
                }
                score += SCORE_ALPN;
        }
        if (!score) {
                rule->kind = "protocol";
                rule->value = "tls";
                score = SCORE_PROTOCOL;
        }
        return score;
}

static unsigned match_score(const struct cfg_match *m, const struct inspect_result *res,
                            struct lgroup_rule *rule)
{
        static const enum cfg_protocol wanted[] = {
            [INSPECT_SSH] = CFG_PROTO_SSH, [INSPECT_HTTP] = CFG_PROTO_HTTP};

        rule->kind = "protocol";
        if (m->protocol == CFG_PROTO_ANY) {
                rule->value = "any";
                return SCORE_ANY;
        }
        if (res->kind == INSPECT_TLS)
                return m->protocol == CFG_PROTO_TLS ? tls_score(m, res, rule) : 0;
        if ((res->kind == INSPECT_SSH || res->kind == INSPECT_HTTP) &&
            m->protocol == wanted[res->kind]) {
                rule->value = res->kind == INSPECT_SSH ? "ssh" : "http";
                return SCORE_PROTOCOL;
        }
        return 0;
}

struct listener *lgroup_choose(const struct lgroup *g, const struct inspect_result *res,
                               struct lgroup_rule *rule)
{
        struct listener *best = NULL;
        unsigned best_score = 0;
        struct lgroup_rule r;

        for (size_t i = 0; res && res->kind != INSPECT_BAD && i < g->n_members; i++) {
                const struct cfg_match *m = g->members[i].route->cfg->match;
                unsigned s = m ? match_score(m, res, &r) : 0;

                if (s > best_score) {
                        best_score = s;
                        best = &g->members[i];
                        *rule = r;
                }
        }
        if (best)
                return best;
        for (size_t i = 0; i < g->n_members; i++) {
                if (!g->members[i].route->cfg->match) {
                        *rule = (struct lgroup_rule){"default", ""};
                        return &g->members[i];
                }
        }
        *rule = (struct lgroup_rule){"-", ""};
        return NULL;
}
