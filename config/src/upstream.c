/* One route's upstreams = [ ... ]: each element is an address string ("10.0.0.7:5432",
 * "unix:/run/app.sock") or a group { address = "..."; weight = N; max_connections = N; }
 * (a libconfig list ( ... ) may mix both). The balancing and limits that use weight and
 * max_connections live in the daemon. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const upstream_keys[] = {"address", "weight", "max_connections", NULL};

static int parse_address(const struct cfg_ctx *ctx, const config_setting_t *e, const char *v,
                         struct cfg_upstream *u)
{
        char msg[200], quoted[200];

        if (cfg_upstream_parse(v, u, msg, sizeof(msg)) < 0) {
                cfg_quote(v, quoted, sizeof(quoted));
                return cfg_fail(ctx, e, "%s: %s", quoted, msg);
        }
        return 0;
}

static int parse_group(const struct cfg_ctx *ctx, const config_setting_t *e, struct cfg_upstream *u)
{
        const config_setting_t *s;
        unsigned long long v;
        const char *text;
        int r;

        r = cfg_check_keys(ctx, e, upstream_keys);
        if (r < 0)
                return r;
        s = config_setting_get_member(e, "address");
        if (!s)
                return cfg_fail_missing(ctx, e, "address");
        r = cfg_get_string(ctx, s, &text);
        if (r < 0)
                return r;
        r = parse_address(ctx, s, text, u);
        if (r < 0)
                return r;
        s = config_setting_get_member(e, "weight");
        if (s) {
                r = cfg_get_uint(ctx, s, 1, CFG_MAX_WEIGHT, &v);
                if (r < 0)
                        return r;
                u->weight = (unsigned)v;
        }
        s = config_setting_get_member(e, "max_connections");
        if (s) {
                r = cfg_get_uint(ctx, s, 0, 10000000, &v);
                if (r < 0)
                        return r;
                u->max_connections = (unsigned)v;
        }
        return 0;
}

int cfg_parse_upstreams(const struct cfg_ctx *ctx, const config_setting_t *route,
                        struct cfg_route *r)
{
        const config_setting_t *s = config_setting_get_member(route, "upstreams");
        int len, i, ret;

        if (!s)
                return cfg_fail_missing(ctx, route, "upstreams");
        if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
            config_setting_type(s) != CONFIG_TYPE_LIST)
                return cfg_fail(ctx, s,
                                "expected a list of addresses [ \"...\", ... ] or ( \"...\", { "
                                "address = \"...\"; weight = N; }, ... )");
        len = config_setting_length(s);
        if (len == 0)
                return cfg_fail(ctx, s, "the list is empty");
        if (len > CFG_MAX_UPSTREAMS)
                return cfg_fail(ctx, s, "too many entries (%d, at most %d)", len,
                                CFG_MAX_UPSTREAMS);
        r->upstreams = calloc((size_t)len, sizeof(*r->upstreams));
        if (!r->upstreams)
                return -ENOMEM;
        r->n_upstreams = (size_t)len;
        for (i = 0; i < len; i++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
                struct cfg_upstream *u = &r->upstreams[i];

                u->weight = 1;
                u->line = cfg_setting_line(e);
                if (config_setting_type(e) == CONFIG_TYPE_STRING)
                        ret = parse_address(ctx, e, config_setting_get_string(e), u);
                else if (config_setting_type(e) == CONFIG_TYPE_GROUP)
                        ret = parse_group(ctx, e, u);
                else
                        ret = cfg_fail(ctx, e,
                                       "expected an address \"...\" or a group { address = "
                                       "\"...\"; weight = N; max_connections = N; }");
                if (ret < 0)
                        return ret;
        }
        return 0;
}
