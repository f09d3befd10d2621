/* The signal-readiness token: the chosen signals are blocked in the calling thread (and so in
 * every thread it creates later) and read from a signalfd that the driver watches. Nothing runs
 * in a signal handler; the owner asks which signals are pending after a turn. */
#include <errno.h>
#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "internal.h"

int evio__signal_token_open(const sigset_t *signals, int old_fd)
{
        int r = pthread_sigmask(SIG_BLOCK, signals, NULL);
        int fd;

        if (r)
                return -r;
        fd = signalfd(old_fd, signals, SFD_CLOEXEC | SFD_NONBLOCK);
        return fd == -1 ? -errno : fd;
}

uint64_t evio__signal_token_take(int fd)
{
        struct signalfd_siginfo si[16];
        uint64_t pending = 0;
        ssize_t n;

        while ((n = read(fd, si, sizeof(si))) > 0) {
                for (size_t i = 0; i < (size_t)n / sizeof(si[0]); i++)
                        if (si[i].ssi_signo >= 1 && si[i].ssi_signo <= 64)
                                pending |= UINT64_C(1) << (si[i].ssi_signo - 1);
        }
        return pending;
}
