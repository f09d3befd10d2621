/* The top level of the file: global settings, the optional metrics endpoint and the routes
 * list. Every key has a default except routes; unknown keys are errors so that a typo never
 * passes silently. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "internal.h"

static const char *const root_keys[] = {
    "workers", "max_connections", "drain_timeout", "log_level",   "access_log",
    "user",    "forwarding",      "buffer_size",   "pipe_memory", "metrics",
    "routes",  "admin",           "resolver",      "handover",    NULL};
static const char *const log_words[] = {"debug", "info", "notice", "warning", "error", NULL};
static const int log_levels[] = {LOG_DEBUG, LOG_INFO, LOG_NOTICE, LOG_WARNING, LOG_ERR};
static const char *const forwarding_words[] = {"splice", "copy", NULL};

static void set_defaults(struct cfg *c)
{
        c->workers = 0;
        c->max_connections = 10000;
        c->drain_timeout_ms = 30000;
        c->log_level = LOG_INFO;
        c->access_log = true;
        c->forwarding = CFG_FORWARD_SPLICE;
        c->buffer_size = 65536;
}

static int parse_user(const struct cfg_ctx *ctx, const config_setting_t *s, struct cfg *c)
{
        const char *v;
        size_t i, n;
        int r;

        r = cfg_get_string(ctx, s, &v);
        if (r < 0)
                return r;
        n = strlen(v);
        if (n == 0 || n > CFG_USER_NAME_MAX || v[0] == '-')
                return cfg_fail(ctx, s, "not a valid user name");
        for (i = 0; i < n; i++) {
                char ch = v[i];

                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                      (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-'))
                        return cfg_fail(ctx, s, "not a valid user name");
        }
        c->user = strdup(v);
        return c->user ? 0 : -ENOMEM;
}

static int parse_metrics(const struct cfg_ctx *ctx, const config_setting_t *s, struct cfg *c)
{
        static const char *const keys[] = {"listen", NULL};
        const config_setting_t *l;
        char msg[200], quoted[200];
        const char *v;
        int r;

        r = cfg_get_group(ctx, s);
        if (r == 0)
                r = cfg_check_keys(ctx, s, keys);
        if (r < 0)
                return r;
        l = config_setting_get_member(s, "listen");
        if (!l)
                return cfg_fail_missing(ctx, s, "listen");
        r = cfg_get_string(ctx, l, &v);
        if (r < 0)
                return r;
        cfg_quote(v, quoted, sizeof(quoted));
        if (strncmp(v, "systemd:", 8) == 0)
                return cfg_fail(ctx, l, "%s: the metrics endpoint cannot use a systemd: socket",
                                quoted);
        if (cfg_addr_parse(v, true, &c->metrics_listen, msg, sizeof(msg)) < 0)
                return cfg_fail(ctx, l, "%s: %s", quoted, msg);
        c->has_metrics = true;
        return 0;
}

static int parse_routes(const struct cfg_ctx *ctx, const config_setting_t *root, struct cfg *c)
{
        const config_setting_t *s = config_setting_get_member(root, "routes");
        int i, n, r;

        if (!s)
                return cfg_fail_key(ctx, root, "routes", "no routes: at least one is required");
        n = config_setting_length(s);
        if ((config_setting_type(s) == CONFIG_TYPE_LIST ||
             config_setting_type(s) == CONFIG_TYPE_ARRAY) &&
            n == 0)
                return cfg_fail(ctx, s, "no routes: the list is empty");
        if (config_setting_type(s) != CONFIG_TYPE_LIST)
                return cfg_fail(ctx, s, "expected a list of routes ( { ... }, ... )");
        if (n > CFG_MAX_ROUTES)
                return cfg_fail(ctx, s, "too many routes (%d, at most %d)", n, CFG_MAX_ROUTES);
        c->routes = calloc((size_t)n, sizeof(*c->routes));
        if (!c->routes)
                return -ENOMEM;
        for (i = 0; i < n; i++) {
                r = cfg_parse_route(ctx, config_setting_get_elem(s, (unsigned)i), &c->routes[i]);
                c->n_routes = (size_t)i + 1; /* so that cfg_free() sees partial routes */
                if (r < 0)
                        return r;
        }
        return 0;
}

int cfg_parse_root(const struct cfg_ctx *ctx, const config_setting_t *root, struct cfg *c)
{
        const config_setting_t *s;
        unsigned long long u;
        int r, w;

        set_defaults(c);
        r = cfg_check_keys_more(ctx, root, root_keys, cfg_policy_root_keys);
        if (r < 0)
                return r;
        if ((s = config_setting_get_member(root, "workers"))) {
                if ((r = cfg_get_uint(ctx, s, 0, 1024, &u)) < 0)
                        return r;
                c->workers = (unsigned)u;
        }
        if ((s = config_setting_get_member(root, "max_connections"))) {
                if ((r = cfg_get_uint(ctx, s, 1, 1000000, &u)) < 0)
                        return r;
                c->max_connections = (unsigned)u;
        }
        if ((s = config_setting_get_member(root, "drain_timeout")) &&
            (r = cfg_get_duration(ctx, s, 0, 86400, &c->drain_timeout_ms)) < 0)
                return r;
        if ((s = config_setting_get_member(root, "log_level"))) {
                if ((r = cfg_get_word(ctx, s, log_words, &w)) < 0)
                        return r;
                c->log_level = log_levels[w];
        }
        if ((s = config_setting_get_member(root, "access_log")) &&
            (r = cfg_get_bool(ctx, s, &c->access_log)) < 0)
                return r;
        if ((s = config_setting_get_member(root, "user")) && (r = parse_user(ctx, s, c)) < 0)
                return r;
        if ((s = config_setting_get_member(root, "forwarding"))) {
                if ((r = cfg_get_word(ctx, s, forwarding_words, &w)) < 0)
                        return r;
                c->forwarding = (enum cfg_forwarding)w;
        }
        if ((s = config_setting_get_member(root, "buffer_size"))) {
                if ((r = cfg_get_uint(ctx, s, 4096, 16777216, &u)) < 0)
                        return r;
                c->buffer_size = (size_t)u;
        }
        c->pipe_memory = (size_t)c->max_connections * CFG_PIPE_MEMORY_PER_CONN;
        if ((s = config_setting_get_member(root, "pipe_memory"))) {
                if ((r = cfg_get_size(ctx, s, CFG_PIPE_MEMORY_MIN, CFG_PIPE_MEMORY_MAX, &u)) < 0)
                        return r;
                c->pipe_memory = (size_t)u;
        }
        if ((s = config_setting_get_member(root, "metrics")) && (r = parse_metrics(ctx, s, c)) < 0)
                return r;
        if ((s = config_setting_get_member(root, "admin")) && (r = cfg_parse_admin(ctx, s, c)) < 0)
                return r;
        if ((s = config_setting_get_member(root, "handover")) &&
            (r = cfg_parse_handover(ctx, s, c)) < 0)
                return r;
        if ((r = cfg_parse_resolver(ctx, root, c)) < 0 ||
            (r = cfg_parse_policy(ctx, root, &c->policy, false)) < 0 ||
            (r = cfg_parse_client_table_size(ctx, root, c)) < 0 ||
            (r = parse_routes(ctx, root, c)) < 0)
                return r;
        cfg_policy_inherit(c);
        return cfg_resolver_finish(ctx, root, c);
}
