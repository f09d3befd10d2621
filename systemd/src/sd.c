/* sd-daemon wrappers: thin calls into libsystemd's sd_notify / sd_listen_fds_with_names /
 * sd_watchdog_enabled, so that the daemon speaks the protocol in one place and tests can drive
 * it with a NOTIFY_SOCKET and LISTEN_FDS of their own. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include <evproxy/sd.h>

static int notify_status(const char *state, const char *status)
{
        if (status)
                return sd_notifyf(0, "%s%sSTATUS=%s", state, *state ? "\n" : "", status);
        return sd_notify(0, state);
}

int evsd_notify_ready(const char *status)
{
        return notify_status("READY=1", status);
}

int evsd_notify_reloading(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
                          (unsigned long long)ts.tv_sec * 1000000ULL +
                              (unsigned long long)ts.tv_nsec / 1000ULL);
}

int evsd_notify_stopping(const char *status)
{
        return notify_status("STOPPING=1", status);
}

int evsd_notify_status(const char *status)
{
        return notify_status("", status ? status : "");
}

int evsd_notify_watchdog(void)
{
        return sd_notify(0, "WATCHDOG=1");
}

int evsd_notify_fds(const char *state, const int *fds, size_t n_fds)
{
        return sd_pid_notify_with_fds(0, 0, state, fds, (unsigned)n_fds);
}

uint64_t evsd_watchdog_interval_usec(void)
{
        uint64_t usec = 0;

        if (sd_watchdog_enabled(0, &usec) <= 0)
                return 0;
        return usec / 2;
}

static int make_nonblocking(int fd)
{
        int fl = fcntl(fd, F_GETFL);

        if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
                return -errno;
        if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
                return -errno;
        return 0;
}

int evsd_listen_sockets(struct evsd_socket **out, size_t *n)
{
        char **names = NULL;
        struct evsd_socket *socks;
        int count = sd_listen_fds_with_names(1, &names);
        int r = 0;

        *out = NULL;
        *n = 0;
        if (count <= 0) {
                free(names);
                return count;
        }
        socks = calloc((size_t)count, sizeof(*socks));
        if (!socks)
                r = -ENOMEM;
        for (int i = 0; i < count; i++) {
                if (socks) {
                        socks[i].fd = SD_LISTEN_FDS_START + i;
                        snprintf(socks[i].name, sizeof(socks[i].name), "%s",
                                 names && names[i] ? names[i] : "unknown");
                        if (r == 0)
                                r = make_nonblocking(socks[i].fd);
                }
                if (names)
                        free(names[i]);
        }
        free(names);
        if (r < 0) {
                free(socks);
                return r;
        }
        *out = socks;
        *n = (size_t)count;
        return 0;
}
