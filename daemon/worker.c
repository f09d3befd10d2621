/* Worker threads: each runs its own driver, accepts on its listener sockets (accept4 until
 * EAGAIN, a budget per run for fairness), applies the connection limits and hands sockets to
 * conn.c. On EMFILE/ENFILE all its listeners pause for ACCEPT_PAUSE_MS instead of spinning.
 * Wakers and timers only defer work; the driver runs it in each turn's deferred pass. */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <evproxy/registration.h>

#include "addr.h"
#include "conn.h"
#include "gen.h"
#include "lgroup.h"
#include "listener.h"
#include "log.h"
#include "worker.h"

#define ACCEPT_BUDGET   64
#define ACCEPT_PAUSE_MS 100
#define PIPES_KEPT      64
#define BUFS_KEPT       16
#define PIPE_MIN_SIZE   ((size_t)256 * 1024)

struct wlistener {
        struct evio_deferred run;
        struct worker *w;
        struct listener *l;
        struct lsock *sock;
        struct evio_registration reg; /* of sock->fd, which is the lsock's: never closed here */
};

/* Take one unit of a limit (0 = no limit, still counted). */
static bool limit_take(atomic_uint *count, unsigned max)
{
        unsigned prev = atomic_fetch_add(count, 1);

        if (max && prev >= max) {
                atomic_fetch_sub(count, 1);
                return false;
        }
        return true;
}

static void worker_reject(struct worker *w, struct listener *l, int fd, const struct sockaddr *sa,
                          socklen_t len, const char *which, unsigned max)
{
        bool access = l->gen->cfg->access_log;
        char client[ADDR_STRLEN];

        close(fd);
        atomic_fetch_add(&l->route->st->refused_limit, 1);
        atomic_fetch_add(&w->sh->refused_limit, 1);
        if (!access && !log_enabled(LOG_DEBUG))
                return;
        conn_client_text(l, sa, len, client, sizeof(client));
        log_debug("route %s: %s connection limit (%u) reached, closed client %s",
                  l->route->cfg->name, which, max, client);
        if (access)
                log_access(l->route->cfg->name, client, "-", 0, 0, 0, "limit");
}

static void worker_accept(struct worker *w, struct listener *l, int fd, const struct sockaddr *sa,
                          socklen_t len)
{
        struct route *rt = l->route;
        unsigned max = w->env.gen->cfg->max_connections;

        atomic_fetch_add_explicit(&rt->st->accepted, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&w->accepted, 1, memory_order_relaxed);
        if (!conn_admit(&w->env, l, fd, sa, len)) /* allow/deny (acl.c), before any limit */
                return;
        if (!limit_take(&w->sh->active, max)) {
                worker_reject(w, l, fd, sa, len, "global", max);
                return;
        }
        if (!limit_take(&rt->st->active, rt->cfg->max_connections)) {
                unsigned prev = atomic_fetch_sub(&w->sh->active, 1);

                assert(prev > 0);
                (void)prev;
                worker_reject(w, l, fd, sa, len, "route", rt->cfg->max_connections);
                return;
        }
        conn_start(&w->env, l, fd, sa, len);
}

/* Out of file descriptors (or memory): the limit is process-wide, so every listener of this
 * worker pauses; a timer resumes them. Warn on the first pause of a streak only. */
static void worker_pause_accepting(struct worker *w, int r)
{
        if (w->env.pause_streak++ == 0)
                log_warning_errno(r, "worker %u: accepting paused for %d ms", w->id,
                                  ACCEPT_PAUSE_MS);
        if (w->accept_paused)
                return;
        w->accept_paused = true;
        if (evio_timer_arm(w->env.drv, &w->pause_timer, evio_now_ms() + ACCEPT_PAUSE_MS) < 0)
                w->accept_paused = false; /* cannot arm: retry on the next event instead */
}

static void env_pause_accepting(struct conn_env *env, int r)
{
        worker_pause_accepting(container_of(env, struct worker, env), r);
}

static void worker_resume_accepting(struct evio_timer *t, void *arg)
{
        struct worker *w = arg;

        w->accept_paused = false;
        for (size_t i = 0; i < w->n_ls; i++)
                evio_driver_defer(w->env.drv, &w->ls[i].run);
}

struct accepted {
        struct sockaddr_storage ss;
        socklen_t len;
};

static ssize_t accept_one(int lfd, void *arg)
{
        struct accepted *a = arg;
        int fd;

        a->len = sizeof(a->ss);
        fd = accept4(lfd, (struct sockaddr *)&a->ss, &a->len, SOCK_CLOEXEC | SOCK_NONBLOCK);
        return fd < 0 ? -errno : fd;
}

static void wl_run(struct evio_deferred *r)
{
        struct wlistener *wl = container_of(r, struct wlistener, run);
        struct accepted a;
        ssize_t fd;

        if (wl->w->accept_paused || !evio_reg_is_registered(&wl->reg))
                return;
        for (unsigned i = 0; i < ACCEPT_BUDGET; i++) {
                fd = evio_reg_try_io(&wl->reg, EVIO_DIRECTION_READ, accept_one, &a, NULL);
                if (fd >= 0) {
                        worker_accept(wl->w, wl->l, (int)fd, (struct sockaddr *)&a.ss, a.len);
                        /* Out of fds for the upstream side: leave the rest in the backlog
                         * (readiness is kept; the resume timer picks it up). */
                        if (wl->w->accept_paused)
                                return;
                        continue;
                }
                switch (fd) {
                case -EAGAIN: /* nothing waiting: readiness cleared if accept4 said so */
                        return;
                case -ECONNABORTED:
                case -EPROTO:
                case -EPERM:
                        break;
                case -EMFILE:
                case -ENFILE:
                case -ENOBUFS:
                case -ENOMEM:
                        worker_pause_accepting(wl->w, (int)fd);
                        return;
                default:
                        log_error_errno((int)fd, "listen %s: accept", wl->l->addr->text);
                        worker_pause_accepting(wl->w, (int)fd);
                        return;
                }
        }
        evio_driver_defer(wl->w->env.drv, &wl->run); /* budget spent: others get a turn first */
}

static void wl_wake(void *arg, uint32_t ready)
{
        struct wlistener *wl = arg;

        evio_driver_defer(wl->w->env.drv, &wl->run);
}

static void wl_release(struct worker *w, struct wlistener *wl)
{
        evio_driver_undefer(w->env.drv, &wl->run);
        (void)evio_reg_deregister(&wl->reg); /* the fd stays open: other users, or lsock's close */
        if (wl->sock) {
                lsock_release(wl->sock);
                wl->sock = NULL;
        }
}

static void worker_release_listeners(struct worker *w)
{
        for (size_t i = 0; i < w->n_ls; i++)
                wl_release(w, &w->ls[i]);
}

static int wl_register(struct worker *w, struct wlistener *wl)
{
        const struct evio_waker wk = {.fn = wl_wake, .arg = wl};
        int r;

        wl->sock = lset_sock(wl->l->set, w->id);
        r = evio_reg_open(&wl->reg, w->env.h, wl->sock->fd, EVIO_INTEREST_READABLE, &wk);
        if (r < 0) {
                /* Not registered, so never accepted on: let go of the socket at once rather
                 * than keep a backlog nobody reads. A TCP listener's socket is this worker's
                 * own SO_REUSEPORT one: it closes, the kernel takes it out of the port's group
                 * and spreads new connections over the other workers' sockets, which accept
                 * as before. A shared (unix) socket stays open for the workers that did
                 * register it, and closes if none did (reload.c, hold_sockets). The socket is
                 * the set's, so the registration hands it back rather than closing it. */
                (void)evio_reg_deregister(&wl->reg);
                lsock_release(wl->sock);
                wl->sock = NULL;
                return log_error_errno(r, "worker %u: registering %s", w->id, wl->l->addr->text);
        }
        evio_driver_defer(w->env.drv, &wl->run); /* connections may already be waiting */
        return 0;
}

/* A listener whose socket set the worker already accepts on keeps its registration: only the
 * waker moves to the new entry, so a reload never closes or re-opens a kept listener. */
static bool wl_take_over(struct worker *w, struct wlistener *wl, struct wlistener *old,
                         size_t n_old)
{
        for (size_t i = 0; i < n_old; i++) {
                const struct evio_waker wk = {.fn = wl_wake, .arg = wl};

                if (!evio_reg_is_registered(&old[i].reg) || old[i].l->set != wl->l->set)
                        continue;
                wl->sock = old[i].sock;
                wl->reg = old[i].reg;
                old[i].sock = NULL;
                old[i].reg = EVIO_REGISTRATION_INIT;
                evio_driver_undefer(w->env.drv, &old[i].run);
                evio_reg_set_waker(&wl->reg, &wk);
                evio_driver_defer(w->env.drv, &wl->run); /* readiness may have come in between */
                return true;
        }
        return false;
}

/* Accept for generation g from now on, with ls (g->n_listeners zeroed entries, allocated by the
 * caller so that applying a generation allocates nothing). g's reference and ls pass to the
 * worker. -EIO if some listener could not be registered: this worker does not accept on it
 * (wl_register), it accepts on all the others. */
static int worker_set_gen(struct worker *w, struct gen *g, struct wlistener *ls)
{
        struct wlistener *old = w->ls;
        size_t n_old = w->n_ls;
        int r = 0;

        for (size_t i = 0; i < g->n_listeners; i++) {
                struct wlistener *wl = &ls[i];

                wl->run.fn = wl_run;
                wl->w = w;
                wl->l = &g->listeners[i];
                if (!wl_take_over(w, wl, old, n_old) && wl_register(w, wl) < 0)
                        r = -EIO;
        }
        for (size_t i = 0; i < n_old; i++)
                wl_release(w, &old[i]); /* what the new generation dropped */
        free(old);
        w->ls = ls;
        w->n_ls = g->n_listeners;
        gen_unref(w->env.gen);
        w->env.gen = g;
        conn_queue_retry_all(&w->env);
        return r;
}

static struct wlistener *wl_array(const struct gen *g)
{
        return calloc(g->n_listeners ? g->n_listeners : 1, sizeof(struct wlistener));
}

static int worker_add_listeners(struct worker *w, struct gen *g)
{
        struct wlistener *ls = wl_array(g);

        if (!ls)
                return log_error_errno(-ENOMEM, "worker %u: listeners", w->id);
        return worker_set_gen(w, gen_ref(g), ls);
}

struct worker_reload {
        struct evio_driver_task task;
        struct worker *w;
        struct gen *g;
        struct wlistener *ls;
};

static void reload_task_fn(struct evio_driver_task *t)
{
        struct worker_reload *rt = container_of(t, struct worker_reload, task);
        struct worker *w = rt->w;

        if (w->draining) { /* stopping: listeners are gone for good */
                gen_unref(rt->g);
                free(rt->ls);
        } else if (worker_set_gen(w, rt->g, rt->ls) < 0) {
                atomic_fetch_add(&w->sh->reload_errors, 1);
        }
        free(rt);
        atomic_fetch_add(&w->sh->reload_acks, 1);
        evio_handle_unpark(w->sh->main);
}

int worker_reload_new(struct worker *w, struct gen *g, struct worker_reload **out)
{
        struct worker_reload *rt = calloc(1, sizeof(*rt));

        if (!rt || !(rt->ls = wl_array(g))) {
                free(rt);
                return log_error_errno(-ENOMEM, "worker %u: preparing the reload", w->id);
        }
        rt->task.fn = reload_task_fn;
        rt->w = w;
        rt->g = gen_ref(g);
        *out = rt;
        return 0;
}

void worker_reload_post(struct worker_reload *rt)
{
        evio_handle_post(rt->w->env.h, &rt->task);
}

void worker_reload_free(struct worker_reload *rt)
{
        if (!rt)
                return;
        gen_unref(rt->g);
        free(rt->ls);
        free(rt);
}

static void worker_begin_drain(struct worker *w)
{
        uint64_t ms = w->env.gen->cfg->drain_timeout_ms;

        if (w->draining)
                return;
        w->draining = true;
        evio_timer_cancel(w->env.drv, &w->pause_timer);
        worker_release_listeners(w);
        if (w->env.n_conns == 0)
                return;
        if (ms == 0 || evio_timer_arm(w->env.drv, &w->drain_timer, evio_now_ms() + ms) < 0)
                w->drain_expired = true;
}

static void drain_task_fn(struct evio_driver_task *t)
{
        worker_begin_drain(container_of(t, struct worker, drain_task));
}

static void stop_task_fn(struct evio_driver_task *t)
{
        struct worker *w = container_of(t, struct worker, stop_task);

        worker_begin_drain(w);
        w->drain_expired = true;
}

static void drain_timer_fn(struct evio_timer *t, void *arg)
{
        struct worker *w = arg;

        w->drain_expired = true;
}

static void worker_check_drain(struct worker *w)
{
        if (!w->draining)
                return;
        if (w->drain_expired && w->env.n_conns)
                conn_close_all(&w->env, END_SHUTDOWN);
        if (w->env.n_conns == 0) {
                evio_timer_cancel(w->env.drv, &w->drain_timer);
                w->exit = true;
        }
}

static void *worker_main(void *arg)
{
        struct worker *w = arg;
        int r;

        while (!w->exit) {
                r = evio_driver_turn(w->env.drv, -1); /* returns at once with work deferred */
                if (r < 0) {
                        log_error_errno(r, "worker %u: driver", w->id);
                        break;
                }
                worker_check_drain(w);
        }
        worker_release_listeners(w);
        conn_close_all(&w->env, END_SHUTDOWN);
        atomic_fetch_add(&w->sh->workers_exited, 1);
        evio_handle_unpark(w->sh->main);
        return NULL;
}

/* Splice pipes hold at least PIPE_MIN_SIZE: the kernel gives a pipe its pages only as data
 * arrives, so an idle connection costs no more, while a bulk flow needs a quarter of the splice
 * calls (measured: 1.6x less CPU per GB than 64 KiB pipes). A stalled one does hold a full pipe:
 * what all of them may hold is bounded by pipe_memory (pool.h), past which directions copy. */
static size_t pipe_size(size_t buffer_size)
{
        return buffer_size > PIPE_MIN_SIZE ? buffer_size : PIPE_MIN_SIZE;
}

/* The budget every worker's pool counts against; the first worker sets its limit. */
static void worker_init_pipes(struct worker *w, const struct cfg *cfg)
{
        struct pipe_budget *b = &w->sh->pipe_budget;

        pipe_pool_init(&w->env.pipes, pipe_size(cfg->buffer_size), PIPES_KEPT);
        pipe_pool_set_budget(&w->env.pipes, b);
        if (w->id != 0)
                return;
        pipe_budget_set_limit(b, cfg->pipe_memory);
        if (cfg->forwarding == CFG_FORWARD_SPLICE && cfg->pipe_memory < w->env.pipes.size)
                log_warning("pipe_memory (%zu bytes) holds no splice pipe (%zu bytes): every "
                            "connection copies",
                            cfg->pipe_memory, w->env.pipes.size);
}

static void ping_task_fn(struct evio_driver_task *t)
{
        struct worker *w = container_of(t, struct worker, ping_task);

        atomic_fetch_add(&w->sh->watchdog_acks, 1);
}

static void qkick_task_fn(struct evio_driver_task *t)
{
        struct worker *w = container_of(t, struct worker, qkick_task);

        conn_queue_claim(&w->env);
}

/* Every other worker looks for a queued client that can claim the freed slot. A task still
 * queued is not queued twice: one run claims every credit it can. */
static void env_kick_others(struct conn_env *env)
{
        struct worker *w = container_of(env, struct worker, env);

        for (unsigned i = 0; w->sh->workers && i < w->sh->n_workers; i++) {
                struct worker *o = w->sh->workers[i];

                if (o && o != w)
                        evio_handle_post(o->env.h, &o->qkick_task);
        }
}

int worker_new(struct worker_shared *sh, struct gen *g, unsigned id, struct worker **out)
{
        struct worker *w = calloc(1, sizeof(*w));
        int r;

        if (!w)
                return log_error_errno(-ENOMEM, "worker %u", id);
        w->id = id;
        w->sh = sh;
        w->env.active = &sh->active;
        w->env.pause_accepting = env_pause_accepting;
        w->env.clients = sh->clients;
        TAILQ_INIT(&w->env.conns);
        cq_init(&w->env.queue);
        worker_init_pipes(w, g->cfg);
        buf_pool_init(&w->env.bufs, g->cfg->buffer_size, BUFS_KEPT);
        evio_timer_init(&w->drain_timer, drain_timer_fn, w);
        evio_timer_init(&w->pause_timer, worker_resume_accepting, w);
        w->drain_task.fn = drain_task_fn;
        w->stop_task.fn = stop_task_fn;
        w->ping_task.fn = ping_task_fn;
        w->qkick_task.fn = qkick_task_fn;
        w->env.kick_others = env_kick_others;
        r = evio_driver_new(&w->env.drv, NULL);
        if (r < 0) {
                log_error_errno(r, "worker %u: creating driver", id);
                goto err_free;
        }
        w->env.h = evio_driver_handle(w->env.drv);
        r = worker_add_listeners(w, g);
        if (r < 0)
                goto err_free;
        *out = w;
        return 0;

err_free:
        worker_free(w);
        return r;
}

int worker_start(struct worker *w)
{
        int r = pthread_create(&w->thread, NULL, worker_main, w);

        if (r != 0)
                return log_error_errno(-r, "worker %u: starting thread", w->id);
        w->started = true;
        return 0;
}

void worker_join(struct worker *w)
{
        if (w && w->started) {
                pthread_join(w->thread, NULL);
                w->started = false;
        }
}

void worker_free(struct worker *w)
{
        if (!w)
                return;
        if (w->env.drv) {
                worker_release_listeners(w);
                conn_close_all(&w->env, END_SHUTDOWN);
                evio_timer_cancel(w->env.drv, &w->drain_timer);
                evio_timer_cancel(w->env.drv, &w->pause_timer);
        }
        free(w->ls);
        ho_state_close_fds(&w->ho); /* records a failed handover left with it */
        ho_state_free(&w->ho);
        gen_unref(w->env.gen);
        pipe_pool_destroy(&w->env.pipes);
        buf_pool_destroy(&w->env.bufs);
        evio_driver_free(w->env.drv);
        free(w);
}

void worker_drain(struct worker *w)
{
        evio_handle_post(w->env.h, &w->drain_task);
}

void worker_stop(struct worker *w)
{
        evio_handle_post(w->env.h, &w->stop_task);
}

void worker_ping(struct worker *w)
{
        evio_handle_post(w->env.h, &w->ping_task);
}

int worker_post(struct worker *w, struct evio_driver_task *task)
{
        return evio_handle_post(w->env.h, task);
}

void worker_driver_metrics(struct worker *w, struct evio_driver_metrics *out)
{
        evio_handle_metrics(w->env.h, out);
}

uint64_t worker_accepted(struct worker *w)
{
        return atomic_load_explicit(&w->accepted, memory_order_relaxed);
}

/* ---- Handover (handover.c) ---- */

static bool export_one(struct conn *c, void *arg)
{
        struct worker *w = arg;

        w->ho_err = conn_handover_export(c, &w->ho);
        return w->ho_err == 0;
}

static void ho_quiesce_fn(struct evio_driver_task *t)
{
        struct worker *w = container_of(t, struct worker, ho_quiesce_task);

        w->ho_err = w->draining ? -ESHUTDOWN : 0;
        if (!w->draining) {
                for (size_t i = 0; i < w->n_ls; i++) {
                        evio_driver_undefer(w->env.drv, &w->ls[i].run);
                        (void)evio_reg_deregister(&w->ls[i].reg); /* wl->sock stays ours */
                }
                evio_timer_cancel(w->env.drv, &w->pause_timer);
                w->accept_paused = false;
                w->ho_quiesced = true;
                conn_foreach(&w->env, export_one, w);
        }
        atomic_fetch_add(&w->sh->handover_acks, 1);
        evio_handle_unpark(w->sh->main);
}

static in_port_t port_of(const struct sockaddr_storage *ss)
{
        struct sockaddr_in6 s6;
        struct sockaddr_in s4;

        if (ss->ss_family == AF_INET) {
                memcpy(&s4, ss, sizeof(s4));
                return s4.sin_port;
        }
        if (ss->ss_family == AF_INET6) {
                memcpy(&s6, ss, sizeof(s6));
                return s6.sin6_port;
        }
        return 0;
}

/* Does listen address a take connections to local (the accepted socket's own address)? */
static bool addr_serves(const struct cfg_addr *a, const struct sockaddr_storage *local,
                        socklen_t len)
{
        struct sockaddr_storage la;

        if (a->kind != CFG_ADDR_INET)
                return a->sa_len == len && memcmp(&a->sa, local, len) == 0;
        if (port_of(&a->sa) != port_of(local) || port_of(local) == 0)
                return false;
        if (a->wildcard)
                return true;
        if (a->sa.ss_family != local->ss_family)
                return false;
        memcpy(&la, local, sizeof(la));
        return a->sa.ss_family == AF_INET
                   ? ((const struct sockaddr_in *)&a->sa)->sin_addr.s_addr ==
                         ((const struct sockaddr_in *)&la)->sin_addr.s_addr
                   : memcmp(&((const struct sockaddr_in6 *)&a->sa)->sin6_addr,
                            &((const struct sockaddr_in6 *)&la)->sin6_addr,
                            sizeof(struct in6_addr)) == 0;
}

/* The listener a handed-over connection of route `route` belongs to in w's generation: the
 * route's own, or a member of a shared address's group; one still choosing its route (the
 * stand-in route "-" of a group) goes back to the group whose address its socket has. */
static struct listener *import_listener(struct worker *w, const char *route, int cfd)
{
        struct sockaddr_storage local = {0};
        socklen_t len = sizeof(local);
        bool have_local = cfd >= 0 && getsockname(cfd, (struct sockaddr *)&local, &len) == 0;

        for (size_t i = 0; i < w->env.gen->n_listeners; i++) {
                struct listener *l = &w->env.gen->listeners[i];

                if (!l->group) {
                        if (strcmp(l->route->cfg->name, route) == 0)
                                return l;
                        continue;
                }
                if (strcmp(route, l->route->cfg->name) == 0) {
                        if (have_local && addr_serves(l->addr, &local, len))
                                return l;
                        continue;
                }
                for (size_t j = 0; j < l->group->n_members; j++)
                        if (strcmp(l->group->members[j].route->cfg->name, route) == 0)
                                return &l->group->members[j];
        }
        return NULL;
}

int worker_handover_import(struct worker *w, struct ho_conn *h, struct listener *l)
{
        int r = -ENOENT;

        if (!l)
                l = import_listener(w, h->route, h->cfd);
        if (l)
                r = conn_handover_import(&w->env, l, h);
        else
                log_warning("handover: route %s is gone: closing one of its connections", h->route);
        if (h->cfd >= 0)
                close(h->cfd);
        if (h->ufd >= 0)
                close(h->ufd);
        h->cfd = h->ufd = -1;
        return r;
}

static void ho_resume_fn(struct evio_driver_task *t)
{
        struct worker *w = container_of(t, struct worker, ho_resume_task);

        for (size_t i = 0; w->ho_quiesced && i < w->n_ls; i++) {
                struct wlistener *wl = &w->ls[i];
                const struct evio_waker wk = {.fn = wl_wake, .arg = wl};
                int r;

                if (!wl->sock)
                        continue;
                r = evio_reg_open(&wl->reg, w->env.h, wl->sock->fd, EVIO_INTEREST_READABLE, &wk);
                if (r < 0) { /* as wl_register: let go rather than keep an unread backlog */
                        (void)evio_reg_deregister(&wl->reg);
                        lsock_release(wl->sock);
                        wl->sock = NULL;
                        log_error_errno(r, "worker %u: registering %s again", w->id,
                                        wl->l->addr->text);
                        continue;
                }
                evio_driver_defer(w->env.drv, &wl->run);
        }
        w->ho_quiesced = false;
        for (size_t i = 0; i < w->ho.n_cs; i++)
                (void)worker_handover_import(w, &w->ho.cs[i], NULL);
        ho_state_free(&w->ho);
        atomic_fetch_add(&w->sh->handover_acks, 1);
        evio_handle_unpark(w->sh->main);
}

void worker_handover_quiesce(struct worker *w)
{
        w->ho_quiesce_task.fn = ho_quiesce_fn;
        evio_handle_post(w->env.h, &w->ho_quiesce_task);
}

void worker_handover_resume(struct worker *w)
{
        w->ho_resume_task.fn = ho_resume_fn;
        evio_handle_post(w->env.h, &w->ho_resume_task);
}
