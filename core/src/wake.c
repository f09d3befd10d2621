/* The wake token: an eventfd registered in the driver's epoll set. Writing to it makes a blocked
 * epoll_wait return; the driver drains it when it sees its token. */
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

int evio__wake_token_open(void)
{
        int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

        return fd == -1 ? -errno : fd;
}

int evio__wake_token_signal(int fd)
{
        uint64_t one = 1;

        if (write(fd, &one, sizeof(one)) == (ssize_t)sizeof(one))
                return 0;
        /* EAGAIN: the counter is saturated, so the driver is woken already. */
        return errno == EAGAIN ? 0 : -errno;
}

void evio__wake_token_drain(int fd)
{
        uint64_t v;

        while (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
                ;
}
