/* One element of routes = ( ... ): its name, listeners, upstreams, balancing, timeouts,
 * access lists, PROXY protocol, unix socket mode and health settings. Cross-route rules
 * (unique names, unique listeners) are checked later, in validate.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const route_keys[] = {"name",
                                         "listen",
                                         "upstreams",
                                         "balance",
                                         "connect_timeout",
                                         "idle_timeout",
                                         "max_connections",
                                         "allow",
                                         "deny",
                                         "proxy_protocol",
                                         "accept_proxy_protocol",
                                         "proxy_protocol_timeout",
                                         "unix_mode",
                                         "health",
                                         "health_check",
                                         "resolver",
                                         "match",
                                         "inspect_timeout",
                                         "inspect_max",
                                         "on_bad_hello",
                                         "queue_timeout",
                                         "queue_size",
                                         NULL};
static const char *const balance_words[] = {"round-robin", "least-conn", "random", "hash", NULL};
static const char *const proxy_words[] = {"off", "v1", "v2", NULL};

static void set_defaults(struct cfg_route *r)
{
        r->balance = CFG_BALANCE_ROUND_ROBIN;
        r->connect_timeout_ms = 5000;
        r->idle_timeout_ms = 300000;
        r->max_connections = 0;
        r->proxy_protocol = CFG_PROXY_OFF;
        r->accept_proxy_protocol = false;
        r->proxy_protocol_timeout_ms = 5000;
        r->unix_mode = 0660;
        r->health.fails = 3;
        r->health.backoff_ms = 10000;
        r->health.backoff_max_ms = 300000;
        r->health.check_interval_ms = 0;
}

static int parse_name(const struct cfg_ctx *ctx, const config_setting_t *route, struct cfg_route *r)
{
        const config_setting_t *s = config_setting_get_member(route, "name");
        char quoted[200];
        const char *v;
        size_t i, n;
        int ret;

        if (!s)
                return cfg_fail_missing(ctx, route, "name");
        ret = cfg_get_string(ctx, s, &v);
        if (ret < 0)
                return ret;
        n = strlen(v);
        cfg_quote(v, quoted, sizeof(quoted));
        if (n == 0)
                return cfg_fail(ctx, s, "the route name is empty");
        if (n > CFG_ROUTE_NAME_MAX)
                return cfg_fail(ctx, s, "%s: route name too long (at most %d characters)", quoted,
                                CFG_ROUTE_NAME_MAX);
        for (i = 0; i < n; i++) {
                char ch = v[i];

                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-'))
                        return cfg_fail(ctx, s, "%s: a route name may only use A-Z a-z 0-9 _ . -",
                                        quoted);
        }
        r->name = strdup(v);
        return r->name ? 0 : -ENOMEM;
}

static int parse_addrs(const struct cfg_ctx *ctx, const config_setting_t *route, const char *key,
                       size_t max, struct cfg_addr **out, size_t *n_out)
{
        const config_setting_t *s = config_setting_get_member(route, key);
        bool for_listen = strcmp(key, "listen") == 0;
        char msg[200], quoted[200];
        size_t i, n;
        int r;

        if (!s)
                return cfg_fail_missing(ctx, route, key);
        r = cfg_get_string_list(ctx, s, false, max, &n);
        if (r < 0)
                return r;
        *out = calloc(n, sizeof(**out));
        if (!*out)
                return -ENOMEM;
        *n_out = n;
        for (i = 0; i < n; i++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
                const char *v = config_setting_get_string(e);

                if (cfg_addr_parse(v, for_listen, &(*out)[i], msg, sizeof(msg)) < 0) {
                        cfg_quote(v, quoted, sizeof(quoted));
                        return cfg_fail(ctx, e, "%s: %s", quoted, msg);
                }
        }
        return 0;
}

static int parse_cidrs(const struct cfg_ctx *ctx, const config_setting_t *s, struct cfg_cidr **out,
                       size_t *n_out)
{
        char msg[200], quoted[200];
        size_t i, n;
        int r;

        r = cfg_get_string_list(ctx, s, true, CFG_MAX_CIDRS, &n);
        if (r < 0 || n == 0)
                return r;
        *out = calloc(n, sizeof(**out));
        if (!*out)
                return -ENOMEM;
        *n_out = n;
        for (i = 0; i < n; i++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
                const char *v = config_setting_get_string(e);

                if (cfg_cidr_parse(v, &(*out)[i], msg, sizeof(msg)) < 0) {
                        cfg_quote(v, quoted, sizeof(quoted));
                        return cfg_fail(ctx, e, "%s: %s", quoted, msg);
                }
        }
        return 0;
}

int cfg_get_mode(const struct cfg_ctx *ctx, const config_setting_t *s, mode_t *out)
{
        const char *v =
            config_setting_type(s) == CONFIG_TYPE_STRING ? config_setting_get_string(s) : NULL;
        unsigned mode = 0;
        size_t i, n = v ? strlen(v) : 0;

        if (n == 0 || n > 4)
                return cfg_fail(ctx, s, "expected an octal mode as a string, e.g. \"0660\"");
        for (i = 0; i < n; i++) {
                if (v[i] < '0' || v[i] > '7')
                        return cfg_fail(ctx, s,
                                        "expected an octal mode as a string, e.g. \"0660\"");
                mode = mode * 8 + (unsigned)(v[i] - '0');
        }
        if (mode > 0777)
                return cfg_fail(ctx, s, "only permission bits (at most \"0777\") may be set");
        *out = (mode_t)mode;
        return 0;
}

static int parse_health(const struct cfg_ctx *ctx, const config_setting_t *s, struct cfg_health *h)
{
        static const char *const keys[] = {"fails", "backoff", "backoff_max", NULL};
        const config_setting_t *e, *max;
        unsigned long long u;
        int r;

        if ((r = cfg_get_group(ctx, s)) < 0 || (r = cfg_check_keys(ctx, s, keys)) < 0)
                return r;
        if ((e = config_setting_get_member(s, "fails"))) {
                if ((r = cfg_get_uint(ctx, e, 0, 1000, &u)) < 0)
                        return r;
                h->fails = (unsigned)u;
        }
        if ((e = config_setting_get_member(s, "backoff")) &&
            (r = cfg_get_duration(ctx, e, 0.001, 86400, &h->backoff_ms)) < 0)
                return r;
        max = config_setting_get_member(s, "backoff_max");
        if (!max) {
                h->backoff_max_ms = h->backoff_ms > 300000 ? h->backoff_ms : 300000;
                return 0;
        }
        if ((r = cfg_get_duration(ctx, max, 0.001, 86400, &h->backoff_max_ms)) < 0)
                return r;
        if (h->backoff_max_ms < h->backoff_ms)
                return cfg_fail(ctx, max, "%g seconds is less than backoff (%g)",
                                (double)h->backoff_max_ms / 1000.0, (double)h->backoff_ms / 1000.0);
        return 0;
}

static int parse_health_check(const struct cfg_ctx *ctx, const config_setting_t *s,
                              struct cfg_health *h)
{
        static const char *const keys[] = {"interval", NULL};
        const config_setting_t *e;
        int r;

        if ((r = cfg_get_group(ctx, s)) < 0 || (r = cfg_check_keys(ctx, s, keys)) < 0)
                return r;
        h->check_interval_ms = 5000;
        if ((e = config_setting_get_member(s, "interval")))
                return cfg_get_duration(ctx, e, 0.001, 3600, &h->check_interval_ms);
        return 0;
}

static int parse_options(const struct cfg_ctx *ctx, const config_setting_t *route,
                         struct cfg_route *r)
{
        const config_setting_t *s;
        unsigned long long u;
        int ret, w;

        if ((s = config_setting_get_member(route, "balance"))) {
                if ((ret = cfg_get_word(ctx, s, balance_words, &w)) < 0)
                        return ret;
                r->balance = (enum cfg_balance)w;
        }
        if ((s = config_setting_get_member(route, "connect_timeout")) &&
            (ret = cfg_get_duration(ctx, s, 0.001, 3600, &r->connect_timeout_ms)) < 0)
                return ret;
        if ((s = config_setting_get_member(route, "idle_timeout")) &&
            (ret = cfg_get_duration(ctx, s, 0, 604800, &r->idle_timeout_ms)) < 0)
                return ret;
        if ((s = config_setting_get_member(route, "max_connections"))) {
                if ((ret = cfg_get_uint(ctx, s, 0, 1000000, &u)) < 0)
                        return ret;
                r->max_connections = (unsigned)u;
        }
        if ((s = config_setting_get_member(route, "proxy_protocol"))) {
                if ((ret = cfg_get_word(ctx, s, proxy_words, &w)) < 0)
                        return ret;
                r->proxy_protocol = (enum cfg_proxy_protocol)w;
        }
        if ((s = config_setting_get_member(route, "accept_proxy_protocol")) &&
            (ret = cfg_get_bool(ctx, s, &r->accept_proxy_protocol)) < 0)
                return ret;
        if ((s = config_setting_get_member(route, "proxy_protocol_timeout")) &&
            (ret = cfg_get_duration(ctx, s, 0.001, 3600, &r->proxy_protocol_timeout_ms)) < 0)
                return ret;
        if ((s = config_setting_get_member(route, "unix_mode")) &&
            (ret = cfg_get_mode(ctx, s, &r->unix_mode)) < 0)
                return ret;
        if ((s = config_setting_get_member(route, "health")) &&
            (ret = parse_health(ctx, s, &r->health)) < 0)
                return ret;
        if ((s = config_setting_get_member(route, "health_check")) &&
            (ret = parse_health_check(ctx, s, &r->health)) < 0)
                return ret;
        if ((ret = cfg_parse_queue(ctx, route, r)) < 0)
                return ret;
        return cfg_parse_policy(ctx, route, &r->policy, true);
}

int cfg_parse_route(const struct cfg_ctx *ctx, const config_setting_t *s, struct cfg_route *r)
{
        const config_setting_t *e;
        int ret;

        set_defaults(r);
        r->line = cfg_setting_line(s);
        if (config_setting_type(s) != CONFIG_TYPE_GROUP)
                return cfg_fail(ctx, s, "expected a route { name = ...; listen = ...; ... }");
        if ((ret = cfg_check_keys_more(ctx, s, route_keys, cfg_policy_route_keys)) < 0 ||
            (ret = parse_name(ctx, s, r)) < 0)
                return ret;
        ret = parse_addrs(ctx, s, "listen", CFG_MAX_LISTEN, &r->listen, &r->n_listen);
        if (ret < 0)
                return ret;
        ret = cfg_parse_upstreams(ctx, s, r);
        if (ret == 0)
                ret = cfg_parse_route_resolver(ctx, s, r);
        if (ret < 0)
                return ret;
        if ((e = config_setting_get_member(s, "allow")) &&
            (ret = parse_cidrs(ctx, e, &r->allow, &r->n_allow)) < 0)
                return ret;
        if ((e = config_setting_get_member(s, "deny")) &&
            (ret = parse_cidrs(ctx, e, &r->deny, &r->n_deny)) < 0)
                return ret;
        if ((ret = cfg_parse_match(ctx, s, r)) < 0)
                return ret;
        return parse_options(ctx, s, r);
}

void cfg_route_free(struct cfg_route *r)
{
        free(r->name);
        free(r->listen);
        free(r->upstreams);
        free(r->allow);
        free(r->deny);
        cfg_match_free(r->match);
}
