/* A route's client queue: queue_timeout (seconds a client with no server to take it may wait,
 * 0 = none, the default) and queue_size (how many may wait at once, per route). The daemon's
 * conn_queue.c holds them. */
#include "internal.h"

#define QUEUE_SIZE_DEFAULT 1024
#define QUEUE_SIZE_MAX     1000000
#define QUEUE_TIMEOUT_MAX  3600 /* seconds */

int cfg_parse_queue(const struct cfg_ctx *ctx, const config_setting_t *route, struct cfg_route *r)
{
        const config_setting_t *s;
        unsigned long long u;
        int ret;

        r->queue_timeout_ms = 0;
        r->queue_size = QUEUE_SIZE_DEFAULT;
        if ((s = config_setting_get_member(route, "queue_timeout")) &&
            (ret = cfg_get_duration(ctx, s, 0, QUEUE_TIMEOUT_MAX, &r->queue_timeout_ms)) < 0)
                return ret;
        if ((s = config_setting_get_member(route, "queue_size"))) {
                if ((ret = cfg_get_uint(ctx, s, 1, QUEUE_SIZE_MAX, &u)) < 0)
                        return ret;
                r->queue_size = (unsigned)u;
        }
        return 0;
}
