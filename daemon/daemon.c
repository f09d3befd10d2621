/* Start-up, main loop and shut-down of evproxyd. The main thread owns the configuration, the
 * listener sockets and a driver that receives signals, worker notices and its own timers
 * (systemd STATUS= and watchdog):
 *   RUNNING --SIGTERM/SIGINT--> DRAINING (STOPPING=1) --every worker exited--> exit 0
 *   DRAINING --SIGTERM/SIGINT again--> STOPPING (workers close all now) --> exit 0
 *   RUNNING --SIGHUP--> daemon_reload() (reload.c): RELOADING=1 ... READY=1
 *   RUNNING --successor's TAKE, or SIGTERM with handover.fdstore--> handover (handover.h):
 *           everything given --> STOPPING --> exit 0; not given --> RUNNING (or DRAINING) */
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <evproxy/sd.h>

#include "admin.h"
#include "client_limit.h"
#include "daemon.h"
#include "dns.h"
#include "gen.h"
#include "handover.h"
#include "health_check.h"
#include "listener.h"
#include "log.h"
#include "metrics_server.h"
#include "worker.h"

#define SIGBIT(s) (UINT64_C(1) << ((s)-1))

static unsigned cpu_count(void)
{
        cpu_set_t set;
        long n;

        if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
                return (unsigned)CPU_COUNT(&set);
        n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (unsigned)n : 1;
}

/* Every socket systemd passed must be named by some route: a stray one is a configuration
 * mistake the operator should hear about at once. */
static int check_passed_sockets(struct daemon *d)
{
        for (size_t i = 0; i < d->n_passed; i++) {
                bool used = false;

                for (size_t j = 0; j < d->gen->n_listeners && !used; j++)
                        used = d->gen->listeners[j].set->passed &&
                               d->gen->listeners[j].set->socks[0].fd == d->passed[i].fd;
                if (!used) {
                        log_error("systemd passed a socket named \"%s\" (fd %d) that no route "
                                  "listens on (add \"systemd:%s\" to a route's listen list)",
                                  d->passed[i].name, d->passed[i].fd, d->passed[i].name);
                        return -EINVAL;
                }
        }
        return 0;
}

static int open_listeners(struct daemon *d)
{
        int r = evsd_listen_sockets(&d->passed, &d->n_passed);

        if (r < 0)
                return log_error_errno(r, "taking the sockets passed by systemd");
        r = handover_adopt_listeners(d); /* issue 18: the old process's, never bound again */
        if (r < 0)
                return r;
        r = daemon_bind(d, d->gen, NULL);
        if (r < 0)
                return r;
        return check_passed_sockets(d);
}

static int drop_privileges(struct daemon *d, const char *user)
{
        struct passwd *pw;
        int r;

        if (!user || !*user)
                return 0;
        pw = getpwnam(user); /* no other thread exists yet */
        if (!pw) {
                log_error("user %s: no such user", user);
                return -ESRCH;
        }
        if (geteuid() != 0) {
                if (pw->pw_uid != geteuid())
                        log_warning("not running as root: cannot switch to user %s", user);
                return 0;
        }
        for (struct lsockset *s = d->sets; s; s = s->next) {
                r = lset_chown(s, pw->pw_uid, pw->pw_gid);
                if (r < 0)
                        return r;
        }
        r = metrics_server_chown(d, pw->pw_uid, pw->pw_gid);
        if (r < 0)
                return r;
        if (initgroups(user, pw->pw_gid) == -1 || setgid(pw->pw_gid) == -1 ||
            setuid(pw->pw_uid) == -1)
                return log_error_errno(-errno, "switching to user %s", user);
        log_info("running as user %s", user);
        return 0;
}

static int start_workers(struct daemon *d)
{
        int r;

        d->workers = calloc(d->n_workers, sizeof(*d->workers));
        if (!d->workers)
                return log_error_errno(-ENOMEM, "creating workers");
        for (unsigned i = 0; i < d->n_workers; i++) {
                r = worker_new(&d->shared, d->gen, i, &d->workers[i]);
                if (r < 0)
                        return r;
        }
        d->shared.workers = d->workers; /* every worker exists: they may post to each other */
        d->shared.n_workers = d->n_workers;
        handover_import(d); /* issue 18: connections of the old process, before any turn */
        for (unsigned i = 0; i < d->n_workers; i++) {
                r = worker_start(d->workers[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The signals the main loop handles. */
static void main_signals(sigset_t *sigs)
{
        sigemptyset(sigs);
        sigaddset(sigs, SIGHUP);
        sigaddset(sigs, SIGTERM);
        sigaddset(sigs, SIGINT);
}

static int daemon_setup(struct daemon *d)
{
        sigset_t sigs;
        int r;

        d->n_workers = d->gen->cfg->workers ? d->gen->cfg->workers : cpu_count();
        r = evio_driver_new(&d->drv, NULL);
        if (r < 0)
                return log_error_errno(r, "creating the main driver");
        d->shared.main = evio_driver_handle(d->drv);
        /* Before any worker exists, so every thread inherits the blocked mask. */
        main_signals(&sigs);
        r = evio_driver_enable_signals(d->drv, &sigs);
        if (r < 0)
                return log_error_errno(r, "enabling signals");
        if ((r = handover_take(d)) < 0) /* issue 18: evproxyd -H, from the old process */
                return r;
        r = open_listeners(d);
        if (r < 0)
                return r;
        if ((r = handover_confirm(d)) < 0)
                return r;
        r = metrics_server_start(d, d->gen->cfg); /* issue 5: metrics endpoint */
        if (r < 0)
                return r;
        if ((r = admin_server_start(d)) < 0) /* issue 15: admin socket, state file */
                return r;
        if ((r = dns_start(d)) < 0) /* issue 14: upstream names */
                return r;
        r = drop_privileges(d, d->gen->cfg->user);
        if (r < 0)
                return r;
        r = client_table_new(d->gen->cfg->client_table_size, &d->shared.clients); /* issue 16 */
        if (r < 0)
                return log_error_errno(r, "allocating the per-client table");
        r = start_workers(d);
        if (r < 0)
                return r;
        r = health_check_start(d); /* issue 5: active health checks */
        if (r < 0)
                return r;
        if ((r = handover_listen(d)) < 0) /* issue 18: for the next process */
                return r;
        log_notice("evproxyd " EVPROXY_VERSION " ready: %zu listeners, %u workers",
                   d->gen->n_listeners, d->n_workers);
        daemon_status_start(d);
        return 0;
}

static void daemon_on_stop_signal(struct daemon *d)
{
        switch (d->phase) {
        case DAEMON_RUNNING:
                if (handover_stop_signal(d)) /* issue 18: to systemd's fd store */
                        break;
                log_notice("stopping: no new connections; draining %u connections for up to %gs",
                           atomic_load(&d->shared.active),
                           (double)d->gen->cfg->drain_timeout_ms / 1000.0);
                d->phase = DAEMON_DRAINING;
                daemon_notify_stopping(d);
                for (unsigned i = 0; i < d->n_workers; i++)
                        worker_drain(d->workers[i]);
                break;
        case DAEMON_DRAINING:
                log_notice("stopping now: closing %u connections", atomic_load(&d->shared.active));
                d->phase = DAEMON_STOPPING;
                for (unsigned i = 0; i < d->n_workers; i++)
                        worker_stop(d->workers[i]);
                break;
        case DAEMON_STOPPING:
                break;
        }
}

static int daemon_loop(struct daemon *d)
{
        bool failed = false;
        uint64_t sigs;
        int r;

        while (atomic_load(&d->shared.workers_exited) < d->n_workers) {
                health_check_sync(d); /* follows reloads */
                r = evio_driver_turn(d->drv, -1);
                if (r < 0) {
                        log_error_errno(r, "main loop");
                        failed = true;
                        break;
                }
                daemon_reload_progress(d);
                handover_progress(d);
                sigs = evio_driver_take_signals(d->drv);
                if ((sigs & SIGBIT(SIGHUP)) && !handover_defer_signal(d, SIGHUP))
                        daemon_reload(d);
                if (((sigs & SIGBIT(SIGTERM)) && !handover_defer_signal(d, SIGTERM)) ||
                    ((sigs & SIGBIT(SIGINT)) && !handover_defer_signal(d, SIGINT)))
                        daemon_on_stop_signal(d);
                if (atomic_load(&d->shared.workers_exited) > 0 && d->phase == DAEMON_RUNNING) {
                        log_error("a worker stopped unexpectedly; shutting down");
                        failed = true;
                        daemon_on_stop_signal(d);
                        daemon_on_stop_signal(d);
                }
        }
        if (failed) {
                for (unsigned i = 0; d->phase == DAEMON_RUNNING && i < d->n_workers; i++)
                        worker_stop(d->workers[i]);
        }
        for (unsigned i = 0; i < d->n_workers; i++)
                worker_join(d->workers[i]);
        log_notice("evproxyd stopped");
        return failed ? -EIO : 0;
}

/* Undo whatever daemon_setup() got to, from any point it can fail at: every destructor here
 * accepts a missing or half-built object (no driver, no workers, some workers not started). */
static void daemon_teardown(struct daemon *d)
{
        if (d->workers) {
                for (unsigned i = 0; i < d->n_workers; i++) {
                        if (d->workers[i] && d->workers[i]->started) {
                                worker_stop(d->workers[i]);
                                worker_join(d->workers[i]);
                        }
                }
                for (unsigned i = 0; i < d->n_workers; i++)
                        worker_free(d->workers[i]);
                free(d->workers);
        }
        health_check_stop(d);
        dns_stop(d); /* before the driver its resolver lives on */
        metrics_server_stop(d);
        admin_server_stop(d);
        handover_free(d);
        daemon_status_stop(d);
        while (d->sets) {
                struct lsockset *s = d->sets;
                d->sets = s->next;
                lset_free(s);
        }
        free(d->passed);
        client_table_free(d->shared.clients);
        gen_unref(d->gen);
        evio_driver_free(d->drv);
}

int daemon_run(const char *config_path)
{
        struct daemon d;
        struct cfg_error err;
        sigset_t sigs;
        char msg[sizeof(err) + 64];
        int r;

        struct cfg *cfg;

        memset(&d, 0, sizeof(d));
        memset(&err, 0, sizeof(err));
        d.config_path = config_path;
        daemon_status_init(&d); /* every field teardown reads is valid from here on */
        /* Blocked from the start, so a signal during start-up waits for the main loop's signal
         * token instead of killing a half-built daemon (SIGHUP's default action terminates). */
        main_signals(&sigs);
        pthread_sigmask(SIG_BLOCK, &sigs, NULL);
        r = cfg_load(config_path, &cfg, &err);
        if (r < 0) {
                cfg_error_format(&err, msg, sizeof(msg));
                log_error("%s", msg);
                return 1;
        }
        log_set_level(cfg->log_level);
        r = gen_new(cfg, NULL, &d.gen);
        if (r < 0) {
                log_error_errno(r, "setting up routes");
                return 1;
        }
        r = daemon_setup(&d);
        if (r == 0)
                r = daemon_loop(&d);
        daemon_teardown(&d);
        return r < 0 ? 1 : 0;
}
