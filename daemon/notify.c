/* What systemd hears from the main loop: STATUS= every few seconds (connections, last reload),
 * STOPPING=1 at drain, and WATCHDOG=1 at half of WATCHDOG_USEC, sent only when every worker
 * has answered the previous ping, so a stuck worker loop, not just a stuck main loop, makes
 * systemd restart the service. All of it is a no-op outside systemd. */
#include <stdio.h>

#include <evproxy/sd.h>

#include "daemon.h"
#include "gen.h"
#include "log.h"
#include "worker.h"

#define STATUS_INTERVAL_MS 5000

static void status_text(struct daemon *d, char *buf, size_t size)
{
        snprintf(buf, size, "%u active connections, %zu routes, %zu listeners%s%s",
                 atomic_load(&d->shared.active), d->gen->n_routes, d->gen->n_listeners,
                 d->reload_status[0] ? "; " : "", d->reload_status);
}

static void status_tick(struct evio_timer *t, void *arg)
{
        struct daemon *d = arg;
        char buf[256];

        status_text(d, buf, sizeof(buf));
        evsd_notify_status(buf);
        if (evio_timer_arm(d->drv, t, evio_now_ms() + STATUS_INTERVAL_MS) < 0)
                log_warning("STATUS= updates off: out of memory");
}

static void watchdog_tick(struct evio_timer *t, void *arg)
{
        struct daemon *d = arg;
        bool all_answered = atomic_load(&d->shared.watchdog_acks) >= d->watchdog_seq * d->n_workers;

        if (d->phase != DAEMON_RUNNING) {
                evsd_notify_watchdog(); /* workers are leaving; the main loop still turns */
        } else if (all_answered) {
                evsd_notify_watchdog();
                d->watchdog_seq++;
                for (unsigned i = 0; i < d->n_workers; i++)
                        worker_ping(d->workers[i]);
        } else {
                log_warning("watchdog: a worker has not answered for %llu ms",
                            (unsigned long long)(d->watchdog_usec / 1000));
        }
        if (evio_timer_arm(d->drv, t, evio_now_ms() + d->watchdog_usec / 1000) < 0)
                log_error("watchdog: cannot schedule the next ping (out of memory): systemd "
                          "will restart the service");
}

/* At construction, before anything can fail: daemon_status_stop() is then safe whether or not
 * daemon_status_start() ever ran. */
void daemon_status_init(struct daemon *d)
{
        evio_timer_init(&d->status_timer, status_tick, d);
        evio_timer_init(&d->watchdog_timer, watchdog_tick, d);
}

void daemon_status_start(struct daemon *d)
{
        char buf[256];

        status_text(d, buf, sizeof(buf));
        evsd_notify_ready(buf);
        if (evio_timer_arm(d->drv, &d->status_timer, evio_now_ms() + STATUS_INTERVAL_MS) < 0)
                log_warning("STATUS= updates off: out of memory");
        d->watchdog_usec = evsd_watchdog_interval_usec();
        if (d->watchdog_usec) {
                if (d->watchdog_usec < 1000)
                        d->watchdog_usec = 1000;
                log_info("watchdog enabled: pinging every %llu ms",
                         (unsigned long long)(d->watchdog_usec / 1000));
                watchdog_tick(&d->watchdog_timer, d);
        }
}

void daemon_status_stop(struct daemon *d)
{
        if (!d->drv)
                return;
        evio_timer_cancel(d->drv, &d->status_timer);
        evio_timer_cancel(d->drv, &d->watchdog_timer);
}

void daemon_notify_stopping(struct daemon *d)
{
        char buf[256];

        snprintf(buf, sizeof(buf), "draining %u connections", atomic_load(&d->shared.active));
        evsd_notify_stopping(buf);
}
