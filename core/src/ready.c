/* Ready / Interest / Direction conversions between the driver's vocabulary and epoll flags.
 * The epoll mapping follows mio (which Tokio uses), so READ_CLOSED and WRITE_CLOSED are only
 * ever reported when the kernel said so: never invented. */
#include <sys/epoll.h>

#include <evproxy/ready.h>

uint32_t ready_from_epoll(uint32_t ev)
{
        uint32_t r = 0;

        if (ev & (EPOLLIN | EPOLLPRI))
                r |= READY_READABLE;
        if (ev & EPOLLOUT)
                r |= READY_WRITABLE;
        if (ev & (EPOLLHUP | EPOLLRDHUP))
                r |= READY_READ_CLOSED;
        if ((ev & EPOLLHUP) || ((ev & EPOLLOUT) && (ev & EPOLLERR)) || ev == EPOLLERR)
                r |= READY_WRITE_CLOSED;
        if (ev & EPOLLPRI)
                r |= READY_PRIORITY;
        if (ev & EPOLLERR)
                r |= READY_ERROR;
        return r;
}

uint32_t ready_from_interest(uint32_t interest)
{
        uint32_t r = 0;

        if (interest & INTEREST_READABLE)
                r |= READY_READABLE | READY_READ_CLOSED;
        if (interest & INTEREST_WRITABLE)
                r |= READY_WRITABLE | READY_WRITE_CLOSED;
        if (interest & INTEREST_PRIORITY)
                r |= READY_PRIORITY | READY_READ_CLOSED;
        if (interest & INTEREST_ERROR)
                r |= READY_ERROR;
        return r;
}

uint32_t interest_to_epoll(uint32_t interest)
{
        uint32_t ev = EPOLLET;

        if (interest & INTEREST_READABLE)
                ev |= EPOLLIN | EPOLLRDHUP;
        if (interest & INTEREST_WRITABLE)
                ev |= EPOLLOUT;
        if (interest & INTEREST_PRIORITY)
                ev |= EPOLLPRI;
        return ev;
}

uint32_t direction_mask(enum direction dir)
{
        return dir == DIRECTION_READ ? READY_READABLE | READY_READ_CLOSED
                                     : READY_WRITABLE | READY_WRITE_CLOSED;
}
