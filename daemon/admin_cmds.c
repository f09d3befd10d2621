/* The admin commands' answers, built with jansson on the main thread from the current
 * configuration generation and the counters every worker shares: status, servers, the server
 * state changes (drain, maint, ready: saved to the state file before they are answered) and
 * check. reload is waited for by admin_server.c and answered by admin_reload_answer(); conns,
 * kill and the resets of maint --kill ask the workers (admin_conns.c). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "admin_int.h"
#include "daemon.h"
#include "gen.h"
#include "health.h"
#include "log.h"
#include "status_data.h"
#include "server_set.h"
#include "upstream.h"

json_t *admin_error(const char *fmt, ...)
{
        char msg[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

struct route *admin_find_route(struct daemon *d, const char *name)
{
        for (size_t i = 0; i < d->gen->n_routes; i++)
                if (strcmp(d->gen->routes[i].cfg->name, name) == 0)
                        return &d->gen->routes[i];
        return NULL;
}

int admin_find_server(const struct server_set *set, const char *text)
{
        return (int)server_set_find_text(set, text);
}

static json_t *last_reload(const struct admin_server *a)
{
        char when[32];

        if (!a->reloaded)
                return json_null();
        status_iso_time(a->reload_time, when, sizeof(when));
        return json_pack("{s:s, s:I, s:b, s:s?}", "time", when, "unix_time",
                         (json_int_t)a->reload_time, "ok", a->reload_ok, "error",
                         a->reload_ok ? NULL : a->reload_error);
}

static json_t *cmd_status(struct admin_server *a)
{
        struct daemon *d = a->d;
        json_t *routes = json_array(), *resp;
        char started[32];

        for (size_t i = 0; routes && i < d->gen->n_routes; i++) {
                if (json_array_append_new(routes, status_route_json(&d->gen->routes[i])) != 0) {
                        json_decref(routes);
                        return NULL;
                }
        }
        status_iso_time(a->started, started, sizeof(started));
        resp = json_pack("{s:b, s:s, s:i, s:s, s:f, s:s, s:s, s:o, s:i, s:i, s:o}", "ok", 1,
                         "version", EVPROXY_VERSION, "pid", (int)getpid(), "started", started,
                         "uptime_s", (double)(evio_now_ms() - a->started_ms) / 1000.0, "config",
                         d->config_path, "phase", status_phase_name(d->phase), "last_reload",
                         last_reload(a), "workers", (int)d->n_workers, "connections",
                         (int)atomic_load(&d->shared.active), "routes", routes);
        return resp;
}

static json_t *cmd_servers(struct admin_server *a, const char *route)
{
        const struct gen *g = a->d->gen;
        struct route *only = NULL;
        json_t *list = json_array();

        if (route[0] && !(only = admin_find_route(a->d, route))) {
                json_decref(list);
                return admin_error("no route \"%s\"", route);
        }
        for (size_t i = 0; list && i < g->n_routes; i++) {
                struct route *r = &g->routes[i];
                struct server_set *set;
                bool failed = false;

                if (only && r != only)
                        continue;
                set = route_set_get(r);
                for (size_t j = 0; !failed && j < set->n; j++)
                        failed =
                            json_array_append_new(list, status_server_json(r, &set->e[j])) != 0;
                server_set_unref(set);
                if (failed) {
                        json_decref(list);
                        return NULL;
                }
        }
        return list ? json_pack("{s:b, s:o}", "ok", 1, "servers", list) : NULL;
}

static json_t *cmd_set_state(struct admin_server *a, const struct admin_request *req,
                             enum admin_state want)
{
        struct route *r = admin_find_route(a->d, req->route);
        struct server_set *set;
        struct upstream_server *s;
        json_t *resp;
        unsigned was;
        char why[600];
        int i;

        if (!r)
                return admin_error("no route \"%s\"", req->route);
        set = route_set_get(r);
        i = admin_find_server(set, req->server);
        if (i < 0) {
                server_set_unref(set);
                return admin_error("route %s has no server \"%s\" (see: evproxyctl servers %s)",
                                   req->route, req->server, req->route);
        }
        s = set->e[i].srv;
        was = atomic_exchange(&s->admin, want);
        if (admin_state_save(a, why, sizeof(why)) < 0) {
                atomic_store(&s->admin, was); /* not kept across a restart: not done at all */
                log_error("admin: route %s server %s: %s not applied: %s", r->cfg->name,
                          set->e[i].addr.text, admin_state_name(want), why);
                server_set_unref(set);
                return admin_error("%s (the state was not changed)", why);
        }
        if (was != want)
                log_notice("admin: route %s server %s: %s -> %s (%u connections open)",
                           r->cfg->name, set->e[i].addr.text, admin_state_name(was),
                           admin_state_name(want), atomic_load(&s->active));
        resp = json_pack("{s:b, s:s, s:s, s:s, s:s, s:I}", "ok", 1, "route", r->cfg->name, "server",
                         set->e[i].addr.text, "state", admin_state_name(want), "previous",
                         admin_state_name(was), "active", (json_int_t)atomic_load(&s->active));
        server_set_unref(set);
        return resp;
}

/* Load the file as a reload would, in the daemon: same path, same permissions, nothing
 * applied. */
static json_t *cmd_check(struct admin_server *a)
{
        struct cfg_error err;
        char msg[sizeof(err) + 64];
        struct cfg *cfg = NULL;
        int r;

        memset(&err, 0, sizeof(err));
        r = cfg_load(a->d->config_path, &cfg, &err);
        if (r < 0) {
                cfg_error_format(&err, msg, sizeof(msg));
                return admin_error("%s", msg);
        }
        cfg_free(cfg);
        return json_pack("{s:b, s:s}", "ok", 1, "config", a->d->config_path);
}

json_t *admin_reload_answer(struct admin_server *a)
{
        if (!a->reload_ok)
                return admin_error("%s", a->reload_error);
        return json_pack("{s:b, s:s, s:I}", "ok", 1, "config", a->d->config_path, "routes",
                         (json_int_t)a->d->gen->n_routes);
}

json_t *admin_answer(struct admin_server *a, const struct admin_request *req)
{
        switch (req->cmd) {
        case ADMIN_CMD_STATUS:
                return cmd_status(a);
        case ADMIN_CMD_SERVERS:
                return cmd_servers(a, req->route);
        case ADMIN_CMD_DRAIN:
                return cmd_set_state(a, req, ADMIN_STATE_DRAIN);
        case ADMIN_CMD_MAINT:
                return cmd_set_state(a, req, ADMIN_STATE_MAINT);
        case ADMIN_CMD_READY:
                return cmd_set_state(a, req, ADMIN_STATE_READY);
        case ADMIN_CMD_CHECK:
                return cmd_check(a);
        case ADMIN_CMD_CONNS: /* admin_conns.c, waited for by admin_server.c */
        case ADMIN_CMD_KILL:
        case ADMIN_CMD_RELOAD:
                break;
        }
        return admin_error("internal error: %s answered here", admin_cmd_name(req->cmd));
}
