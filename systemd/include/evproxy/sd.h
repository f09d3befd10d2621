/* systemd glue for evproxyd: service notifications (READY, RELOADING, STOPPING, STATUS,
 * WATCHDOG), the watchdog interval, and sockets passed by socket activation. Every call is a
 * no-op returning 0 when the process does not run under systemd. No logging here. */
#ifndef EVPROXY_SD_H
#define EVPROXY_SD_H

#include <stddef.h>
#include <stdint.h>

/* Each returns 1 if a message was sent, 0 if not under systemd, or -errno. */
int evsd_notify_ready(const char *status);
int evsd_notify_reloading(void); /* RELOADING=1 with MONOTONIC_USEC */
int evsd_notify_stopping(const char *status);
int evsd_notify_status(const char *status);
int evsd_notify_watchdog(void);
/* state (e.g. "FDSTORE=1\nFDNAME=x") with n_fds fds attached (at most 253): >0 sent, 0 no
 * NOTIFY_SOCKET, -errno. */
int evsd_notify_fds(const char *state, const int *fds, size_t n_fds);

/* The job systemd runs on this process's service (over the system bus): its type ("stop",
 * "restart", ...) into type[size] and 1; 0 when the service has no job (a SIGTERM from
 * `kill`); -ESRCH when this process is not the main process of a systemd service; another
 * -errno when the bus cannot be asked (no D-Bus, timeout). Blocks for at most a few seconds. */
int evsd_unit_job(char *type, size_t size);

/* The interval at which WATCHDOG=1 must be sent (half of WATCHDOG_USEC), or 0 if the watchdog
 * is not enabled for this process. */
uint64_t evsd_watchdog_interval_usec(void);

/* A socket passed by systemd, with the name given by FileDescriptorName= (or "unknown"). */
struct evsd_socket {
        int fd;
        char name[256];
};

/* Take the sockets passed by systemd (LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES) and unset those
 * variables. The fds are made CLOEXEC and NONBLOCK. *out is malloc'ed (free with free());
 * *n is 0 when nothing was passed. Returns 0 or -errno. */
int evsd_listen_sockets(struct evsd_socket **out, size_t *n);

#endif
