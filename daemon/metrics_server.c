/* The metrics endpoint and status page (status_page.h) on the main thread's driver. A
 * connection's life:
 *   READING --whole request head--> WRITING (status + body) --all sent--> shutdown(WR),
 *   DRAINING (read and drop until the client closes) --> closed
 *   READING --over 4 KiB, EOF, error, or 5 s--> closed; WRITING/DRAINING --10 s--> closed
 * Wakers and timers run on the main thread inside evio_driver_turn(); closing there is safe
 * because the driver frees a deregistered record only at its next turn. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <evproxy/driver.h>
#include <evproxy/registration.h>

#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "metrics_server.h"
#include "sock.h"
#include "status_page.h"

#define ACCEPT_RETRY_MS 100

enum mconn_state { MC_READING, MC_WRITING, MC_DRAINING };

struct mconn {
        TAILQ_ENTRY(mconn) link;
        struct metrics_server *m;
        struct evio_registration reg;
        struct evio_timer timer;
        enum mconn_state state;
        size_t in_len, out_off;
        struct mbuf out;
        char in[MHTTP_MAX_REQUEST];
};

struct metrics_server {
        struct daemon *d;
        struct cfg_addr addr;
        struct evio_registration lreg; /* the listening socket */
        struct evio_timer retry;
        struct sock_file file; /* a unix path's file we created */
        TAILQ_HEAD(, mconn) conns;
        unsigned n_conns;
        uint64_t started_ms; /* for the status page's uptime */
};

static void mconn_close(struct mconn *c)
{
        struct metrics_server *m = c->m;

        evio_timer_cancel(m->d->drv, &c->timer);
        evio_reg_close(&c->reg);
        mbuf_free(&c->out);
        TAILQ_REMOVE(&m->conns, c, link);
        m->n_conns--;
        free(c);
}

/* The body of a GET that parsed (200), and its Content-Type. 0 or -errno. */
static int mconn_body(struct mconn *c, const struct mhttp_request *req, struct mbuf *body,
                      const char **type)
{
        struct metrics_server *m = c->m;

        if (req->target != MHTTP_METRICS)
                return status_page_body(m->d, req->target, evio_now_ms() - m->started_ms, body,
                                        type);
        *type = "text/plain; version=0.0.4; charset=utf-8";
        return metrics_format(m->d, body);
}

static int mconn_respond(struct mconn *c, const struct mhttp_request *req)
{
        const char *type = "text/plain; charset=utf-8";
        struct mbuf body = {0};
        int r = 0;

        if (req->status == 200)
                r = mconn_body(c, req, &body, &type);
        else
                mbuf_printf(&body, "%d %s\n", req->status, mhttp_reason(req->status));
        if (r < 0 || body.failed) {
                mbuf_free(&body);
                return -ENOMEM;
        }
        mbuf_printf(&c->out,
                    "HTTP/1.%d %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                    "%sConnection: close\r\n\r\n",
                    req->minor == 0 ? 0 : 1, req->status, mhttp_reason(req->status), type, body.len,
                    req->status == 405 ? "Allow: GET\r\n" : "", STATUS_HTTP_HEADERS);
        if (body.len)
                mbuf_printf(&c->out, "%.*s", (int)body.len, body.data);
        mbuf_free(&body);
        if (c->out.failed)
                return -ENOMEM;
        c->state = MC_WRITING;
        return evio_timer_arm(c->m->d->drv, &c->timer, evio_now_ms() + METRICS_WRITE_TIMEOUT_MS);
}

/* Read what is there; false if the connection was closed. */
static bool mconn_read(struct mconn *c)
{
        struct mhttp_request req;
        char sink[512];
        ssize_t n;
        int r;

        for (;;) {
                bool draining = c->state == MC_DRAINING;

                n = draining ? recv(c->reg.fd, sink, sizeof(sink), 0)
                             : recv(c->reg.fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return true;
                if (n <= 0) {
                        mconn_close(c);
                        return false;
                }
                if (draining)
                        continue;
                c->in_len += (size_t)n;
                r = mhttp_parse(c->in, c->in_len, &req);
                if (r == 0)
                        continue;
                if (r < 0 || mconn_respond(c, &req) < 0) {
                        mconn_close(c); /* oversized request, or out of memory */
                        return false;
                }
                return true;
        }
}

/* Send what is left of the answer; false if the connection was closed. */
static bool mconn_write(struct mconn *c)
{
        while (c->out_off < c->out.len) {
                ssize_t n = send(c->reg.fd, c->out.data + c->out_off, c->out.len - c->out_off,
                                 MSG_NOSIGNAL);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return true;
                if (n < 0) {
                        mconn_close(c);
                        return false;
                }
                c->out_off += (size_t)n;
        }
        /* All out: let the client see EOF, and close once it has read it and closed. */
        mbuf_free(&c->out);
        c->out_off = 0;
        shutdown(c->reg.fd, SHUT_WR);
        c->state = MC_DRAINING;
        return true;
}

/* Edge-triggered: each wake-up reads and writes until EAGAIN, so no readiness is kept. */
static void mconn_wake(void *arg, uint32_t ready)
{
        struct mconn *c = arg;

        if (c->state != MC_WRITING && !mconn_read(c))
                return;
        if (c->state == MC_WRITING && !mconn_write(c))
                return;
        if (c->state == MC_DRAINING)
                (void)mconn_read(c);
}

static void mconn_timeout(struct evio_timer *t, void *arg)
{
        mconn_close(arg);
}

static void metrics_add_conn(struct metrics_server *m, int fd)
{
        struct evio_waker wk = {.fn = mconn_wake};
        struct mconn *c;
        int r;

        if (m->n_conns >= METRICS_MAX_CONNS || !(c = calloc(1, sizeof(*c)))) {
                log_debug("metrics: %u connections open, closing a new one", m->n_conns);
                close(fd);
                return;
        }
        c->m = m;
        evio_reg_init(&c->reg, evio_driver_handle(m->d->drv), fd);
        evio_timer_init(&c->timer, mconn_timeout, c);
        TAILQ_INSERT_TAIL(&m->conns, c, link);
        m->n_conns++;
        r = evio_timer_arm(m->d->drv, &c->timer, evio_now_ms() + METRICS_REQUEST_TIMEOUT_MS);
        wk.arg = c;
        if (r == 0)
                r = evio_reg_register(&c->reg, EVIO_INTEREST_READABLE | EVIO_INTEREST_WRITABLE,
                                      &wk);
        if (r < 0) {
                log_warning_errno(r, "metrics: accepting");
                mconn_close(c);
        }
        /* Registration reports data already there, so the waker runs if the request is in. */
}

static void metrics_accept(void *arg, uint32_t ready)
{
        struct metrics_server *m = arg;

        for (unsigned i = 0; i < 64; i++) {
                int fd = accept4(m->lreg.fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

                if (fd >= 0) {
                        metrics_add_conn(m, fd);
                        continue;
                }
                if (errno == EAGAIN)
                        return;
                if (errno == EINTR || errno == ECONNABORTED)
                        continue;
                break;
        }
        /* Out of fds, or a budget spent: edge-triggered, so look again a little later. */
        (void)evio_timer_arm(m->d->drv, &m->retry, evio_now_ms() + ACCEPT_RETRY_MS);
}

static void metrics_retry(struct evio_timer *t, void *arg)
{
        metrics_accept(arg, 0);
}

static int metrics_open(struct metrics_server *m)
{
        int fd = -1, r;

        r = sock_listen(&m->addr, 0, METRICS_UNIX_MODE, METRICS_MAX_CONNS * 4,
                        "metrics: ", &m->file, &fd);
        if (r < 0)
                return r;
        evio_reg_init(&m->lreg, evio_driver_handle(m->d->drv), fd);
        return 0;
}

int metrics_server_start(struct daemon *d, const struct cfg *cfg)
{
        struct metrics_server *m;
        struct evio_waker wk = {.fn = metrics_accept};
        int r;

        if (!cfg->has_metrics)
                return 0;
        m = calloc(1, sizeof(*m));
        if (!m)
                return log_error_errno(-ENOMEM, "metrics");
        m->d = d;
        m->started_ms = evio_now_ms();
        m->addr = cfg->metrics_listen; /* a copy: the configuration may be reloaded */
        m->lreg = EVIO_REGISTRATION_INIT;
        TAILQ_INIT(&m->conns);
        evio_timer_init(&m->retry, metrics_retry, m);
        d->metrics = m;
        r = metrics_open(m); /* logs what failed */
        if (r < 0) {
                metrics_server_stop(d);
                return r;
        }
        wk.arg = m;
        r = evio_reg_register(&m->lreg, EVIO_INTEREST_READABLE, &wk);
        if (r < 0) {
                log_error_errno(r, "metrics: registering %s", m->addr.text);
                metrics_server_stop(d);
                return r;
        }
        log_info("metrics: serving http://%s/metrics and the status page at http://%s/",
                 m->addr.text, m->addr.text);
        return 0;
}

int metrics_server_chown(struct daemon *d, uid_t uid, gid_t gid)
{
        return d->metrics
                   ? sock_file_chown(&d->metrics->file, &d->metrics->addr, uid, gid, "metrics: ")
                   : 0;
}

void metrics_server_stop(struct daemon *d)
{
        struct metrics_server *m = d->metrics;
        struct mconn *c;

        if (!m)
                return;
        /* mconn_close unlinks c before freeing it; the analyzer does not follow TAILQ_REMOVE. */
        while ((c = TAILQ_FIRST(&m->conns)))
                mconn_close(c); // NOLINT(clang-analyzer-unix.Malloc)
        evio_timer_cancel(d->drv, &m->retry);
        evio_reg_close(&m->lreg);
        sock_file_remove(&m->file, &m->addr, "metrics: ");
        free(m);
        d->metrics = NULL;
}
