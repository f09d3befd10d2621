/* Small helpers shared by the core unit tests: fd pairs, bounded driver loops, and a child
 * process for what must abort (a failed assert) or might hang (a corrupted queue). */
#ifndef EVPROXY_TEST_CORE_COMMON_H
#define EVPROXY_TEST_CORE_COMMON_H

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
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

/* Run fn in a child process, stderr silenced, no core file, killed after timeout_s seconds.
 * Returns the wait status: WIFEXITED with fn's return value, or the signal that ended it. */
static inline int child_status(int (*fn)(void), unsigned timeout_s)
{
        int status;
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                struct rlimit no_core = {0, 0};
                int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);

                setrlimit(RLIMIT_CORE, &no_core);
                if (devnull >= 0)
                        dup2(devnull, STDERR_FILENO);
                alarm(timeout_s);
                _exit(fn());
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        return status;
}

/* fn, run in a child, died of a failed assert (abort). */
static inline bool child_aborts(int (*fn)(void))
{
        int status = child_status(fn, 10);
        return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

#endif
