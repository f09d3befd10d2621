// smproxy LISTEN_PORT UPSTREAM_PORT  -- loopback TCP forwarder whose data
// path is an eBPF sockmap (SOCKHASH + sk_skb stream_verdict redirect to the
// paired socket's egress). User space only accepts, connects, inserts the
// two sockets in the map, and handles FIN / half-close / teardown.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <linux/tcp.h>
#include <linux/sockios.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "sm.skel.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

struct pair;
struct side {
        struct pair *p;
        int i;
};
struct pair {
        int fd[2]; /* 0 = client, 1 = upstream */
        unsigned long long ck[2];
        unsigned long long base[2]; /* bytes_acked+outq at setup (SYN offset) */
        int fin[2];                 /* FIN received on fd[i] */
        int shut[2];                /* shutdown(fd[1-i], SHUT_WR) done for direction i */
        struct side s[2];
        struct pair *next_pending;
        int pending;
};

static int dbg, fd_socks, fd_peer, fd_redir;
static struct pair *pending_head;
static unsigned long long n_fallback, n_pairs, n_slowpath_bytes, n_flush_waits;

static unsigned long long written(int fd)
{
        struct tcp_info ti;
        socklen_t l = sizeof(ti);
        int outq = 0;
        memset(&ti, 0, sizeof(ti));
        getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l);
        ioctl(fd, SIOCOUTQ, &outq);
        return ti.tcpi_bytes_acked + (unsigned)outq;
}

static unsigned long long redirected(unsigned long long ck)
{
        unsigned long long v = 0;
        bpf_map_lookup_elem(fd_redir, &ck, &v);
        return v;
}

static void teardown(struct pair *p, int abort)
{
        for (int i = 0; i < 2; i++) {
                if (abort) {
                        struct linger lg = {1, 0};
                        setsockopt(p->fd[i], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
                }
                bpf_map_delete_elem(fd_socks, &p->ck[i]);
                bpf_map_delete_elem(fd_peer, &p->ck[i]);
                bpf_map_delete_elem(fd_redir, &p->ck[i]);
                close(p->fd[i]);
        }
        if (p->pending) { /* unlink */
                struct pair **pp = &pending_head;
                while (*pp && *pp != p)
                        pp = &(*pp)->next_pending;
                if (*pp)
                        *pp = p->next_pending;
        }
        free(p);
}

/* direction i (fd[i] -> fd[1-i]) saw FIN; propagate once the deferred
 * redirect queue towards fd[1-i] has been written into its TCP send queue. */
static int try_flush(struct pair *p, int i)
{
        int o = 1 - i;
        if (p->shut[i] || !p->fin[i])
                return 1;
        unsigned long long w = written(p->fd[o]) - p->base[o];
        unsigned long long r = redirected(p->ck[o]) + (p->base[o] * 0);
        if (w < r)
                return 0;
        if (dbg)
                fprintf(stderr, "dir %d drained (written %llu redirected %llu), shutdown\n", i, w,
                        r);
        shutdown(p->fd[o], SHUT_WR);
        p->shut[i] = 1;
        return 1;
}

static int check_pair(struct pair *p)
{
        int done = 1;
        for (int i = 0; i < 2; i++)
                if (!try_flush(p, i))
                        done = 0;
        if (p->shut[0] && p->shut[1]) {
                teardown(p, 0);
                return 1;
        }
        if (!done && !p->pending) {
                n_flush_waits++;
                p->pending = 1;
                p->next_pending = pending_head;
                pending_head = p;
        }
        return 0;
}

static void on_fin(struct pair *p, int i, int ep)
{
        char buf[65536];
        if (p->fin[i])
                return;
        /* drain anything SK_PASSed to us (setup window) and observe EOF */
        for (;;) {
                ssize_t n = recv(p->fd[i], buf, sizeof(buf), MSG_DONTWAIT);
                if (dbg)
                        fprintf(stderr, "fd %d side %d: recv after RDHUP -> %zd (%s)\n", p->fd[i],
                                i, n, n < 0 ? strerror(errno) : "");
                if (n > 0) { /* slow path: forward ourselves */
                        n_slowpath_bytes += n;
                        send(p->fd[1 - i], buf, n, MSG_NOSIGNAL);
                        continue;
                }
                break;
        }
        p->fin[i] = 1;
        struct epoll_event ev = {.events = 0, .data.ptr = &p->s[i]}; /* ERR/HUP only */
        epoll_ctl(ep, EPOLL_CTL_MOD, p->fd[i], &ev);
}

/* Fallback for sockets the sockmap refuses (only TCP_ESTABLISHED sockets can
 * be inserted: e.g. a client that already sent FIN before accept()). Plain
 * blocking relay in a forked child; rare path. */
static void fallback_relay(int c, int u)
{
        pid_t pid = fork();
        if (pid != 0) {
                close(c);
                close(u);
                return;
        }
        struct pollfd {
                int fd;
                short events, revents;
        };
        int fds[2] = {c, u}, eof[2] = {0, 0};
        int fl;
        for (int i = 0; i < 2; i++) {
                fl = fcntl(fds[i], F_GETFL);
                fcntl(fds[i], F_SETFL, fl & ~O_NONBLOCK);
        }
        char buf[65536];
        while (!eof[0] || !eof[1]) {
                struct pollfd pf[2];
                int m = 0, idx[2];
                for (int i = 0; i < 2; i++)
                        if (!eof[i]) {
                                pf[m].fd = fds[i];
                                pf[m].events = 1;
                                pf[m].revents = 0;
                                idx[m++] = i;
                        }
                extern int poll(void *, unsigned long, int);
                if (poll(pf, m, -1) < 0)
                        break;
                for (int k = 0; k < m; k++) {
                        if (!pf[k].revents)
                                continue;
                        int i = idx[k];
                        ssize_t n = recv(fds[i], buf, sizeof(buf), 0);
                        if (n <= 0) {
                                eof[i] = 1;
                                shutdown(fds[1 - i], SHUT_WR);
                                continue;
                        }
                        for (ssize_t off = 0; off < n;) {
                                ssize_t w = send(fds[1 - i], buf + off, n - off, MSG_NOSIGNAL);
                                if (w <= 0)
                                        _exit(1);
                                off += w;
                        }
                }
        }
        _exit(0);
}

static int connect_up(int port)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(fd, (void *)&a, sizeof(a)) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

static void on_accept(int lfd, int ep, int upport)
{
        for (;;) {
                int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0)
                        return;
                int u = connect_up(upport);
                if (u < 0) {
                        close(c);
                        continue;
                }
                struct pair *p = calloc(1, sizeof(*p));
                p->fd[0] = c;
                p->fd[1] = u;
                int one = 1;
                for (int i = 0; i < 2; i++) {
                        socklen_t l = sizeof(p->ck[i]);
                        getsockopt(p->fd[i], SOL_SOCKET, SO_COOKIE, &p->ck[i], &l);
                        setsockopt(p->fd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                        p->base[i] = written(p->fd[i]);
                        p->s[i].p = p;
                        p->s[i].i = i;
                }
                unsigned long long zero = 0;
                for (int i = 0; i < 2; i++) {
                        bpf_map_update_elem(fd_peer, &p->ck[i], &p->ck[1 - i], BPF_ANY);
                        bpf_map_update_elem(fd_redir, &p->ck[i], &zero, BPF_ANY);
                }
                /* upstream first: client data already queued stays in c's TCP
                 * receive queue until c is in the map; then kick c. */
                unsigned long long uv = u, cv = c; /* value_size is 8 */
                int err = bpf_map_update_elem(fd_socks, &p->ck[1], &uv, BPF_ANY);
                if (!err)
                        err = bpf_map_update_elem(fd_socks, &p->ck[0], &cv, BPF_ANY);
                if (err) {
                        if (dbg)
                                fprintf(stderr, "sockhash update: %s -> user-space fallback\n",
                                        strerror(errno));
                        n_fallback++;
                        for (int i = 0; i < 2; i++) {
                                bpf_map_delete_elem(fd_socks, &p->ck[i]);
                                bpf_map_delete_elem(fd_peer, &p->ck[i]);
                                bpf_map_delete_elem(fd_redir, &p->ck[i]);
                        }
                        fallback_relay(c, u);
                        free(p);
                        continue;
                }
                /* SO_RCVLOWAT -> tcp_set_rcvlowat -> tcp_data_ready -> verdict runs on
                 * data that arrived before insertion */
                for (int i = 0; i < 2; i++)
                        setsockopt(p->fd[i], SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
                for (int i = 0; i < 2; i++) {
                        struct epoll_event ev = {.events = EPOLLRDHUP, .data.ptr = &p->s[i]};
                        epoll_ctl(ep, EPOLL_CTL_ADD, p->fd[i], &ev);
                }
                n_pairs++;
        }
}

static volatile int stop;
static void onsig(int s)
{
        (void)s;
        stop = 1;
}

int main(int argc, char **argv)
{
        if (argc < 3) {
                fprintf(stderr, "usage: smproxy LISTEN_PORT UPSTREAM_PORT\n");
                return 2;
        }
        int lport = atoi(argv[1]), uport = atoi(argv[2]);
        dbg = getenv("SMDEBUG") != NULL;
        signal(SIGPIPE, SIG_IGN);
        signal(SIGCHLD, SIG_IGN);
        signal(SIGINT, onsig);
        signal(SIGTERM, onsig);

        struct sm_bpf *skel = sm_bpf__open_and_load();
        if (!skel) {
                fprintf(stderr, "bpf load failed\n");
                return 1;
        }
        fd_socks = bpf_map__fd(skel->maps.socks);
        fd_peer = bpf_map__fd(skel->maps.peer);
        fd_redir = bpf_map__fd(skel->maps.redir);
        if (bpf_prog_attach(bpf_program__fd(skel->progs.verdict), fd_socks,
                            BPF_SK_SKB_STREAM_VERDICT, 0)) {
                perror("bpf_prog_attach");
                return 1;
        }
        if (getenv("SMDROPPRIV")) { /* experiment: drop root after loading */
                if (setgid(65534) || setuid(65534))
                        perror("setuid");
                else
                        fprintf(stderr, "dropped to uid 65534\n");
        }

        int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(lport)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(lfd, (void *)&a, sizeof(a)) || listen(lfd, 1024)) {
                perror("listen");
                return 1;
        }
        int ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
        fprintf(stderr, "smproxy %d -> %d ready\n", lport, uport);

        struct epoll_event evs[256];
        while (!stop) {
                int n = epoll_wait(ep, evs, 256, pending_head ? 1 : 1000);
                for (int k = 0; k < n; k++) {
                        struct side *s = evs[k].data.ptr;
                        if (!s) {
                                on_accept(lfd, ep, uport);
                                continue;
                        }
                        if (s == (void *)1)
                                continue; /* pair already freed */
                        struct pair *p = s->p;
                        if (dbg)
                                fprintf(stderr, "event side %d fd %d mask 0x%x\n", s->i,
                                        p->fd[s->i], evs[k].events);
                        if (evs[k].events & EPOLLERR) {
                                if (dbg) {
                                        int e = 0;
                                        socklen_t el = sizeof(e);
                                        getsockopt(p->fd[s->i], SOL_SOCKET, SO_ERROR, &e, &el);
                                        fprintf(stderr, "EPOLLERR side %d (%s) -> abort pair\n",
                                                s->i, strerror(e));
                                }
                                /* mark so later events in this batch for the pair are ignored */
                                epoll_ctl(ep, EPOLL_CTL_DEL, p->fd[0], NULL);
                                epoll_ctl(ep, EPOLL_CTL_DEL, p->fd[1], NULL);
                                for (int j = k + 1; j < n; j++)
                                        if (evs[j].data.ptr && evs[j].data.ptr != (void *)1 &&
                                            ((struct side *)evs[j].data.ptr)->p == p)
                                                evs[j].data.ptr = (void *)1;
                                teardown(p, 1);
                                continue;
                        }
                        if (evs[k].events & (EPOLLRDHUP | EPOLLHUP)) {
                                on_fin(p, s->i, ep);
                                if (check_pair(p))
                                        for (int j = k + 1; j < n; j++)
                                                if (evs[j].data.ptr &&
                                                    evs[j].data.ptr != (void *)1 &&
                                                    ((struct side *)evs[j].data.ptr)->p == p)
                                                        evs[j].data.ptr = (void *)1;
                        }
                }
                /* re-check pairs waiting for the deferred redirect queue to drain */
                struct pair *lst = pending_head;
                pending_head = NULL;
                while (lst) {
                        struct pair *p = lst;
                        lst = p->next_pending;
                        p->pending = 0;
                        p->next_pending = NULL;
                        check_pair(p);
                }
        }
        int k0 = 0;
        unsigned long long st[4];
        for (int i = 0; i < 4; i++) {
                k0 = i;
                bpf_map_lookup_elem(bpf_map__fd(skel->maps.stats), &k0, &st[i]);
        }
        fprintf(stderr,
                "smproxy exit: fallback %llu pairs %llu redirected_skbs %llu nopeer_pass %llu "
                "redirect_fail %llu empty_skbs %llu slowpath_bytes %llu flush_waits %llu\n",
                n_fallback, n_pairs, st[0], st[1], st[2], st[3], n_slowpath_bytes, n_flush_waits);
        return 0;
}
