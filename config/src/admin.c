/* admin = { listen = "unix:/run/evproxy/admin.sock"; mode = "0660"; group = "adm";
 *           state_file = "/var/lib/evproxy/state"; }: the admin socket evproxyctl talks to.
 * Only a unix socket path is accepted: access is the socket file's mode and group, checked again
 * on the peer's credentials, which a TCP or abstract socket could not give. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "internal.h"

#define STATE_FILE_MAX 4000 /* bytes in a state_file path (PATH_MAX less room for ".tmp") */

static int parse_listen(const struct cfg_ctx *ctx, const config_setting_t *l, struct cfg *c)
{
        char msg[200], quoted[200];
        const char *v;
        int r;

        r = cfg_get_string(ctx, l, &v);
        if (r < 0)
                return r;
        cfg_quote(v, quoted, sizeof(quoted));
        if (strncmp(v, "unix:", 5) != 0 || v[5] != '/')
                return cfg_fail(ctx, l,
                                "%s: the admin socket must be a unix socket path "
                                "(\"unix:/run/evproxy/admin.sock\")",
                                quoted);
        if (cfg_addr_parse(v, true, &c->admin.listen, msg, sizeof(msg)) < 0)
                return cfg_fail(ctx, l, "%s: %s", quoted, msg);
        return 0;
}

static int parse_group(const struct cfg_ctx *ctx, const config_setting_t *s, struct cfg *c)
{
        const char *v;
        size_t n;
        int r;

        r = cfg_get_string(ctx, s, &v);
        if (r < 0)
                return r;
        n = strlen(v);
        if (n == 0 || n > CFG_USER_NAME_MAX || v[0] == '-' ||
            strspn(v, "abcdefghijklmnopqrstuvwxyz"
                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789_.-") != n)
                return cfg_fail(ctx, s, "not a valid group name");
        c->admin.group = strdup(v);
        return c->admin.group ? 0 : -ENOMEM;
}

static int parse_state_file(const struct cfg_ctx *ctx, const config_setting_t *s, struct cfg *c)
{
        const char *v;
        int r;

        r = cfg_get_string(ctx, s, &v);
        if (r < 0)
                return r;
        if (v[0] != '/' || strlen(v) > STATE_FILE_MAX || v[strlen(v) - 1] == '/')
                return cfg_fail(ctx, s, "expected an absolute file path");
        free(c->admin.state_file);
        c->admin.state_file = strdup(v);
        return c->admin.state_file ? 0 : -ENOMEM;
}

int cfg_parse_admin(const struct cfg_ctx *ctx, const config_setting_t *s, struct cfg *c)
{
        static const char *const keys[] = {"listen", "mode", "group", "state_file", NULL};
        const config_setting_t *e;
        int r;

        r = cfg_get_group(ctx, s);
        if (r == 0)
                r = cfg_check_keys(ctx, s, keys);
        if (r < 0)
                return r;
        e = config_setting_get_member(s, "listen");
        if (!e)
                return cfg_fail_missing(ctx, s, "listen");
        if ((r = parse_listen(ctx, e, c)) < 0)
                return r;
        c->admin.mode = 0660;
        if ((e = config_setting_get_member(s, "mode")) &&
            (r = cfg_get_mode(ctx, e, &c->admin.mode)) < 0)
                return r;
        if ((e = config_setting_get_member(s, "group")) && (r = parse_group(ctx, e, c)) < 0)
                return r;
        if ((e = config_setting_get_member(s, "state_file"))) {
                if ((r = parse_state_file(ctx, e, c)) < 0)
                        return r;
        } else if (!(c->admin.state_file = strdup(CFG_ADMIN_STATE_FILE))) {
                return -ENOMEM;
        }
        c->admin.enabled = true;
        return 0;
}

/* The admin socket may not be a route's listener or the metrics endpoint. */
int cfg_validate_admin(const struct cfg_ctx *ctx, const config_setting_t *root, const struct cfg *c)
{
        const config_setting_t *l;
        char quoted[200];

        if (!c->admin.enabled)
                return 0;
        l = config_setting_get_member(config_setting_get_member(root, "admin"), "listen");
        cfg_quote(c->admin.listen.text, quoted, sizeof(quoted));
        if (c->has_metrics && cfg_addr_equal(&c->admin.listen, &c->metrics_listen))
                return cfg_fail(ctx, l, "%s: also used by the metrics endpoint", quoted);
        for (size_t i = 0; i < c->n_routes; i++) {
                for (size_t j = 0; j < c->routes[i].n_listen; j++) {
                        if (cfg_addr_equal(&c->admin.listen, &c->routes[i].listen[j]))
                                return cfg_fail(ctx, l, "%s: also a listener of route %s", quoted,
                                                c->routes[i].name);
                }
        }
        return 0;
}
