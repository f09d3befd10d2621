/* Routes and servers as JSON objects, from the counters of route.h and upstream.h (see
 * status_data.h). Every value is one atomic load: a reader sees each counter whole, not all of
 * them at the same instant. */
#include <stdatomic.h>
#include <string.h>

#include "admin_proto.h"
#include "route.h"
#include "server_set.h"
#include "status_data.h"
#include "upstream.h"

void status_iso_time(time_t t, char *buf, size_t size)
{
        struct tm tm;

        buf[0] = '\0';
        if (t && gmtime_r(&t, &tm))
                strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

const char *status_phase_name(enum daemon_phase p)
{
        return p == DAEMON_RUNNING ? "running" : p == DAEMON_DRAINING ? "draining" : "stopping";
}

json_t *status_route_json(const struct route *r)
{
        const struct route_stats *st = r->st;
        struct server_set *set = route_set_get(r);
        size_t n = set->n;
        json_t *o;

        server_set_unref(set);
        o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "name", r->cfg->name,
                      "servers", (json_int_t)n, "active", (json_int_t)atomic_load(&st->active),
                      "accepted", (json_int_t)atomic_load(&st->accepted), "refused_acl",
                      (json_int_t)atomic_load(&st->refused_acl), "refused_limit",
                      (json_int_t)atomic_load(&st->refused_limit), "bad_proxy_header",
                      (json_int_t)atomic_load(&st->bad_proxy_header), "connect_failures",
                      (json_int_t)atomic_load(&st->connect_failures), "bytes_in",
                      (json_int_t)atomic_load(&st->bytes_in), "bytes_out",
                      (json_int_t)atomic_load(&st->bytes_out));
        /* Traffic policy (issue 16): the per-client limits, the queue, the route's bandwidth. */
        if (o && json_object_update_new(
                     o, json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "refused_client_limit",
                                  (json_int_t)atomic_load(&st->refused_client_limit),
                                  "rate_limited", (json_int_t)atomic_load(&st->rate_limited),
                                  "no_server", (json_int_t)atomic_load(&st->no_server), "queued",
                                  (json_int_t)atomic_load(&st->queued), "queue_timeouts",
                                  (json_int_t)atomic_load(&st->queue_timeouts), "queue_full",
                                  (json_int_t)atomic_load(&st->queue_full), "throttled",
                                  (json_int_t)atomic_load(&st->throttled))) != 0) {
                json_decref(o);
                return NULL;
        }
        return o;
}

static const char *server_state(const struct upstream_server *s)
{
        unsigned st = atomic_load(&s->admin);

        if (st != ADMIN_STATE_READY)
                return admin_state_name(st);
        return atomic_load(&s->down) ? "down" : "ready";
}

json_t *status_server_json(const struct route *r, const struct server_entry *e)
{
        const struct upstream_server *s = e->srv;
        int err = atomic_load(&s->last_error);
        char when[32];
        json_t *o;

        status_iso_time((time_t)atomic_load(&s->last_error_at), when, sizeof(when));
        o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s?, s:s?}", "route", r->cfg->name,
                      "server", e->addr.text, "state", server_state(s), "admin",
                      admin_state_name(atomic_load(&s->admin)), "health",
                      atomic_load(&s->down) ? "down" : "up", "active",
                      (json_int_t)atomic_load(&s->active), "connects",
                      (json_int_t)atomic_load(&s->connects), "connect_failures",
                      (json_int_t)atomic_load(&s->connect_failures), "last_error",
                      err ? strerror(-err) : NULL, "last_error_time", err ? when : NULL);
        /* The upstream name this address came from; null for a literal address. */
        if (o && json_object_set_new(o, "name", e->name[0] ? json_string(e->name) : json_null())) {
                json_decref(o);
                o = NULL;
        }
        return o;
}
