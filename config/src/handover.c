/* handover = { socket = "/run/evproxy/handover.sock"; fdstore = true; }: restart without a drop
 * (issue 18). socket: where a running evproxyd listens for its successor and where a new one
 * asks to take over (evproxyd -H overrides it). fdstore: under systemd (NOTIFY_SOCKET), a
 * SIGTERM hands everything to the service manager's fd store instead of draining. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static int parse_socket(const struct cfg_ctx *ctx, const config_setting_t *s, struct cfg *c)
{
        const char *v;
        int r;

        r = cfg_get_string(ctx, s, &v);
        if (r < 0)
                return r;
        if (strncmp(v, "unix:", 5) == 0)
                v += 5;
        if (v[0] != '/' || strlen(v) >= sizeof(c->handover.socket))
                return cfg_fail(ctx, s,
                                "expected an absolute unix socket path of at most %zu bytes",
                                sizeof(c->handover.socket) - 1);
        snprintf(c->handover.socket, sizeof(c->handover.socket), "%s", v);
        return 0;
}

int cfg_parse_handover(const struct cfg_ctx *ctx, const config_setting_t *s, struct cfg *c)
{
        static const char *const keys[] = {"socket", "fdstore", NULL};
        const config_setting_t *e;
        int r;

        r = cfg_get_group(ctx, s);
        if (r == 0)
                r = cfg_check_keys(ctx, s, keys);
        if (r == 0 && (e = config_setting_get_member(s, "socket")))
                r = parse_socket(ctx, e, c);
        if (r == 0 && (e = config_setting_get_member(s, "fdstore")))
                r = cfg_get_bool(ctx, e, &c->handover.fdstore);
        return r;
}
