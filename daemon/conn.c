/* One client connection, from accept to its access-log line:
 *   PROXY_HEADER (accept_proxy_protocol) --whole header, client allowed--> CONNECTING
 *      | malformed/oversized: bad_proxy_header; too slow: proxy_timeout; denied: denied
 *   CONNECTING --connected--> FORWARDING --both pumps DONE--> closed (client_/upstream_closed)
 *      | FORWARDING sends our PROXY header (proxy_protocol) before any client byte
 *      | refused or timed out: next server of the route; none left: closed (connect_failed)
 *   (accept, or the PROXY header) --over a per-client limit--> closed (client_limit/rate_limited)
 *   FORWARDING --a side fails--> closed (reset/error; the other side is reset with SO_LINGER 0)
 *      | ETIMEDOUT from keepalive or user_timeout: peer_timeout (the side is logged)
 *   FORWARDING --idle past idle_timeout, or worker shutdown--> closed (idle_timeout/shutdown)
 *   CONNECTING --no server left (or none: names without address), route has queue_timeout-->
 *      QUEUED (conn_queue.h) --retry--> CONNECTING; queue full or queue_timeout over: closed
 *      (no_server); no queue_timeout and no server at all: closed (no_server) at once
 * One timer serves both states: the connect deadline, then the idle check, which compares
 * last_ms (updated by runs that move bytes) instead of being re-armed for every byte. */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acl.h"
#include "addr.h"
#include "client_limit.h"
#include "conn.h"
#include "conn_int.h"
#include "conn_inspect.h"
#include "gen.h"
#include "keepalive.h"
#include "listener.h"
#include "log.h"
#include "proxy_io.h"
#include "pump.h"
#include "server_set.h"
#include "shaper.h"
#include "upstream.h"
#include "util.h"

static const char *const end_names[] = {
    [END_CLIENT_CLOSED] = "client_closed",
    [END_UPSTREAM_CLOSED] = "upstream_closed",
    [END_IDLE_TIMEOUT] = "idle_timeout",
    [END_CONNECT_FAILED] = "connect_failed",
    [END_RESET] = "reset",
    [END_LIMIT] = "limit",
    [END_SHUTDOWN] = "shutdown",
    [END_ERROR] = "error",
    [END_DENIED] = "denied",
    [END_BAD_PROXY_HEADER] = "bad_proxy_header",
    [END_PROXY_TIMEOUT] = "proxy_timeout",
    [END_KILLED] = "killed",
    [END_NO_SERVER] = "no_server",
    [END_CLIENT_LIMIT] = "client_limit",
    [END_RATE_LIMITED] = "rate_limited",
    [END_PEER_TIMEOUT] = "peer_timeout",
    [END_NO_MATCH] = "no_match",
    [END_BAD_HELLO] = "bad_hello",
};

const char *conn_end_name(enum conn_end end)
{
        return end < sizeof(end_names) / sizeof(end_names[0]) ? end_names[end] : "error";
}

const struct cfg_route *conn_route(const struct conn *c)
{
        return c->l->route->cfg;
}

char *conn_client_text(const struct listener *l, const struct sockaddr *sa, socklen_t len,
                       char *buf, size_t size)
{
        if (addr_is_unnamed(sa, len))
                return addr_format((const struct sockaddr *)&l->addr->sa, l->addr->sa_len, buf,
                                   size);
        return addr_format(sa, len, buf, size);
}

static const char *conn_upstream_text(const struct conn *c, char *buf, size_t size)
{
        const struct cfg_addr *a;

        /* Not connected (yet, or ever): no upstream carried this connection's bytes. */
        if (c->pick.current < 0 || c->state != CONN_FORWARDING) {
                snprintf(buf, size, "-");
                return buf;
        }
        a = &upstream_current(&c->pick)->addr;
        return addr_format((const struct sockaddr *)&a->sa, a->sa_len, buf, size);
}

void conn_limits_release(struct conn_env *env, struct listener *l)
{
        unsigned route_prev = atomic_fetch_sub(&l->route->st->active, 1);
        unsigned prev = atomic_fetch_sub(env->active, 1);

        /* A release without its take would wrap the count and lift the limits for good. */
        assert(route_prev > 0 && prev > 0);
        (void)route_prev;
        (void)prev;
}

void conn_close_side(struct evio_registration *r, bool reset)
{
        struct linger lg = {.l_onoff = 1, .l_linger = 0};

        if (reset && r->fd >= 0)
                (void)setsockopt(r->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        evio_reg_close(r);
}

/* Add the bytes moved since the last call to the route's counters (metrics). */
static void conn_count_bytes(struct conn *c)
{
        struct route_stats *st = c->l->route->st;

        if (c->up.bytes != c->counted_in) {
                atomic_fetch_add_explicit(&st->bytes_in, c->up.bytes - c->counted_in,
                                          memory_order_relaxed);
                c->counted_in = c->up.bytes;
        }
        if (c->down.bytes != c->counted_out) {
                atomic_fetch_add_explicit(&st->bytes_out, c->down.bytes - c->counted_out,
                                          memory_order_relaxed);
                c->counted_out = c->down.bytes;
        }
}

void conn_quiet(struct conn *c)
{
        evio_timer_cancel(c->env->drv, &c->timer);
        shaper_stop(&c->shape);
        evio_driver_undefer(c->env->drv, &c->run);
}

void conn_release(struct conn *c)
{
        struct conn_env *env = c->env;

        pump_release(&c->up, &env->pipes, &env->bufs);
        pump_release(&c->down, &env->pipes, &env->bufs);
        conn_count_bytes(c);
        upstream_end(c->l->route, &c->pick);
        cq_leave(&env->queue, &c->qe);
        assert(env->n_conns > 0);
        TAILQ_REMOVE(&env->conns, c, link);
        env->n_conns--;
        conn_limits_release(env, c->l);
        client_limit_release(env->clients, &c->ticket);
}

void conn_free(struct conn *c)
{
        gen_unref(c->l->gen); /* may free the listener c->l points into: last use of it */
        addr_slot_clear(&c->client);
        addr_slot_clear(&c->local);
        free(c->ins);
        free(c);
}

void conn_close(struct conn *c, enum conn_end end, bool reset_client, bool reset_upstream)
{
        struct conn_env *env = c->env;
        char upstream[ADDR_STRLEN];

        conn_quiet(c);
        conn_close_side(&c->creg, reset_client);
        conn_close_side(&c->ureg, reset_upstream);
        conn_upstream_text(c, upstream, sizeof(upstream)); /* before the walk lets go of it */
        if (end == END_NO_SERVER)
                atomic_fetch_add_explicit(&c->l->route->st->no_server, 1, memory_order_relaxed);
        conn_release(c);
        if (c->state == CONN_FORWARDING) /* its server has a slot free */
                conn_queue_kick(env, c->l->route->st);
        /* Logged once the connection is fully gone (sockets closed, limits released), so a
         * reader of the log may count on the slot being free. */
        if (c->l->gen->cfg->access_log) {
                char client[ADDR_STRLEN], more[INSPECT_SNI_MAX + 300];

                conn_client_text(c->l, addr_slot_get(&c->client), c->client.len, client,
                                 sizeof(client));
                log_access_id(c->id, conn_route(c)->name, client, upstream, c->up.bytes,
                              c->down.bytes, evio_now_ms() - c->start_ms, conn_end_name(end),
                              conn_inspect_log_fields(c->ins, more, sizeof(more)));
        }
        conn_free(c);
}

void conn_close_all(struct conn_env *env, enum conn_end end)
{
        struct conn *c;

        /* conn_close unlinks c before freeing it; the analyzer does not follow TAILQ_REMOVE. */
        while ((c = TAILQ_FIRST(&env->conns)))
                conn_close(c, end, false, false); // NOLINT(clang-analyzer-unix.Malloc)
}

static void conn_wake(void *arg, uint32_t ready)
{
        struct conn *c = arg;

        evio_driver_defer(c->env->drv, &c->run);
}

static void conn_timer_fn(struct evio_timer *t, void *arg)
{
        struct conn *c = arg;

        c->timer_fired = true;
        evio_driver_defer(c->env->drv, &c->run);
}

int conn_register(struct conn *c, struct evio_registration *r)
{
        const struct evio_waker wk = {.fn = conn_wake, .arg = c};

        return evio_reg_register(r, EVIO_INTEREST_READABLE | EVIO_INTEREST_WRITABLE, &wk);
}

static void conn_connected(struct conn *c)
{
        struct conn_env *env = c->env;
        uint64_t idle_ms = conn_route(c)->idle_timeout_ms;
        int r = 0;

        evio_timer_cancel(env->drv, &c->timer);
        c->timer_fired = false;
        cq_leave(&env->queue, &c->qe);
        upstream_report(c->l->route, &c->pick, 0);
        if (!evio_reg_is_registered(&c->ureg))
                r = conn_register(c, &c->ureg);
        if (r == 0 && !evio_reg_is_registered(&c->creg))
                r = conn_register(c, &c->creg);
        c->state = CONN_FORWARDING;
        c->pp_pending = conn_route(c)->proxy_protocol != CFG_PROXY_OFF;
        c->last_ms = evio_now_ms();
        env->pause_streak = 0;
        if (r == 0 && idle_ms)
                r = evio_timer_arm(env->drv, &c->timer, c->last_ms + idle_ms);
        if (r < 0) {
                log_error_errno(r, "route %s: starting to forward", conn_route(c)->name);
                conn_close(c, END_ERROR, false, false);
                return;
        }
        evio_driver_defer(env->drv, &c->run);
}

static int conn_wait_connect(struct conn *c)
{
        uint64_t ms = conn_route(c)->connect_timeout_ms;
        int r;

        r = conn_register(c, &c->ureg);
        if (r == 0 && ms)
                r = evio_timer_arm(c->env->drv, &c->timer, evio_now_ms() + ms);
        c->state = CONN_CONNECTING;
        return r;
}

static void conn_drop_upstream(struct conn *c)
{
        evio_timer_cancel(c->env->drv, &c->timer);
        c->timer_fired = false;
        conn_close_side(&c->ureg, false);
}

/* Try servers from the current position of the walk until one connects or is pending. */
static void conn_connect_next(struct conn *c, int r)
{
        struct route *rt = c->l->route;
        char client[ADDR_STRLEN];
        const struct cfg_addr *a;
        int fd;

        while ((a = upstream_next(rt, &c->pick))) {
                r = upstream_connect(a, &fd);
                evio_reg_init(&c->ureg, c->env->h, fd); /* owns it, connected or not */
                keepalive_side(fd, a->sa.ss_family, &rt->cfg->policy, true, rt->cfg->name);
                if (r == 0) {
                        conn_connected(c);
                        return;
                }
                if (r == -EINPROGRESS) {
                        r = conn_wait_connect(c);
                        if (r == 0)
                                return;
                }
                upstream_report(rt, &c->pick, r);
                conn_drop_upstream(c);
                if (upstream_error_is_local(r)) {
                        log_debug_errno(r, "route %s: connecting to %s", rt->cfg->name, a->text);
                        c->env->pause_accepting(c->env, r);
                        conn_close(c, END_ERROR, false, false);
                        return;
                }
                log_debug_errno(r, "route %s: upstream %s failed", rt->cfg->name, a->text);
        }
        if (conn_queue_wait(c))
                return;
        conn_client_text(c->l, addr_slot_get(&c->client), c->client.len, client, sizeof(client));
        if (upstream_no_server(rt, &c->pick, client)) {
                conn_close(c, END_NO_SERVER, false, false);
                return;
        }
        if (c->pick.tried == 0) /* nothing to try: no r to speak of */
                log_warning("route %s: client %s: no upstream to try (every server is drained "
                            "or in maintenance%s)",
                            rt->cfg->name, client,
                            c->pick.full ? ", or at its max_connections" : "");
        else /* "last" is the server whose failure r reports */
                log_warning_errno(
                    r, "route %s: client %s: no upstream reachable (%u tried, last %s)",
                    rt->cfg->name, client, c->pick.tried, upstream_current(&c->pick)->addr.text);
        conn_close(c, END_CONNECT_FAILED, false, false);
}

static void conn_run_connecting(struct conn *c)
{
        struct route *rt = c->l->route;
        struct evio_ready_event ev;
        int r;

        if (c->timer_fired) {
                r = -ETIMEDOUT;
        } else {
                if (evio_reg_poll_ready(&c->ureg, EVIO_DIRECTION_WRITE, &ev) != 0)
                        return;
                /* Writable with no error or hang-up: the connect went through, and
                 * SO_ERROR need not be asked. */
                r = 0;
                if (ev.ready & (EVIO_READY_ERROR | EVIO_READY_WRITE_CLOSED))
                        r = upstream_connect_result(c->ureg.fd);
                if (r == 0) {
                        conn_connected(c);
                        return;
                }
        }
        log_debug_errno(r, "route %s: upstream %s failed", rt->cfg->name,
                        upstream_current(&c->pick)->addr.text);
        upstream_report(rt, &c->pick, r);
        conn_drop_upstream(c);
        conn_connect_next(c, r);
}

/* ETIMEDOUT on a side (keepalive.c): said with the side, which end=peer_timeout does not. */
static void conn_peer_timeout(struct conn *c, bool client_side)
{
        char client[ADDR_STRLEN];

        conn_client_text(c->l, addr_slot_get(&c->client), c->client.len, client, sizeof(client));
        log_info("route %s: client %s: the %s peer timed out (keepalive or user_timeout)",
                 conn_route(c)->name, client, client_side ? "client" : "upstream");
        conn_close(c, END_PEER_TIMEOUT, !client_side, client_side);
}

/* A failed pump closes the connection: the side that failed is closed, the other reset. */
static bool conn_pump_failed(struct conn *c, enum pump_status st, const struct pump_io *x,
                             bool client_to_upstream)
{
        bool client_failed;

        if (st != PUMP_ERR_SRC && st != PUMP_ERR_DST && st != PUMP_ERR_LOCAL)
                return false;
        if (st == PUMP_ERR_LOCAL) {
                log_warning_errno(x->err, "route %s: forwarding", conn_route(c)->name);
                conn_close(c, END_ERROR, true, true);
                return true;
        }
        client_failed = (st == PUMP_ERR_SRC) == client_to_upstream;
        if (x->err == -ETIMEDOUT) { /* keepalive or user_timeout gave up on that peer */
                conn_peer_timeout(c, client_failed);
                return true;
        }
        log_debug_errno(x->err, "route %s: %s side failed", conn_route(c)->name,
                        client_failed ? "client" : "upstream");
        conn_close(c, x->err == -ECONNRESET || x->err == -EPIPE ? END_RESET : END_ERROR,
                   !client_failed, client_failed);
        return true;
}

/* Idle check when the timer fires; true if the connection was closed. */
static bool conn_idle_expired(struct conn *c)
{
        uint64_t idle_ms = conn_route(c)->idle_timeout_ms;
        uint64_t now = evio_now_ms();

        if (!idle_ms)
                return false;
        if (now - c->last_ms >= idle_ms) {
                conn_close(c, END_IDLE_TIMEOUT, false, false);
                return true;
        }
        if (evio_timer_arm(c->env->drv, &c->timer, c->last_ms + idle_ms) < 0) {
                conn_close(c, END_ERROR, false, false);
                return true;
        }
        return false;
}

/* Our PROXY header goes out before any byte of the client's: false while it is not all out
 * (a writable upstream runs us again) or when sending it closed the connection. */
static bool conn_proxy_sent(struct conn *c)
{
        const struct cfg_route *rc = conn_route(c);
        struct sockaddr_storage src = {0}, dst = {0};
        socklen_t len;
        int r;

        if (!c->pp_pending)
                return true;
        if (c->local.len == 0) {
                len = sizeof(dst);
                /* On failure the header says UNKNOWN / LOCAL (family 0). */
                if (getsockname(c->creg.fd, (struct sockaddr *)&dst, &len) == 0 &&
                    addr_slot_set(&c->local, (const struct sockaddr *)&dst, len) < 0) {
                        conn_close(c, END_ERROR, false, false);
                        return false;
                }
        }
        memcpy(&dst, addr_slot_get(&c->local), c->local.len);
        proxy_unmap_v4(&dst, c->local.len);
        memcpy(&src, addr_slot_get(&c->client), c->client.len);
        proxy_unmap_v4(&src, c->client.len);
        r = proxy_send_header(&c->ureg, rc->proxy_protocol, (const struct sockaddr *)&src,
                              (const struct sockaddr *)&dst, &c->pp_sent);
        if (r == 0)
                return false;
        if (r < 0) {
                log_debug_errno(r, "route %s: sending the PROXY header", rc->name);
                conn_close(c, r == -ECONNRESET || r == -EPIPE ? END_RESET : END_ERROR, true, false);
                return false;
        }
        c->pp_pending = false;
        return true;
}

static void conn_run_forwarding(struct conn *c)
{
        struct conn_env *env = c->env;
        struct pump_io up = {.src = &c->creg, .dst = &c->ureg};
        struct pump_io down = {.src = &c->ureg, .dst = &c->creg};
        enum pump_status su, sd;

        if (!conn_proxy_sent(c))
                return;
        up.last = c->down.done;
        su = shaper_pump(&c->shape, SHAPER_UPLOAD, &c->up, &up, &env->pipes, &env->bufs,
                         &conn_route(c)->policy, c->l->route->st);
        if (conn_pump_failed(c, su, &up, true))
                return;
        down.last = c->up.done;
        sd = shaper_pump(&c->shape, SHAPER_DOWNLOAD, &c->down, &down, &env->pipes, &env->bufs,
                         &conn_route(c)->policy, c->l->route->st);
        if (conn_pump_failed(c, sd, &down, false))
                return;
        if (up.moved || down.moved) {
                c->last_ms = evio_driver_now_ms(env->drv);
                conn_count_bytes(c);
        }
        if (c->first_eof == NO_EOF && (c->up.eof || c->down.eof))
                c->first_eof = c->up.eof ? END_CLIENT_CLOSED : END_UPSTREAM_CLOSED;
        if (c->up.done && c->down.done) {
                conn_close(c, c->first_eof, false, false);
                return;
        }
        if (c->timer_fired) {
                c->timer_fired = false;
                if (conn_idle_expired(c))
                        return;
        }
        if (su == PUMP_AGAIN || sd == PUMP_AGAIN)
                evio_driver_defer(env->drv, &c->run);
}

/* Per-client limits, once the true client is known: false if c was closed for them. */
static bool conn_client_admitted(struct conn *c)
{
        int end = client_limit_admit(c->env->clients, c->l, addr_slot_get(&c->client), &c->ticket);

        if (end == 0)
                return true;
        conn_close(c, (enum conn_end)end, false, false);
        return false;
}

static void conn_begin_inspect(struct conn *c);

/* After accept, after a PROXY header, or on a queued client's retry: choose a server (the
 * policy may hash the client's address) and connect. */
void conn_walk(struct conn *c)
{
        c->state = CONN_CONNECTING;
        upstream_end(c->l->route, &c->pick); /* a retry's previous walk */
        upstream_begin_for(c->l->route, &c->pick, addr_slot_get(&c->client));
        conn_connect_next(c, -EHOSTUNREACH);
}

/* After accept, or after a PROXY header (a shared address: after inspecting, too): the
 * per-client limits once the route is chosen, then the walk. */
void conn_begin_connect(struct conn *c)
{
        if (c->l->group) {
                conn_begin_inspect(c);
                return;
        }
        if (conn_client_admitted(c))
                conn_walk(c);
}

static void conn_header_failed(struct conn *c, int r)
{
        struct route_stats *st = c->l->route->st;
        enum conn_end end = END_ERROR;
        char client[ADDR_STRLEN];

        if (r == -ENODATA) {
                end = END_CLIENT_CLOSED;
        } else if (r == -ECONNRESET) {
                end = END_RESET;
        } else if (r == -ETIMEDOUT || r == -EPROTO || r == -EMSGSIZE || r == -EIO) {
                end = r == -ETIMEDOUT ? END_PROXY_TIMEOUT : END_BAD_PROXY_HEADER;
                atomic_fetch_add_explicit(&st->bad_proxy_header, 1, memory_order_relaxed);
        }
        if (log_enabled(LOG_DEBUG)) {
                conn_client_text(c->l, addr_slot_get(&c->client), c->client.len, client,
                                 sizeof(client));
                log_debug_errno(r, "route %s: client %s: PROXY header", conn_route(c)->name,
                                client);
        }
        conn_close(c, end, false, false);
}

/* accept_proxy_protocol: the client's address is the one its header gives (v1 UNKNOWN and v2
 * LOCAL keep the connection's own), checked against the route's access lists again. */
static void conn_run_proxy_header(struct conn *c)
{
        struct route *rt = c->l->route;
        struct pp_header h;
        int r;

        r = c->timer_fired ? -ETIMEDOUT : proxy_read_header(&c->creg, &h);
        if (r == 0)
                return;
        if (r < 0) {
                conn_header_failed(c, r);
                return;
        }
        if (!h.local &&
            (addr_slot_set(&c->client, (const struct sockaddr *)&h.src, h.src_len) < 0 ||
             addr_slot_set(&c->local, (const struct sockaddr *)&h.dst, h.dst_len) < 0)) {
                conn_close(c, END_ERROR, false, false);
                return;
        }
        if (!acl_allows(rt->cfg, addr_slot_get(&c->client))) {
                atomic_fetch_add_explicit(&rt->st->refused_acl, 1, memory_order_relaxed);
                conn_close(c, END_DENIED, false, false);
                return;
        }
        evio_timer_cancel(c->env->drv, &c->timer);
        c->timer_fired = false;
        conn_begin_connect(c);
}

void conn_wait_header(struct conn *c)
{
        uint64_t ms = conn_route(c)->proxy_protocol_timeout_ms;
        int r;

        c->state = CONN_PROXY_HEADER;
        r = conn_register(c, &c->creg);
        if (r == 0 && ms)
                r = evio_timer_arm(c->env->drv, &c->timer, evio_now_ms() + ms);
        if (r < 0) {
                log_error_errno(r, "route %s: waiting for a PROXY header", conn_route(c)->name);
                conn_close(c, END_ERROR, false, false);
                return;
        }
        evio_driver_defer(c->env->drv, &c->run); /* the header may be there already */
}

/* Shared address (conn_inspect.c): the first bytes choose the route, c moves to its listener. */
static void conn_run_inspect(struct conn *c)
{
        struct listener *to;
        enum conn_end end;
        int r = conn_inspect_run(c->ins, &c->creg, c->timer_fired, c->l, addr_slot_get(&c->client),
                                 &to, &end);

        if (r == 0)
                return;
        if (to)
                c->l = to; /* same generation: the reference c holds covers it */
        if (r < 0) {
                conn_close(c, end, false, false);
                return;
        }
        evio_timer_cancel(c->env->drv, &c->timer);
        c->timer_fired = false;
        conn_begin_connect(c);
}

static void conn_begin_inspect(struct conn *c)
{
        uint64_t ms = c->l->group->cfg.inspect_timeout_ms;
        int r = -ENOMEM;

        evio_timer_cancel(c->env->drv, &c->timer);
        c->timer_fired = false;
        c->state = CONN_INSPECT;
        c->ins = calloc(1, sizeof(*c->ins));
        if (c->ins)
                r = evio_reg_is_registered(&c->creg) ? 0 : conn_register(c, &c->creg);
        if (r == 0)
                r = evio_timer_arm(c->env->drv, &c->timer, evio_now_ms() + ms);
        if (r < 0) {
                log_error_errno(r, "listen %s: inspecting a connection", c->l->addr->text);
                conn_close(c, END_ERROR, false, false);
                return;
        }
        evio_driver_defer(c->env->drv, &c->run); /* the first bytes may be there already */
}

static void conn_run(struct evio_deferred *r)
{
        struct conn *c = container_of(r, struct conn, run);

        if (c->state == CONN_CONNECTING)
                conn_run_connecting(c);
        else if (c->state == CONN_PROXY_HEADER)
                conn_run_proxy_header(c);
        else if (c->state == CONN_INSPECT)
                conn_run_inspect(c);
        else if (c->state == CONN_QUEUED)
                conn_run_queued(c);
        else
                conn_run_forwarding(c);
}

bool conn_admit(struct conn_env *env, struct listener *l, int fd, const struct sockaddr *sa,
                socklen_t len)
{
        const struct cfg_route *rc = l->route->cfg;
        bool access = l->gen->cfg->access_log;
        char client[ADDR_STRLEN];

        if (acl_allows(rc, sa))
                return true;
        close(fd);
        atomic_fetch_add_explicit(&l->route->st->refused_acl, 1, memory_order_relaxed);
        if (!access && !log_enabled(LOG_DEBUG))
                return false;
        conn_client_text(l, sa, len, client, sizeof(client));
        log_debug("route %s: client %s denied by allow/deny", rc->name, client);
        if (access)
                log_access(rc->name, client, "-", 0, 0, 0, conn_end_name(END_DENIED));
        return false;
}

static atomic_uint_least64_t conn_next_id;

struct conn *conn_new(struct conn_env *env, struct listener *l, int fd)
{
        struct conn *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        c->run.fn = conn_run;
        c->env = env;
        c->l = l;
        c->id = atomic_fetch_add_explicit(&conn_next_id, 1, memory_order_relaxed) + 1;
        gen_ref(l->gen); /* keeps the route and listener of this configuration alive */
        evio_reg_init(&c->creg, env->h, fd);
        evio_reg_init(&c->ureg, env->h, -1);
        evio_timer_init(&c->timer, conn_timer_fn, c);
        shaper_init(&c->shape, env->drv, &c->run);
        c->start_ms = c->last_ms = evio_driver_now_ms(env->drv);
        c->first_eof = NO_EOF;
        c->pick.current = -1;
        /* Every direction starts copying; in splice mode it moves to splice once it carries
         * a bulk flow (pump.c). */
        c->up.copy = c->down.copy = true;
        c->up.auto_splice = c->down.auto_splice = l->gen->cfg->forwarding == CFG_FORWARD_SPLICE;
        TAILQ_INSERT_TAIL(&env->conns, c, link);
        env->n_conns++;
        return c;
}

int conn_start(struct conn_env *env, struct listener *l, int fd, const struct sockaddr *sa,
               socklen_t len)
{
        struct conn *c = conn_new(env, l, fd);

        if (!c) {
                char client[ADDR_STRLEN];

                close(fd);
                conn_limits_release(env, l);
                log_error_errno(-ENOMEM, "route %s: accepting", l->route->cfg->name);
                if (l->gen->cfg->access_log) { /* every accepted connection has its line */
                        conn_client_text(l, sa, len, client, sizeof(client));
                        log_access(l->route->cfg->name, client, "-", 0, 0, 0,
                                   conn_end_name(END_ERROR));
                }
                return -ENOMEM;
        }
        keepalive_side(fd, sa->sa_family, &l->route->cfg->policy, false, l->route->cfg->name);
        if (addr_slot_set(&c->client, sa, len) < 0)
                log_warning("route %s: no memory to keep a client address: logged as unknown",
                            l->route->cfg->name);
        /* TCP_NODELAY: inherited from the listener (listener.c). */
        if (l->route->cfg->accept_proxy_protocol)
                conn_wait_header(c);
        else
                conn_begin_connect(c);
        return 0;
}

/* The admin socket's view (conn.h). */
_Static_assert(sizeof(((struct conn_snap *)0)->client) >= ADDR_STRLEN, "conn_snap.client");
_Static_assert(sizeof(((struct conn_snap *)0)->route) > CFG_ROUTE_NAME_MAX, "conn_snap.route");
_Static_assert(sizeof(((struct conn_snap *)0)->upstream_text) >=
                   sizeof(((struct cfg_addr *)0)->text),
               "conn_snap.upstream_text");

void conn_foreach(struct conn_env *env, bool (*fn)(struct conn *c, void *arg), void *arg)
{
        struct conn *c, *next;

        for (c = TAILQ_FIRST(&env->conns); c; c = next) {
                next = TAILQ_NEXT(c, link); /* fn may close c */
                if (!fn(c, arg))
                        return;
        }
}

void conn_snapshot(const struct conn *c, struct conn_snap *out)
{
        static const char *const states[] = {[CONN_CONNECTING] = "connecting",
                                             [CONN_FORWARDING] = "forwarding",
                                             [CONN_PROXY_HEADER] = "proxy_header",
                                             [CONN_INSPECT] = "inspecting",
                                             [CONN_QUEUED] = "queued"};
        uint64_t now = evio_now_ms();

        out->id = c->id;
        out->upstream =
            c->pick.current >= 0 && c->state != CONN_PROXY_HEADER && c->state != CONN_QUEUED
                ? &upstream_current(&c->pick)->addr
                : NULL;
        out->state = states[c->state];
        snprintf(out->route, sizeof(out->route), "%s", conn_route(c)->name);
        snprintf(out->upstream_text, sizeof(out->upstream_text), "%s",
                 out->upstream ? out->upstream->text : "-");
        conn_client_text(c->l, addr_slot_get(&c->client), c->client.len, out->client,
                         sizeof(out->client));
        out->age_ms = now - c->start_ms;
        out->idle_ms = now > c->last_ms ? now - c->last_ms : 0;
        out->bytes_in = c->up.bytes;
        out->bytes_out = c->down.bytes;
}

void conn_kill(struct conn *c)
{
        conn_close(c, END_KILLED, true, true);
}
