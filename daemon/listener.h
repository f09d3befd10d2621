/* Listening sockets. A TCP listener has one socket per worker (SO_REUSEPORT, so the kernel
 * spreads connections); a unix listener (path or abstract) is one socket shared by all workers.
 * Each socket counts the workers that registered it; the last to let go closes it (and removes
 * a unix path it created), so "stop accepting" needs no extra round trip to the main thread. */
#ifndef EVPROXYD_LISTENER_H
#define EVPROXYD_LISTENER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <evproxy/config.h>

struct route;
struct listener;

struct lsock {
        int fd;
        atomic_uint users;
        struct listener *owner;
};

struct listener {
        const struct cfg_addr *addr;
        struct route *route;
        struct lsock *socks;
        unsigned n_socks;
        bool shared;    /* one socket for every worker */
        bool unix_path; /* created a file we must remove */
        dev_t dev;
        ino_t ino;
};

/* Open a listener for addr; n_workers sockets for TCP, one shared socket otherwise. */
int listener_open(struct listener *l, const struct cfg_addr *addr, struct route *route,
                  mode_t unix_mode, unsigned n_workers);
/* The socket worker number i accepts on; takes one user reference on it. */
struct lsock *listener_sock(struct listener *l, unsigned worker);
/* Drop one user; the last closes the socket. */
void lsock_release(struct lsock *s);
/* Give a unix path listener's file to the user the daemon is about to become, so it can still
 * remove the file at exit. No-op for other kinds. */
int listener_chown(struct listener *l, uid_t uid, gid_t gid);
/* Close whatever is still open and free the sockets. Accepts a never-opened listener. */
void listener_close(struct listener *l);

#endif
