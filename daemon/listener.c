/* Listening sockets of every address kind: TCP v4/v6 (one SO_REUSEPORT socket per worker),
 * "*:port" dual-stack (IPV6_V6ONLY=0), unix paths, abstract names, and sockets passed by
 * systemd. Opening them is sock.c's job, with the rules every unix path follows there (stale
 * file replaced, one in use refused, mode never more open than unix_mode, no umask change, only
 * our own file removed); this file keeps the sets and their users. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"
#include "sock.h"

#define LISTEN_BACKLOG 4096

int lset_open(const struct cfg_addr *addr, mode_t unix_mode, unsigned n_workers, int passed_fd,
              struct lsockset **out)
{
        struct lsockset *l = calloc(1, sizeof(*l));
        int r = 0;

        if (!l)
                return log_error_errno(-ENOMEM, "listen %s", addr->text);
        l->addr = *addr;
        l->passed = passed_fd >= 0;
        l->shared = l->passed || addr->kind != CFG_ADDR_INET;
        l->n_socks = l->shared ? 1 : n_workers;
        l->socks = calloc(l->n_socks, sizeof(*l->socks));
        if (!l->socks) {
                free(l);
                return log_error_errno(-ENOMEM, "listen %s", addr->text);
        }
        for (unsigned i = 0; i < l->n_socks; i++) {
                l->socks[i].fd = -1;
                l->socks[i].owner = l;
                atomic_init(&l->socks[i].users, 0);
        }
        if (l->passed) {
                l->socks[0].fd = passed_fd;
                /* As for our own TCP listeners; a unix socket refuses it. */
                (void)sock_set_int(passed_fd, IPPROTO_TCP, TCP_NODELAY, 1);
        }
        /* Accepted sockets inherit TCP_NODELAY from the listener: one setsockopt per
         * listener instead of one per connection. */
        for (unsigned i = 0; i < l->n_socks && r == 0 && !l->passed; i++)
                r = sock_listen(&l->addr, l->shared ? 0 : SOCKF_REUSEPORT | SOCKF_NODELAY,
                                unix_mode, LISTEN_BACKLOG, "", &l->file, &l->socks[i].fd);
        if (r < 0) {
                lset_free(l);
                return r;
        }
        *out = l;
        return 0;
}

int lset_chown(struct lsockset *l, uid_t uid, gid_t gid)
{
        return sock_file_chown(&l->file, &l->addr, uid, gid, "");
}

struct lsock *lset_sock(struct lsockset *l, unsigned worker)
{
        struct lsock *s = &l->socks[l->shared ? 0 : worker % l->n_socks];

        atomic_fetch_add(&s->users, 1);
        return s;
}

static void lsock_close(struct lsock *s)
{
        if (s->fd < 0 || s->owner->passed)
                return; /* a passed socket stays open for a later configuration */
        close(s->fd);
        s->fd = -1;
        if (s->owner->shared)
                sock_file_remove(&s->owner->file, &s->owner->addr, "");
}

void lsock_release(struct lsock *s)
{
        if (atomic_fetch_sub(&s->users, 1) == 1)
                lsock_close(s);
}

bool lset_unused(struct lsockset *l)
{
        for (unsigned i = 0; i < l->n_socks; i++)
                if (atomic_load(&l->socks[i].users) > 0)
                        return false;
        return true;
}

void lset_free(struct lsockset *l)
{
        if (!l)
                return;
        for (unsigned i = 0; i < l->n_socks; i++)
                lsock_close(&l->socks[i]);
        sock_file_remove(&l->file, &l->addr, "");
        free(l->socks);
        free(l);
}
