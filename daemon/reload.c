/* SIGHUP: configuration reload without dropping a connection.
 *   load + validate --bad--> log file:line, STATUS=, keep running as before
 *        |good
 *   new generation; bind: kept addresses reuse their open sockets, added ones are opened
 *        |                                              (failure: close those, keep the old)
 *   post the generation to every worker (all or none) --all applied--> free retired sockets,
 *        READY=1 (a worker that cannot register a new listener closes its socket: wl_register)
 * Workers move kept listeners' registrations over untouched, so no client is ever refused. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <evproxy/sd.h>

#include "admin.h"
#include "daemon.h"
#include "dns.h"
#include "gen.h"
#include "listener.h"
#include "log.h"
#include "worker.h"

static struct lsockset *find_set(struct daemon *d, const struct cfg_addr *addr, int passed_fd)
{
        for (struct lsockset *s = d->sets; s; s = s->next) {
                if (passed_fd >= 0 ? s->passed && s->socks[0].fd == passed_fd
                                   : !s->passed && cfg_addr_equal(&s->addr, addr))
                        return s;
        }
        return NULL;
}

static int bind_one(struct daemon *d, struct gen *g, size_t ri, const struct cfg_addr *addr,
                    int passed_fd)
{
        struct lsockset *set = find_set(d, addr, passed_fd);
        int r;

        if (!set) {
                r = lset_open(addr, g->cfg->routes[ri].unix_mode, d->n_workers, passed_fd, &set);
                if (r < 0)
                        return r;
                set->next = d->sets;
                d->sets = set;
        }
        r = gen_add_listener(g, ri, addr, set);
        return r < 0 ? log_error_errno(r, "listen %s", addr->text) : 0;
}

static int bind_systemd(struct daemon *d, struct gen *g, size_t ri, const struct cfg_addr *addr)
{
        size_t found = 0;
        int r;

        for (size_t i = 0; i < d->n_passed; i++) {
                if (strcmp(d->passed[i].name, addr->name) != 0)
                        continue;
                r = bind_one(d, g, ri, addr, d->passed[i].fd);
                if (r < 0)
                        return r;
                found++;
        }
        if (found == 0) {
                log_error("listen %s: systemd passed no socket named \"%s\"", addr->text,
                          addr->name);
                return -ENOENT;
        }
        return 0;
}

/* daemon_bind(), which on failure also points *failed at the address that failed (the reason
 * evproxyctl reload and STATUS= give). */
static int bind_all(struct daemon *d, struct gen *g, const struct cfg_addr **failed)
{
        struct lsockset *before = d->sets;
        int r = 0;

        for (size_t i = 0; i < g->cfg->n_routes && r == 0; i++) {
                const struct cfg_route *rc = &g->cfg->routes[i];

                for (size_t j = 0; j < rc->n_listen && r == 0; j++) {
                        if (rc->listen[j].kind == CFG_ADDR_SYSTEMD)
                                r = bind_systemd(d, g, i, &rc->listen[j]);
                        else
                                r = bind_one(d, g, i, &rc->listen[j], -1);
                        if (r < 0)
                                *failed = &rc->listen[j];
                }
        }
        if (r < 0) {
                while (d->sets != before) { /* close what this call opened */
                        struct lsockset *s = d->sets;
                        d->sets = s->next;
                        lset_free(s);
                }
        }
        return r;
}

int daemon_bind(struct daemon *d, struct gen *g, const struct gen *prev)
{
        const struct cfg_addr *failed = NULL;

        (void)prev; /* sets in use by prev are exactly those in d->sets (reloads are serial) */
        return bind_all(d, g, &failed);
}

/* The reason a reload gives when bind_all() failed at the address failed with r. */
static void bind_failure(const struct cfg_addr *failed, int r, char *msg, size_t n)
{
        if (failed && failed->kind == CFG_ADDR_SYSTEMD && r == -ENOENT)
                snprintf(msg, n, "listen %s: systemd passed no socket named \"%s\"", failed->text,
                         failed->name);
        else
                snprintf(msg, n, "listen %s: %s", failed ? failed->text : "?", strerror(-r));
}

static bool gen_uses(const struct gen *g, const struct lsockset *s)
{
        for (size_t i = 0; g && i < g->n_listeners; i++)
                if (g->listeners[i].set == s)
                        return true;
        return false;
}

void daemon_free_unused_sets(struct daemon *d, const struct gen *keep)
{
        for (struct lsockset **p = &d->sets; *p;) {
                struct lsockset *s = *p;

                if (!gen_uses(keep, s) && lset_unused(s)) {
                        *p = s->next;
                        lset_free(s);
                } else {
                        p = &s->next;
                }
        }
}

static void reload_failed(struct daemon *d, const char *why)
{
        log_error("reload failed, still running on the previous configuration: %s", why);
        /* STATUS= gets the gist; the log line above has it whole. */
        size_t n = sizeof(d->reload_status);
        int w = snprintf(d->reload_status, n, "last reload failed: ");
        strncat(d->reload_status, why, n - (size_t)w - 1);
        evsd_notify_ready(d->reload_status);
        admin_reload_done(d, why); /* evproxyctl reload waits for this */
}

static void warn_restart_only(const struct cfg *old, const struct cfg *new)
{
        if (old->workers != new->workers)
                log_warning("reload: \"workers\" changes take effect at the next restart");
        if ((old->user == NULL) != (new->user == NULL) ||
            (old->user && strcmp(old->user, new->user) != 0))
                log_warning("reload: \"user\" changes take effect at the next restart");
        if (old->buffer_size != new->buffer_size)
                log_warning("reload: \"buffer_size\" changes take effect at the next restart");
        if (old->has_metrics != new->has_metrics ||
            (old->has_metrics && !cfg_addr_equal(&old->metrics_listen, &new->metrics_listen)))
                log_warning("reload: \"metrics\" changes take effect at the next restart");
        if (old->client_table_size != new->client_table_size)
                log_warning(
                    "reload: \"client_table_size\" changes take effect at the next restart");
        if (strcmp(old->handover.socket, new->handover.socket) != 0)
                log_warning("reload: \"handover.socket\" changes take effect at the next restart");
}

static size_t count_reused(const struct gen *g, const struct gen *prev)
{
        size_t n = 0;

        for (size_t i = 0; i < g->n_listeners; i++)
                n += gen_uses(prev, g->listeners[i].set);
        return n;
}

/* While the workers apply g, the main thread holds one user of each of its sockets: a worker
 * that cannot register a shared socket lets go of it (wl_register) without closing it under
 * the workers yet to register it. Let go once all applied g; the last user closes a socket,
 * so one that no worker registered closes then instead of queueing connections for nobody. */
static void hold_sockets(const struct gen *g, bool hold)
{
        for (size_t i = 0; i < g->n_listeners; i++) {
                struct lsockset *set = g->listeners[i].set;

                for (unsigned k = 0; k < set->n_socks; k++) {
                        if (hold)
                                atomic_fetch_add(&set->socks[k].users, 1);
                        else
                                lsock_release(&set->socks[k]);
                }
        }
}

/* Hand g to every worker, or to none: each worker's part is allocated before any is posted,
 * so running out of memory fails the reload cleanly instead of leaving one worker on the old
 * generation, never accepting on its sockets of the new listeners. */
static int post_reload(struct daemon *d, struct gen *g)
{
        struct worker_reload **rts = calloc(d->n_workers, sizeof(*rts));
        int r = rts ? 0 : -ENOMEM;

        for (unsigned i = 0; i < d->n_workers && r == 0; i++)
                r = worker_reload_new(d->workers[i], g, &rts[i]);
        if (r < 0) {
                for (unsigned i = 0; rts && i < d->n_workers; i++)
                        worker_reload_free(rts[i]);
                free(rts);
                return r;
        }
        hold_sockets(g, true);
        d->reloading = true;
        atomic_store(&d->shared.reload_acks, 0);
        atomic_store(&d->shared.reload_errors, 0);
        d->reload_seq++;
        for (unsigned i = 0; i < d->n_workers; i++)
                worker_reload_post(rts[i]);
        free(rts);
        return 0;
}

void daemon_reload(struct daemon *d)
{
        struct cfg_error err;
        char msg[sizeof(err) + 64];
        struct cfg *cfg = NULL;
        struct gen *g, *old = d->gen;
        const struct cfg_addr *failed = NULL;
        size_t kept;
        int r;

        if (d->phase != DAEMON_RUNNING) {
                log_notice("SIGHUP ignored: the daemon is stopping");
                return;
        }
        if (d->reloading) {
                if (!d->reload_pending)
                        log_info("SIGHUP during a reload: reloading again once it is applied");
                d->reload_pending = true; /* runs once the current one is applied */
                return;
        }
        evsd_notify_reloading();
        log_notice("reloading %s", d->config_path);
        memset(&err, 0, sizeof(err));
        r = cfg_load(d->config_path, &cfg, &err);
        if (r < 0) {
                cfg_error_format(&err, msg, sizeof(msg));
                reload_failed(d, msg);
                return;
        }
        warn_restart_only(old->cfg, cfg);
        r = gen_new(cfg, old, &g);
        if (r < 0) {
                reload_failed(d, strerror(-r));
                return;
        }
        r = bind_all(d, g, &failed);
        if (r < 0) {
                bind_failure(failed, r, msg, sizeof(msg)); /* before g (failed is in it) goes */
                gen_unref(g);
                reload_failed(d, msg);
                return;
        }
        r = post_reload(d, g);
        if (r < 0) {
                gen_unref(g);
                daemon_free_unused_sets(d, old); /* close what daemon_bind() opened */
                reload_failed(d, strerror(-r));
                return;
        }
        kept = count_reused(g, old);
        log_set_level(g->cfg->log_level);
        d->gen = g;
        (void)dns_reload(d, g); /* names: logged; routes keep the addresses they carried */
        pipe_budget_set_limit(&d->shared.pipe_budget,
                              g->cfg->pipe_memory); /* from the next pipe on */
        log_notice("reloaded %s: %zu routes, %zu listeners (%zu kept, %zu new, %zu removed)",
                   d->config_path, g->n_routes, g->n_listeners, kept, g->n_listeners - kept,
                   old->n_listeners - count_reused(old, g));
        gen_unref(old);
        snprintf(d->reload_status, sizeof(d->reload_status), "last reload ok");
}

void daemon_reload_progress(struct daemon *d)
{
        unsigned n;

        if (!d->reloading || atomic_load(&d->shared.reload_acks) < d->n_workers)
                return;
        d->reloading = false;
        hold_sockets(d->gen, false); /* d->gen is the generation posted: reloads are serial */
        daemon_free_unused_sets(d, d->gen);
        n = atomic_load(&d->shared.reload_errors);
        if (n) {
                /* Each of them let go of its socket (worker.c, wl_register): no listener
                 * keeps a backlog that nobody reads. */
                log_error("reload incomplete: %u workers could not register some listeners (see "
                          "above) and do not accept on them; the other workers do",
                          n);
                snprintf(d->reload_status, sizeof(d->reload_status),
                         "last reload incomplete: %u workers miss some listeners", n);
        } else {
                log_info("reload applied by every worker");
        }
        evsd_notify_ready(d->reload_status);
        admin_reload_done(d, NULL); /* every worker applied it */
        if (d->reload_pending) {
                d->reload_pending = false;
                daemon_reload(d);
        }
}
