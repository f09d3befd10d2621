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

#include "sock.h"

struct gen;
struct route;
struct lsockset;
struct lgroup;

struct lsock {
        int fd;
        atomic_uint users;
        struct lsockset *owner;
};

/* The sockets of one listen address. Owned by the main thread, which keeps a set open across
 * reloads for as long as some configuration still listens on its address. */
struct lsockset {
        struct cfg_addr addr; /* a copy: outlives the configuration that opened it */
        struct lsock *socks;
        unsigned n_socks;
        bool shared;           /* one socket for every worker */
        bool passed;           /* passed by systemd: never closed by us, kept for later reloads */
        struct sock_file file; /* a unix path's file we created and must remove */
        struct lsockset *next; /* the daemon's list of sets */
};

/* A listener as one configuration generation sees it: its address and route in that
 * generation, and the socket set it accepts on. */
struct listener {
        const struct cfg_addr *addr;
        struct route *route;
        struct gen *gen;
        struct lsockset *set;
        struct lgroup *group; /* routes sharing the address (match): inspect first (lgroup.h) */
};

/* Open the sockets for addr: n_workers sockets for TCP, one shared socket otherwise; with
 * passed_fd >= 0, that socket (from systemd) instead. */
int lset_open(const struct cfg_addr *addr, mode_t unix_mode, unsigned n_workers, int passed_fd,
              struct lsockset **out);
/* The socket worker number i accepts on; takes one user reference on it. */
struct lsock *lset_sock(struct lsockset *s, unsigned worker);
/* Drop one user; the last closes the socket. */
void lsock_release(struct lsock *s);
/* True once no worker accepts on any socket of s. */
bool lset_unused(struct lsockset *s);
/* Give a unix path listener's file to the user the daemon is about to become, so it can still
 * remove the file at exit. No-op for other kinds. */
int lset_chown(struct lsockset *s, uid_t uid, gid_t gid);
/* Close whatever is still open and free the set. Accepts NULL. */
void lset_free(struct lsockset *s);

#endif
