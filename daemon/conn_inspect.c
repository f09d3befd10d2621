/* Inspecting a connection on a shared listen address (conn_inspect.h):
 *   wait --FIONREAD < need--> wait (woken by the next bytes, or the inspect_timeout timer)
 *     |enough bytes, EOF or timer: peek into the thread's buffer, inspect_parse()
 *     +--NEED_MORE--> need = what the parser wants; wait   (a full buffer is a bad hello)
 *     +--TLS/SSH/HTTP/other, or timer with no bytes--> choose the route --> move to it
 *     +--BAD, or a partial hello at the timer or EOF--> default route, or close (on_bad_hello)
 * Peeking leaves the bytes in the socket, so they reach the upstream once, after our PROXY
 * header, by the usual forwarding; the thread's buffer is never held between runs. */
#include <errno.h>
#include <stdio.h>
#include <sys/ioctl.h>

#include "acl.h"
#include "conn_inspect.h"
#include "gen.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"

enum result { R_TLS, R_SSH, R_HTTP, R_OTHER, R_TIMEOUT, R_BAD_HELLO, R_NO_MATCH, R_N };

static const char *const result_names[R_N] = {"tls",     "ssh",       "http",    "other",
                                              "timeout", "bad_hello", "no_match"};
static atomic_uint_least64_t results[R_N];

static _Thread_local uint8_t peek_buf[65536]; /* inspect_max is at most 64 KiB (config) */

struct peeked {
        uint8_t *data;
        size_t len;
};

static ssize_t peek(int fd, void *arg)
{
        struct peeked *p = arg;
        ssize_t n = recv(fd, p->data, p->len, MSG_PEEK);

        return n < 0 ? -errno : n;
}

static void count(enum result r)
{
        atomic_fetch_add_explicit(&results[r], 1, memory_order_relaxed);
}

/* Move the connection's share of the route limit from l to m, and apply m's rules: its access
 * list (the client address, from a PROXY header if one came) and max_connections. */
static int enter(struct listener *l, struct listener *m, const struct sockaddr *client,
                 enum conn_end *end)
{
        struct route_stats *st = m->route->st;
        unsigned max = m->route->cfg->max_connections;
        unsigned prev = atomic_fetch_add(&st->active, 1);

        atomic_fetch_sub(&l->route->st->active, 1);
        atomic_fetch_add_explicit(&st->accepted, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&st->matched, 1, memory_order_relaxed);
        if (!acl_allows(m->route->cfg, client)) {
                atomic_fetch_add_explicit(&st->refused_acl, 1, memory_order_relaxed);
                *end = END_DENIED;
                return -1;
        }
        if (max && prev >= max) { /* over the limit by this one: it goes again at close */
                atomic_fetch_add_explicit(&st->refused_limit, 1, memory_order_relaxed);
                *end = END_LIMIT;
                return -1;
        }
        return 1;
}

/* The bytes are in (or will never be): choose, count and move. */
static int decide(struct conn_inspect *ci, struct listener *l, const struct inspect_result *res,
                  enum result why, const struct sockaddr *client, struct listener **to,
                  enum conn_end *end)
{
        const struct lgroup *g = l->group;

        *to = NULL;
        if (res && res->kind == INSPECT_TLS)
                snprintf(ci->sni, sizeof(ci->sni), "%s", res->sni);
        if (why == R_BAD_HELLO && g->cfg.bad_hello_close) {
                ci->rule = (struct lgroup_rule){"bad_hello", ""};
                count(R_BAD_HELLO);
                *end = END_BAD_HELLO;
                return -1;
        }
        *to = lgroup_choose(g, res, &ci->rule);
        if (!*to) {
                count(why == R_BAD_HELLO ? R_BAD_HELLO : R_NO_MATCH);
                *end = why == R_BAD_HELLO ? END_BAD_HELLO : END_NO_MATCH;
                return -1;
        }
        count(why);
        if (why == R_BAD_HELLO)
                ci->rule = (struct lgroup_rule){"bad_hello", ""};
        return enter(l, *to, client, end);
}

static enum result result_of(enum inspect_kind k)
{
        return k == INSPECT_TLS    ? R_TLS
               : k == INSPECT_SSH  ? R_SSH
               : k == INSPECT_HTTP ? R_HTTP
               : k == INSPECT_BAD  ? R_BAD_HELLO
                                   : R_OTHER;
}

int conn_inspect_run(struct conn_inspect *ci, struct evio_registration *creg, bool timed_out,
                     struct listener *l, const struct sockaddr *client, struct listener **to,
                     enum conn_end *end)
{
        size_t cap = l->group->cfg.inspect_max;
        struct peeked p = {peek_buf, cap};
        struct evio_ready_event ev = {0};
        struct inspect_result res;
        bool over = timed_out;
        int avail = 0;
        ssize_t n;

        *to = NULL;
        if (evio_reg_poll_ready(creg, EVIO_DIRECTION_READ, &ev) != 0) {
                if (!timed_out)
                        return 0; /* woken for writing, or early: no bytes yet */
        } else if (ev.ready & (EVIO_READY_READ_CLOSED | EVIO_READY_ERROR)) {
                over = true; /* nothing more will come */
        }
        /* After a partial hello, count the bytes in before copying them all again. */
        if (!over && ci->need > 0 &&
            (ioctl(creg->fd, FIONREAD, &avail) < 0 || (size_t)avail < ci->need))
                return 0;
        n = peek(creg->fd, &p);
        if (n == -EAGAIN)
                n = 0;
        if (n < 0) {
                *end = n == -ECONNRESET ? END_RESET : END_ERROR;
                return -1;
        }
        if (n == 0 && !timed_out) {
                if (!over)
                        return 0;
                *end = END_CLIENT_CLOSED;
                return -1;
        }
        if (n == 0) /* server speaks first, or a silent client */
                return decide(ci, l, NULL, R_TIMEOUT, client, to, end);
        if (inspect_parse(peek_buf, (size_t)n, cap, &res) == INSPECT_NEED_MORE) {
                if ((size_t)n < cap && !over) {
                        ci->need = res.need;
                        return 0;
                }
                /* Full buffer, EOF or timer: a partial hello is bad; other bytes are other. */
                res.kind = peek_buf[0] == 22 || (peek_buf[0] & 0x80) ? INSPECT_BAD : INSPECT_OTHER;
        }
        return decide(ci, l, &res, result_of(res.kind), client, to, end);
}

const char *conn_inspect_log_fields(const struct conn_inspect *ci, char *buf, size_t size)
{
        if (!ci)
                return "";
        snprintf(buf, size, " sni=%s match=%s%s%s", ci->sni[0] ? ci->sni : "-",
                 ci->rule.kind ? ci->rule.kind : "-",
                 ci->rule.value && ci->rule.value[0] ? ":" : "",
                 ci->rule.value ? ci->rule.value : "");
        return buf;
}

void conn_inspect_metrics(struct mbuf *b, const struct gen *g)
{
        mbuf_printf(b, "# HELP evproxy_inspect_total Connections on shared listen addresses by "
                       "what their first bytes were (timeout: none came within "
                       "inspect_timeout; no_match: no route took them).\n"
                       "# TYPE evproxy_inspect_total counter\n");
        for (int i = 0; i < R_N; i++)
                mbuf_printf(b, "evproxy_inspect_total{result=\"%s\"} %llu\n", result_names[i],
                            (unsigned long long)atomic_load(&results[i]));
        mbuf_printf(b, "# HELP evproxy_route_matched_total Connections a shared listen address "
                       "gave the route after inspecting them.\n"
                       "# TYPE evproxy_route_matched_total counter\n");
        for (size_t i = 0; g && i < g->n_routes; i++) {
                mbuf_printf(b, "evproxy_route_matched_total{route=\"");
                metrics_label_value(b, g->routes[i].cfg->name);
                mbuf_printf(b, "\"} %llu\n",
                            (unsigned long long)atomic_load(&g->routes[i].st->matched));
        }
}
