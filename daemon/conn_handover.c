/* A connection leaving this process as a handover record (handover.h: its sockets, the bytes
 * in flight, its state), or arriving from one: the other half of conn.c, through the private
 * conn_int.h. A connection that forwarded nothing yet (connecting, inspecting, queued) starts
 * over from the route choice in the new process; one in its PROXY header reads it again. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn_int.h"
#include "gen.h"
#include "handover.h"
#include "handover_wire.h"
#include "listener.h"
#include "log.h"
#include "route.h"
#include "server_set.h"

static uint8_t first_eof_to_wire(uint8_t e)
{
        return e == END_CLIENT_CLOSED     ? HO_EOF_CLIENT
               : e == END_UPSTREAM_CLOSED ? HO_EOF_UPSTREAM
                                          : HO_EOF_NONE;
}

static void conn_export_fields(const struct conn *c, struct ho_conn *h)
{
        uint64_t now = evio_now_ms();

        snprintf(h->route, sizeof(h->route), "%s", conn_route(c)->name);
        if (c->state == CONN_FORWARDING && c->pick.current >= 0)
                snprintf(h->upstream, sizeof(h->upstream), "%s",
                         upstream_current(&c->pick)->addr.text);
        /* Inspecting (shared address) or connecting: nothing was forwarded and the client's
         * bytes are still in its socket (inspection only peeks); the new process starts over
         * from the route choice. */
        h->state = c->state == CONN_FORWARDING     ? HO_FORWARDING
                   : c->state == CONN_PROXY_HEADER ? HO_PROXY_HEADER
                                                   : HO_CONNECTING;
        h->first_eof = first_eof_to_wire(c->first_eof);
        h->pp_pending = c->state == CONN_FORWARDING && c->pp_pending;
        h->pp_sent = h->pp_pending ? c->pp_sent : 0;
        /* Before forwarding the client's address is the one the PROXY header gave, if any;
         * a connection still waiting for its header gets the accepted one again. */
        h->client_len = c->client.len <= sizeof(h->client) ? c->client.len : 0;
        memcpy(&h->client, addr_slot_get(&c->client), h->client_len);
        h->local_len = c->local.len <= sizeof(h->local) ? c->local.len : 0;
        memcpy(&h->local, addr_slot_get(&c->local), h->local_len);
        h->age_ms = now - c->start_ms;
        h->idle_ms = now > c->last_ms ? now - c->last_ms : 0;
}

int conn_handover_export(struct conn *c, struct ho_state *st)
{
        bool fwd = c->state == CONN_FORWARDING;
        struct ho_conn *h = NULL;
        int r;

        r = ho_state_add_conn(st, &h);
        if (r < 0)
                return r;
        if (fwd && (ho_dir_alloc(&h->up, c->up.pending) < 0 ||
                    ho_dir_alloc(&h->down, c->down.pending) < 0)) {
                free(h->up.data);
                free(h->down.data);
                st->n_cs--;
                return -ENOMEM;
        }
        if (fwd && ((r = ho_pump_export(&c->up, &h->up)) < 0 ||
                    (r = ho_pump_export(&c->down, &h->down)) < 0)) {
                /* Bytes a pipe would not give back: this one cannot be resumed whole. */
                free(h->up.data);
                free(h->down.data);
                st->n_cs--;
                log_error_errno(r, "route %s: handing over a connection", conn_route(c)->name);
                conn_close(c, END_ERROR, true, true);
                return 0;
        }
        conn_export_fields(c, h);
        conn_quiet(c);
        h->cfd = evio_reg_deregister(&c->creg); /* stays open: the record owns it now */
        if (fwd)
                h->ufd = evio_reg_deregister(&c->ureg);
        else
                conn_close_side(&c->ureg, false); /* a connect in progress: made again after */
        conn_release(c); /* queued: the new process queues it again if need be */
        conn_free(c);
        return 0;
}

static int conn_import_forwarding(struct conn *c, struct ho_conn *h)
{
        struct conn_env *env = c->env;
        uint64_t idle_ms = conn_route(c)->idle_timeout_ms;
        bool splice = c->l->gen->cfg->forwarding == CFG_FORWARD_SPLICE;
        int r;

        evio_reg_init(&c->ureg, env->h, h->ufd);
        h->ufd = -1;
        /* Its server by address in the route's current set: the connection keeps its socket
         * either way; without a match it counts against no server (and logs "-"). */
        upstream_adopt(c->l->route, &c->pick, h->upstream);
        c->first_eof = h->first_eof == HO_EOF_CLIENT     ? END_CLIENT_CLOSED
                       : h->first_eof == HO_EOF_UPSTREAM ? END_UPSTREAM_CLOSED
                                                         : NO_EOF;
        c->pp_pending = h->pp_pending;
        c->pp_sent = h->pp_sent;
        r = ho_pump_import(&c->up, &h->up, env->bufs.size, splice);
        if (r == 0)
                r = ho_pump_import(&c->down, &h->down, env->bufs.size, splice);
        c->counted_in = c->up.bytes; /* counted by the process that moved them */
        c->counted_out = c->down.bytes;
        c->state = CONN_FORWARDING;
        if (r == 0)
                r = conn_register(c, &c->creg);
        if (r == 0)
                r = conn_register(c, &c->ureg);
        if (r == 0 && idle_ms)
                r = evio_timer_arm(env->drv, &c->timer, c->last_ms + idle_ms);
        if (r == 0)
                evio_driver_defer(env->drv, &c->run);
        return r;
}

int conn_handover_import(struct conn_env *env, struct listener *l, struct ho_conn *h)
{
        struct conn *c = conn_new(env, l, h->cfd);
        uint64_t now = evio_driver_now_ms(env->drv);
        int r;

        if (!c)
                return -ENOMEM; /* the caller closes h's fds */
        h->cfd = -1;
        /* Limits are taken unchecked: the connection exists already. */
        atomic_fetch_add(&l->route->st->active, 1);
        atomic_fetch_add(env->active, 1);
        c->start_ms = now - (h->age_ms < now ? h->age_ms : now);
        c->last_ms = now - (h->idle_ms < now ? h->idle_ms : now);
        if ((h->client_len &&
             addr_slot_set(&c->client, (const struct sockaddr *)&h->client, h->client_len) < 0) ||
            (h->local_len &&
             addr_slot_set(&c->local, (const struct sockaddr *)&h->local, h->local_len) < 0))
                log_warning("route %s: no memory to keep a client address: logged as unknown",
                            l->route->cfg->name);
        if (h->state == HO_FORWARDING) {
                r = conn_import_forwarding(c, h);
                if (r < 0) {
                        log_error_errno(r, "route %s: resuming a connection", conn_route(c)->name);
                        conn_close(c, END_ERROR, true, true);
                }
                return r < 0 ? r : 0;
        }
        if (h->state == HO_PROXY_HEADER && l->route->cfg->accept_proxy_protocol)
                conn_wait_header(c); /* the header was only peeked at: read it again */
        else
                conn_begin_connect(c); /* nothing was forwarded: connect as if accepted now */
        return 0;
}
