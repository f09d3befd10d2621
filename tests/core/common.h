/* Small helpers shared by the core unit tests: fd pairs and bounded driver loops. */
#ifndef EVPROXY_TEST_CORE_COMMON_H
#define EVPROXY_TEST_CORE_COMMON_H

#include <fcntl.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

static inline void make_pair(int sv[2])
{
        int r = socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv);
        assert_int_equal(r, 0);
}

static inline void make_pipe(int p[2])
{
        assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

/* Turn until *flag is set or the budget of turns (each at most 100 ms) runs out. */
static inline bool turn_until(struct evio_driver *d, volatile bool *flag, int max_turns)
{
        for (int i = 0; i < max_turns && !*flag; i++)
                evio_driver_turn(d, 100);
        return *flag;
}

#endif
