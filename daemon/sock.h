/* How evproxyd opens sockets, in one place for all of its users: route listeners (listener.c),
 * the metrics endpoint (metrics_server.c), upstream connects (upstream.c) and health checks
 * (health_check.c). Every socket is CLOEXEC|NONBLOCK from birth. A unix path listener follows
 * one rule whoever opens it (see sock.c): a stale socket file is replaced, one in use or a file
 * that is not a socket is refused, the file is never more open than asked, the process umask is
 * never touched, and only the file we created (same dev/ino) is ever removed. */
#ifndef EVPROXYD_SOCK_H
#define EVPROXYD_SOCK_H

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <evproxy/config.h>

/* Options of sock_listen() and sock_connect(); TCP-only ones are ignored for unix sockets. */
enum {
        SOCKF_REUSEPORT = 1 << 0, /* listener: one of several sockets on the address */
        SOCKF_NODELAY = 1 << 1,   /* TCP_NODELAY (accepted sockets inherit a listener's) */
};

/* The file of a unix path listener, as we created it. Zeroed: no file of ours. */
struct sock_file {
        bool created;
        dev_t dev;
        ino_t ino;
};

/* setsockopt of an int: 0 or -errno. */
int sock_set_int(int fd, int level, int name, int value);

/* Open a listening socket on a (inet, unix path or abstract): options, bind, listen(backlog).
 * For a unix path: the stale-socket rule, the file created with mode unix_mode, *file filled.
 * Failures are logged as "<who>listen <a->text>: what failed" (who: "" or e.g. "metrics: ").
 * 0 and *out, or -errno (nothing left open or created). */
int sock_listen(const struct cfg_addr *a, unsigned flags, mode_t unix_mode, int backlog,
                const char *who, struct sock_file *file, int *out);

/* Give the file to uid:gid (the user the daemon is about to become, so that it can still remove
 * it at exit); only if it is still ours. No-op without a file. 0 or -errno (logged). */
int sock_file_chown(const struct sock_file *file, const struct cfg_addr *a, uid_t uid, gid_t gid,
                    const char *who);

/* Remove the file if it is still the one we created (someone may have replaced it since: that
 * one is left alone). Forgets the file either way. No-op without a file. */
void sock_file_remove(struct sock_file *file, const struct cfg_addr *a, const char *who);

/* Start a non-blocking connect to a: 0 connected, -EINPROGRESS pending (wait for writable, then
 * sock_connect_result()), or -errno (EAGAIN from a unix socket: its backlog is full). *fd_out is
 * set whenever a socket was made, -1 otherwise. Not logged (callers run per connection). */
int sock_connect(const struct cfg_addr *a, unsigned flags, int *fd_out);

/* Result of a pending connect once the socket is writable: 0 or -errno. */
int sock_connect_result(int fd);

#endif
