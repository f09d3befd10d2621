/* Start-up, main loop and shut-down of evproxyd. The main thread owns the configuration, the
 * listeners and a driver that only receives signals and worker-exit wake-ups:
 *   RUNNING --SIGTERM/SIGINT--> DRAINING --every worker exited--> exit 0
 *   DRAINING --SIGTERM/SIGINT again--> STOPPING (workers close all now) --> exit 0
 *   SIGHUP --> daemon_reload() (reload.c) */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "listener.h"
#include "log.h"
#include "worker.h"

#define SIGBIT(s) (UINT64_C(1) << ((s)-1))

void daemon_worker_exited(struct daemon *d)
{
        atomic_fetch_add(&d->workers_exited, 1);
        handle_unpark(driver_handle(d->drv));
}

static unsigned cpu_count(void)
{
        cpu_set_t set;
        long n;

        if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
                return (unsigned)CPU_COUNT(&set);
        n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (unsigned)n : 1;
}

static int open_listeners(struct daemon *d)
{
        size_t n = 0;
        int r;

        for (size_t i = 0; i < d->cfg->n_routes; i++)
                n += d->cfg->routes[i].n_listen;
        d->listeners = calloc(n ? n : 1, sizeof(*d->listeners));
        if (!d->listeners)
                return log_error_errno(-ENOMEM, "opening listeners");
        for (size_t i = 0; i < d->cfg->n_routes; i++) {
                const struct cfg_route *rc = &d->cfg->routes[i];

                for (size_t j = 0; j < rc->n_listen; j++) {
                        r = listener_open(&d->listeners[d->n_listeners], &rc->listen[j],
                                          &d->routes[i], rc->unix_mode, d->n_workers);
                        if (r < 0)
                                return r;
                        d->n_listeners++;
                }
        }
        return 0;
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
        for (size_t i = 0; i < d->n_listeners; i++) {
                r = listener_chown(&d->listeners[i], pw->pw_uid, pw->pw_gid);
                if (r < 0)
                        return r;
        }
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
                r = worker_new(d, i, &d->workers[i]);
                if (r < 0)
                        return r;
        }
        for (unsigned i = 0; i < d->n_workers; i++) {
                r = worker_start(d->workers[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int daemon_setup(struct daemon *d)
{
        sigset_t sigs;
        int r;

        d->n_workers = d->cfg->workers ? d->cfg->workers : cpu_count();
        d->routes = calloc(d->cfg->n_routes ? d->cfg->n_routes : 1, sizeof(*d->routes));
        if (!d->routes)
                return log_error_errno(-ENOMEM, "setting up routes");
        d->n_routes = d->cfg->n_routes;
        for (size_t i = 0; i < d->n_routes; i++)
                d->routes[i].cfg = &d->cfg->routes[i];
        r = driver_new(&d->drv, NULL);
        if (r < 0)
                return log_error_errno(r, "creating the main driver");
        /* Before any worker exists, so every thread inherits the blocked mask. */
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGHUP);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGINT);
        r = driver_enable_signals(d->drv, &sigs);
        if (r < 0)
                return log_error_errno(r, "enabling signals");
        r = open_listeners(d);
        if (r < 0)
                return r;
        r = drop_privileges(d, d->cfg->user);
        if (r < 0)
                return r;
        r = start_workers(d);
        if (r < 0)
                return r;
        log_notice("evproxyd " EVPROXY_VERSION " ready: %zu listeners, %u workers", d->n_listeners,
                   d->n_workers);
        return 0;
}

static void daemon_on_stop_signal(struct daemon *d)
{
        switch (d->phase) {
        case DAEMON_RUNNING:
                log_notice("stopping: no new connections; draining %u connections for up to %gs",
                           atomic_load(&d->active), d->cfg->drain_timeout);
                d->phase = DAEMON_DRAINING;
                for (unsigned i = 0; i < d->n_workers; i++)
                        worker_drain(d->workers[i]);
                break;
        case DAEMON_DRAINING:
                log_notice("stopping now: closing %u connections", atomic_load(&d->active));
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

        while (atomic_load(&d->workers_exited) < d->n_workers) {
                r = driver_turn(d->drv, -1);
                if (r < 0) {
                        log_error_errno(r, "main loop");
                        failed = true;
                        break;
                }
                sigs = driver_take_signals(d->drv);
                if (sigs & SIGBIT(SIGHUP))
                        daemon_reload(d);
                if (sigs & (SIGBIT(SIGTERM) | SIGBIT(SIGINT)))
                        daemon_on_stop_signal(d);
                if (atomic_load(&d->workers_exited) > 0 && d->phase == DAEMON_RUNNING) {
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
        for (size_t i = 0; i < d->n_listeners; i++)
                listener_close(&d->listeners[i]);
        free(d->listeners);
        driver_free(d->drv);
        free(d->routes);
        cfg_free(d->cfg);
}

int daemon_run(const char *config_path)
{
        struct daemon d;
        struct cfg_error err;
        char msg[sizeof(err) + 64];
        int r;

        memset(&d, 0, sizeof(d));
        memset(&err, 0, sizeof(err));
        r = cfg_load(config_path, &d.cfg, &err);
        if (r < 0) {
                cfg_error_format(&err, msg, sizeof(msg));
                log_error("%s", msg);
                return 1;
        }
        log_set_level(d.cfg->log_level);
        r = daemon_setup(&d);
        if (r == 0)
                r = daemon_loop(&d);
        daemon_teardown(&d);
        return r < 0 ? 1 : 0;
}
