/* Ready / Interest / Direction conversions between the driver's vocabulary and epoll flags.
 * The epoll mapping follows mio (which Tokio uses), so READ_CLOSED and WRITE_CLOSED are only
 * ever reported when the kernel said so: never invented. */
#include <sys/epoll.h>

#include "internal.h"

uint32_t evio__ready_from_epoll(uint32_t ev)
{
        uint32_t r = 0;

        if (ev & (EPOLLIN | EPOLLPRI))
                r |= EVIO_READY_READABLE;
        if (ev & EPOLLOUT)
                r |= EVIO_READY_WRITABLE;
        if (ev & (EPOLLHUP | EPOLLRDHUP))
                r |= EVIO_READY_READ_CLOSED;
        if ((ev & EPOLLHUP) || ((ev & EPOLLOUT) && (ev & EPOLLERR)) || ev == EPOLLERR)
                r |= EVIO_READY_WRITE_CLOSED;
        if (ev & EPOLLPRI)
                r |= EVIO_READY_PRIORITY;
        if (ev & EPOLLERR)
                r |= EVIO_READY_ERROR;
        return r;
}

uint32_t evio_ready_from_interest(uint32_t interest)
{
        uint32_t r = 0;

        if (interest & EVIO_INTEREST_READABLE)
                r |= EVIO_READY_READABLE | EVIO_READY_READ_CLOSED;
        if (interest & EVIO_INTEREST_WRITABLE)
                r |= EVIO_READY_WRITABLE | EVIO_READY_WRITE_CLOSED;
        if (interest & EVIO_INTEREST_PRIORITY)
                r |= EVIO_READY_PRIORITY | EVIO_READY_READ_CLOSED;
        if (interest & EVIO_INTEREST_ERROR)
                r |= EVIO_READY_ERROR;
        return r;
}

uint32_t evio__interest_to_epoll(uint32_t interest)
{
        uint32_t ev = EPOLLET;

        if (interest & EVIO_INTEREST_READABLE)
                ev |= EPOLLIN | EPOLLRDHUP;
        if (interest & EVIO_INTEREST_WRITABLE)
                ev |= EPOLLOUT;
        if (interest & EVIO_INTEREST_PRIORITY)
                ev |= EPOLLPRI;
        return ev;
}

uint32_t evio_direction_mask(enum evio_direction dir)
{
        return dir == EVIO_DIRECTION_READ ? EVIO_READY_READABLE | EVIO_READY_READ_CLOSED
                                          : EVIO_READY_WRITABLE | EVIO_READY_WRITE_CLOSED;
}
