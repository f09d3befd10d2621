/* Traffic policy keys (issue 16), the same at the top level and in a route: per-client limits
 * (max_connections_per_client, client_rate, client_prefix6), TCP keepalive and user timeout per
 * side, and bandwidth (rate; route_rate in routes only; client_table_size at the top only).
 * A route inherits every top-level key it does not set, except the client limits, which apply
 * in two scopes (daemon-wide and per route: both must allow a connection). */
#include <errno.h>
#include <string.h>

#include "internal.h"

enum {
        SET_PREFIX6 = 1u << 0,
        SET_CLIENT_KA = 1u << 1,
        SET_UPSTREAM_KA = 1u << 2,
        SET_CLIENT_UT = 1u << 3,
        SET_UPSTREAM_UT = 1u << 4,
        SET_RATE = 1u << 5,
};

#define KEEPALIVE_MAX_S  32767 /* TCP_KEEPIDLE / TCP_KEEPINTVL take at most this */
#define KEEPALIVE_MAX_N  127   /* TCP_KEEPCNT */
#define CLIENT_RATE_MAX  1000000
#define CLIENT_TABLE_MIN 64
#define CLIENT_TABLE_MAX (1u << 24)
#define RATE_MAX         (1ull << 40)

#define POLICY_KEYS                                                                                \
        "max_connections_per_client", "client_rate", "client_prefix6", "client_keepalive",         \
            "upstream_keepalive", "client_user_timeout", "upstream_user_timeout", "rate"
const char *const cfg_policy_root_keys[] = {POLICY_KEYS, "client_table_size", NULL};
const char *const cfg_policy_route_keys[] = {POLICY_KEYS, "route_rate", NULL};

static void cfg_policy_defaults(struct cfg_policy *p)
{
        memset(p, 0, sizeof(*p));
        p->client_prefix6 = 64;
}

static int parse_keepalive(const struct cfg_ctx *ctx, const config_setting_t *s,
                           struct cfg_keepalive *ka)
{
        static const char *const keys[] = {"idle", "interval", "count", NULL};
        const config_setting_t *e;
        unsigned long long u;
        int r;

        if ((r = cfg_get_group(ctx, s)) < 0 || (r = cfg_check_keys(ctx, s, keys)) < 0)
                return r;
        *ka = (struct cfg_keepalive){
            .enabled = true, .idle_ms = 60000, .interval_ms = 10000, .count = 5};
        if ((e = config_setting_get_member(s, "idle")) &&
            (r = cfg_get_duration(ctx, e, 1, KEEPALIVE_MAX_S, &ka->idle_ms)) < 0)
                return r;
        if ((e = config_setting_get_member(s, "interval")) &&
            (r = cfg_get_duration(ctx, e, 1, KEEPALIVE_MAX_S, &ka->interval_ms)) < 0)
                return r;
        if ((e = config_setting_get_member(s, "count"))) {
                if ((r = cfg_get_uint(ctx, e, 1, KEEPALIVE_MAX_N, &u)) < 0)
                        return r;
                ka->count = (unsigned)u;
        }
        return 0;
}

static int parse_client_rate(const struct cfg_ctx *ctx, const config_setting_t *s,
                             struct cfg_policy *p)
{
        static const char *const keys[] = {"per_second", "burst", NULL};
        const config_setting_t *e;
        unsigned long long u;
        int r;

        if ((r = cfg_get_group(ctx, s)) < 0 || (r = cfg_check_keys(ctx, s, keys)) < 0)
                return r;
        e = config_setting_get_member(s, "per_second");
        if (!e)
                return cfg_fail_missing(ctx, s, "per_second");
        if ((r = cfg_get_uint(ctx, e, 1, CLIENT_RATE_MAX, &u)) < 0)
                return r;
        p->client_rate = p->client_burst = (unsigned)u;
        if ((e = config_setting_get_member(s, "burst"))) {
                if ((r = cfg_get_uint(ctx, e, 1, CLIENT_RATE_MAX, &u)) < 0)
                        return r;
                p->client_burst = (unsigned)u;
        }
        return 0;
}

static int parse_rate(const struct cfg_ctx *ctx, const config_setting_t *s, struct cfg_rate *rate)
{
        static const char *const keys[] = {"upload", "download", NULL};
        const config_setting_t *e;
        unsigned long long u;
        int r;

        if ((r = cfg_get_group(ctx, s)) < 0 || (r = cfg_check_keys(ctx, s, keys)) < 0)
                return r;
        *rate = (struct cfg_rate){0};
        if ((e = config_setting_get_member(s, "upload"))) {
                if ((r = cfg_get_size(ctx, e, 0, RATE_MAX, &u)) < 0)
                        return r;
                rate->upload = u;
        }
        if ((e = config_setting_get_member(s, "download"))) {
                if ((r = cfg_get_size(ctx, e, 0, RATE_MAX, &u)) < 0)
                        return r;
                rate->download = u;
        }
        return 0;
}

static int parse_client_keys(const struct cfg_ctx *ctx, const config_setting_t *g,
                             struct cfg_policy *p)
{
        const config_setting_t *s;
        unsigned long long u;
        int r;

        if ((s = config_setting_get_member(g, "max_connections_per_client"))) {
                if ((r = cfg_get_uint(ctx, s, 0, 1000000, &u)) < 0)
                        return r;
                p->max_per_client = (unsigned)u;
        }
        if ((s = config_setting_get_member(g, "client_rate")) &&
            (r = parse_client_rate(ctx, s, p)) < 0)
                return r;
        if ((s = config_setting_get_member(g, "client_prefix6"))) {
                if ((r = cfg_get_uint(ctx, s, 1, 128, &u)) < 0)
                        return r;
                p->client_prefix6 = (unsigned)u;
                p->set |= SET_PREFIX6;
        }
        return 0;
}

static int parse_socket_keys(const struct cfg_ctx *ctx, const config_setting_t *g,
                             struct cfg_policy *p)
{
        const config_setting_t *s;
        int r;

        if ((s = config_setting_get_member(g, "client_keepalive"))) {
                if ((r = parse_keepalive(ctx, s, &p->client_keepalive)) < 0)
                        return r;
                p->set |= SET_CLIENT_KA;
        }
        if ((s = config_setting_get_member(g, "upstream_keepalive"))) {
                if ((r = parse_keepalive(ctx, s, &p->upstream_keepalive)) < 0)
                        return r;
                p->set |= SET_UPSTREAM_KA;
        }
        if ((s = config_setting_get_member(g, "client_user_timeout"))) {
                if ((r = cfg_get_duration(ctx, s, 0, 86400, &p->client_user_timeout_ms)) < 0)
                        return r;
                p->set |= SET_CLIENT_UT;
        }
        if ((s = config_setting_get_member(g, "upstream_user_timeout"))) {
                if ((r = cfg_get_duration(ctx, s, 0, 86400, &p->upstream_user_timeout_ms)) < 0)
                        return r;
                p->set |= SET_UPSTREAM_UT;
        }
        return 0;
}

int cfg_parse_policy(const struct cfg_ctx *ctx, const config_setting_t *g, struct cfg_policy *p,
                     bool in_route)
{
        const config_setting_t *s;
        int r;

        cfg_policy_defaults(p);
        if ((r = parse_client_keys(ctx, g, p)) < 0 || (r = parse_socket_keys(ctx, g, p)) < 0)
                return r;
        if ((s = config_setting_get_member(g, "rate"))) {
                if ((r = parse_rate(ctx, s, &p->rate)) < 0)
                        return r;
                p->set |= SET_RATE;
        }
        if (in_route && (s = config_setting_get_member(g, "route_rate")) &&
            (r = parse_rate(ctx, s, &p->route_rate)) < 0)
                return r;
        return 0;
}

int cfg_parse_client_table_size(const struct cfg_ctx *ctx, const config_setting_t *root,
                                struct cfg *c)
{
        const config_setting_t *s = config_setting_get_member(root, "client_table_size");
        unsigned long long u;
        int r;

        c->client_table_size = 65536;
        if (!s)
                return 0;
        if ((r = cfg_get_uint(ctx, s, CLIENT_TABLE_MIN, CLIENT_TABLE_MAX, &u)) < 0)
                return r;
        c->client_table_size = (size_t)u;
        return 0;
}

void cfg_policy_inherit(struct cfg *c)
{
        const struct cfg_policy *top = &c->policy;

        for (size_t i = 0; i < c->n_routes; i++) {
                struct cfg_policy *p = &c->routes[i].policy;

                if (!(p->set & SET_PREFIX6))
                        p->client_prefix6 = top->client_prefix6;
                if (!(p->set & SET_CLIENT_KA))
                        p->client_keepalive = top->client_keepalive;
                if (!(p->set & SET_UPSTREAM_KA))
                        p->upstream_keepalive = top->upstream_keepalive;
                if (!(p->set & SET_CLIENT_UT))
                        p->client_user_timeout_ms = top->client_user_timeout_ms;
                if (!(p->set & SET_UPSTREAM_UT))
                        p->upstream_user_timeout_ms = top->upstream_user_timeout_ms;
                if (!(p->set & SET_RATE))
                        p->rate = top->rate;
        }
}
