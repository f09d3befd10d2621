/* The resolver's c-ares channel on the driver. c-ares opens its sockets through our socket
 * functions (CLOEXEC|NONBLOCK from birth, registered with the driver at once, deregistered
 * before they are closed, so a reused fd number never meets a stale registration) and tells
 * through its socket-state callback which direction it waits for. A socket's waker feeds it to
 * ares_process_fd() until it has no input left (the driver is edge-triggered; c-ares reads a TCP
 * socket once per call). One driver timer follows ares_timeout() after every call into c-ares.
 * The channel is rebuilt on resolver_reconfigure() and when resolv.conf changes. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <evproxy/driver.h>

#include "resolver_int.h"

#define SYSTEM_RESOLV_CONF "/etc/resolv.conf"
#define PUMP_ROUNDS        32 /* ares_process_fd() calls per wake-up before yielding */

struct resolver_sock {
        struct resolver_sock *next;
        struct resolver *res;
        int fd;
        uint32_t interest;
        uint64_t serial; /* tells this socket from a later one on the same fd number */
        bool more;       /* input was left when its pump stopped */
        struct evio_scheduled_io *io;
};

static struct resolver_sock *sock_find(struct resolver *res, int fd)
{
        for (struct resolver_sock *s = res->socks; s; s = s->next)
                if (s->fd == fd)
                        return s;
        return NULL;
}

static void sock_drop(struct resolver *res, struct resolver_sock *s)
{
        struct resolver_sock **p = &res->socks;

        while (*p != s)
                p = &(*p)->next;
        *p = s->next;
        evio_handle_deregister(res->handle, s->io); /* before c-ares closes the fd */
        res->m.sockets--;
        free(s);
}

/* Is there input (or an error, or EOF) waiting? poll() consumes nothing, not even an error. */
static bool sock_has_input(int fd)
{
        struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};

        return poll(&p, 1, 0) == 1 && p.revents;
}

static bool sock_alive(struct resolver *res, int fd, uint64_t serial)
{
        struct resolver_sock *s = sock_find(res, fd);

        return s && s->serial == serial;
}

/* Feed one socket to c-ares until it has no input left; a callback may close it meanwhile. */
static void sock_pump(struct resolver *res, struct resolver_sock *s, bool readable, bool writable)
{
        int fd = s->fd;
        uint64_t serial = s->serial;
        ares_socket_t rfd = readable ? fd : ARES_SOCKET_BAD;
        ares_socket_t wfd = writable ? fd : ARES_SOCKET_BAD;

        for (int i = 0; i < PUMP_ROUNDS; i++) {
                ares_process_fd(res->channel, rfd, wfd);
                wfd = ARES_SOCKET_BAD;
                if (rfd == ARES_SOCKET_BAD || !sock_alive(res, fd, serial) || !sock_has_input(fd))
                        return;
        }
        /* Still input after a full batch: the ares timer comes back for it this turn. */
        s->more = true;
        res->pump_more = true;
}

static void sock_wake(void *arg, uint32_t ready)
{
        struct resolver_sock *s = arg;
        struct resolver *res = s->res;
        uint32_t rmask = EVIO_READY_READABLE | EVIO_READY_READ_CLOSED | EVIO_READY_ERROR;
        uint32_t wmask = EVIO_READY_WRITABLE | EVIO_READY_WRITE_CLOSED | EVIO_READY_ERROR;

        assert(res->depth == 0);
        resolver__enter(res);
        sock_pump(res, s, ready & rmask, (ready & wmask) && (s->interest & EVIO_INTEREST_WRITABLE));
        resolver__leave(res);
}

static ares_socket_t sock_open(int af, int type, int protocol, void *user)
{
        struct resolver *res = user;
        struct evio_waker w = {.fn = sock_wake};
        struct resolver_sock *s;
        int fd, one = 1, r;

        fd = socket(af, type | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
        if (fd == -1)
                return ARES_SOCKET_BAD;
        if (type == SOCK_STREAM)
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        s = calloc(1, sizeof(*s));
        if (!s) {
                r = -ENOMEM;
                goto err_close;
        }
        *s = (struct resolver_sock){
            .res = res, .fd = fd, .serial = ++res->sock_serial, .interest = EVIO_INTEREST_READABLE};
        w.arg = s;
        r = evio_handle_register(res->handle, fd, s->interest, &w, &s->io);
        if (r < 0)
                goto err_free;
        s->next = res->socks;
        res->socks = s;
        res->m.sockets++;
        return fd;

err_free:
        free(s);
err_close:
        close(fd);
        errno = -r;
        return ARES_SOCKET_BAD;
}

static int sock_close(ares_socket_t fd, void *user)
{
        struct resolver *res = user;
        struct resolver_sock *s = sock_find(res, fd);

        if (s)
                sock_drop(res, s);
        return close(fd);
}

static int sock_connect(ares_socket_t fd, const struct sockaddr *sa, ares_socklen_t len, void *user)
{
        return connect(fd, sa, len);
}

static ares_ssize_t sock_recvfrom(ares_socket_t fd, void *buf, size_t len, int flags,
                                  struct sockaddr *from, ares_socklen_t *fromlen, void *user)
{
        return recvfrom(fd, buf, len, flags, from, fromlen);
}

/* sendmsg, not writev: a TCP server that reset must not raise SIGPIPE. */
static ares_ssize_t sock_sendv(ares_socket_t fd, const struct iovec *iov, int n, void *user)
{
        struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};

        return sendmsg(fd, &msg, MSG_NOSIGNAL);
}

static const struct ares_socket_functions sock_funcs = {
    .asocket = sock_open,
    .aclose = sock_close,
    .aconnect = sock_connect,
    .arecvfrom = sock_recvfrom,
    .asendv = sock_sendv,
};

/* c-ares says which directions it waits for; 0,0 means it is about to close the socket. */
static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
        struct resolver *res = data;
        struct resolver_sock *s = sock_find(res, fd);
        uint32_t interest;

        if (!s)
                return;
        if (!readable && !writable) {
                sock_drop(res, s);
                return;
        }
        interest =
            (readable ? EVIO_INTEREST_READABLE : 0) | (writable ? EVIO_INTEREST_WRITABLE : 0);
        /* EPOLL_CTL_MOD re-evaluates readiness: asking for WRITABLE on a socket that is already
         * writable still brings an edge. */
        if (interest != s->interest && evio_handle_reregister(res->handle, s->io, interest) == 0)
                s->interest = interest;
}

static void ares_timer_fired(struct evio_timer *t, void *arg)
{
        struct resolver *res = arg;
        struct resolver_sock *s;

        assert(res->depth == 0);
        resolver__enter(res);
        ares_process_fd(res->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
        if (res->pump_more) {
                res->pump_more = false;
                /* One socket per pass: the list may change under a pump. */
                while ((s = res->socks) != NULL) {
                        while (s && !s->more)
                                s = s->next;
                        if (!s)
                                break;
                        s->more = false;
                        sock_pump(res, s, true, false);
                        if (res->pump_more)
                                break;
                }
        }
        resolver__leave(res);
}

static void arm_ares_timer(struct resolver *res)
{
        struct timeval tv, *tvp = ares_timeout(res->channel, NULL, &tv);
        uint64_t now = evio_now_ms();

        if (res->pump_more) {
                resolver__arm(res, &res->ares_timer, now);
        } else if (tvp) {
                /* Round up, plus one: c-ares must find the timeout passed when the timer fires. */
                uint64_t ms = (uint64_t)tvp->tv_sec * 1000 + ((uint64_t)tvp->tv_usec + 999) / 1000;
                resolver__arm(res, &res->ares_timer, now + ms + 1);
        } else {
                evio_timer_cancel(res->driver, &res->ares_timer);
        }
}

void resolver__enter(struct resolver *res)
{
        res->depth++;
}

void resolver__leave(struct resolver *res)
{
        assert(res->depth > 0);
        if (--res->depth == 0 && !res->freeing && res->channel)
                arm_ares_timer(res);
}

void resolver__arm(struct resolver *res, struct evio_timer *t, uint64_t deadline_ms)
{
        if (evio_timer_arm(res->driver, t, deadline_ms) < 0)
                res->m.timer_errors++;
}

uint64_t resolver__random(struct resolver *res)
{
        /* xorshift64*: jitter only, no secrecy needed. */
        res->rng ^= res->rng >> 12;
        res->rng ^= res->rng << 25;
        res->rng ^= res->rng >> 27;
        return res->rng * 2685821657736338717ULL;
}

static int errno_from_ares(int status)
{
        switch (status) {
        case ARES_ENOMEM:
                return -ENOMEM;
        case ARES_EFILE:
                return -EIO;
        default:
                return -EINVAL;
        }
}

static int channel_new(struct resolver *res, const struct resolver_options *o,
                       const char *resolv_conf, const char *servers_csv, ares_channel *out)
{
        struct ares_options ao = {
            .sock_state_cb = sock_state,
            .sock_state_cb_data = res,
            .lookups = (char *)"fb", /* /etc/hosts, then DNS, whatever nsswitch.conf says */
        };
        int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS, st;
        ares_channel ch;

        if (resolv_conf) {
                ao.resolvconf_path = (char *)resolv_conf;
                mask |= ARES_OPT_RESOLVCONF;
        }
        if (o->timeout_ms) {
                ao.timeout = (int)o->timeout_ms;
                mask |= ARES_OPT_TIMEOUTMS;
        }
        if (o->attempts) {
                ao.tries = (int)o->attempts;
                mask |= ARES_OPT_TRIES;
        }
        st = ares_init_options(&ch, &ao, mask);
        if (st != ARES_SUCCESS)
                return errno_from_ares(st);
        ares_set_socket_functions(ch, &sock_funcs, res);
        if (servers_csv) {
                st = ares_set_servers_ports_csv(ch, servers_csv);
                if (st != ARES_SUCCESS) {
                        ares_destroy(ch);
                        return errno_from_ares(st);
                }
        }
        *out = ch;
        return 0;
}

/* "a,b,c" from the nameserver list; each entry must be non-empty and free of separators. */
static int servers_join(const struct resolver_options *o, char **out)
{
        size_t len = 1;
        char *csv;

        *out = NULL;
        if (!o->nameservers || !o->n_nameservers)
                return 0;
        for (size_t i = 0; i < o->n_nameservers; i++) {
                const char *s = o->nameservers[i];
                if (!s || !*s || strpbrk(s, ", \t\n"))
                        return -EINVAL;
                len += strlen(s) + 1;
        }
        csv = malloc(len);
        if (!csv)
                return -ENOMEM;
        len = 0;
        for (size_t i = 0; i < o->n_nameservers; i++) {
                size_t n = strlen(o->nameservers[i]);
                if (i)
                        csv[len++] = ',';
                memcpy(csv + len, o->nameservers[i], n);
                len += n;
        }
        csv[len] = 0;
        *out = csv;
        return 0;
}

static void opts_defaults(struct resolver_options *o)
{
        o->ttl_min_ms = o->ttl_min_ms ? o->ttl_min_ms : 5000;
        o->ttl_max_ms = o->ttl_max_ms ? o->ttl_max_ms : 300000;
        o->retry_min_ms = o->retry_min_ms ? o->retry_min_ms : 1000;
        o->retry_max_ms = o->retry_max_ms ? o->retry_max_ms : 30000;
        o->nxdomain_hold_ms = o->nxdomain_hold_ms ? o->nxdomain_hold_ms : 60000;
        o->refresh_now_min_ms = o->refresh_now_min_ms ? o->refresh_now_min_ms : 1000;
        o->conf_check_ms = o->conf_check_ms ? o->conf_check_ms : 2000;
        o->jitter_pct = o->jitter_pct ? o->jitter_pct : 10;
        o->max_addresses = o->max_addresses ? o->max_addresses : 256;
        o->max_srv_targets = o->max_srv_targets ? o->max_srv_targets : 32;
        o->nameservers = NULL; /* kept as servers_csv */
        o->n_nameservers = 0;
        o->resolv_conf = NULL; /* kept as resolv_conf */
}

static bool opts_valid(const struct resolver_options *o)
{
        return o->ttl_min_ms <= o->ttl_max_ms && o->retry_min_ms <= o->retry_max_ms &&
               o->jitter_pct < 100 && o->timeout_ms <= 600000 && o->attempts <= 100;
}

static void conf_stamp(const char *path, struct resolver_conf_stamp *out)
{
        struct stat st;

        *out = (struct resolver_conf_stamp){0};
        if (stat(path, &st) == -1)
                return;
        *out = (struct resolver_conf_stamp){.exists = true,
                                            .dev = st.st_dev,
                                            .ino = st.st_ino,
                                            .size = st.st_size,
                                            .mtime = st.st_mtim};
}

static bool conf_same(const struct resolver_conf_stamp *a, const struct resolver_conf_stamp *b)
{
        return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
               a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
               a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static const char *conf_path(const struct resolver *res)
{
        return res->resolv_conf ? res->resolv_conf : SYSTEM_RESOLV_CONF;
}

/* Swap in a new channel; the old one's lookups end with ARES_EDESTRUCTION and start again. */
static void channel_swap(struct resolver *res, ares_channel ch)
{
        ares_channel old = res->channel;

        res->channel = ch;
        res->m.channel_reloads++;
        resolver__enter(res);
        ares_destroy(old);
        resolver__leave(res);
}

void resolver__check_conf(struct resolver *res)
{
        struct resolver_conf_stamp now_stamp;
        uint64_t now = evio_now_ms();
        ares_channel ch;
        int r;

        if (res->depth || now - res->conf_checked_ms < res->o.conf_check_ms)
                return;
        res->conf_checked_ms = now;
        conf_stamp(conf_path(res), &now_stamp);
        if (conf_same(&now_stamp, &res->conf))
                return;
        r = channel_new(res, &res->o, res->resolv_conf, res->servers_csv, &ch);
        if (r < 0) {
                /* Keep the old channel; the next check tries again. */
                res->m.channel_reload_errors++;
        } else {
                res->conf = now_stamp;
                channel_swap(res, ch);
        }
        if (res->o.on_reload)
                res->o.on_reload(res->o.on_reload_arg, r);
}

/* Validate and copy opts into *o, *rc and *csv (owned by the caller on success). */
static int opts_load(const struct resolver_options *opts, struct resolver_options *o, char **rc,
                     char **csv)
{
        int r;

        *o = opts ? *opts : (struct resolver_options){0};
        *rc = NULL;
        r = servers_join(o, csv);
        if (r < 0)
                return r;
        if (o->resolv_conf) {
                *rc = strdup(o->resolv_conf);
                if (!*rc) {
                        free(*csv);
                        return -ENOMEM;
                }
        }
        opts_defaults(o);
        if (!opts_valid(o)) {
                free(*rc);
                free(*csv);
                return -EINVAL;
        }
        return 0;
}

int resolver_new(struct evio_driver *d, const struct resolver_options *opts, struct resolver **out)
{
        struct resolver *res;
        uint64_t seed = 0;
        int r;

        if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
                return -ENOMEM;
        res = calloc(1, sizeof(*res));
        if (!res) {
                r = -ENOMEM;
                goto err_cleanup;
        }
        res->driver = d;
        res->handle = evio_driver_handle(d);
        res->owner = pthread_self();
        evio_timer_init(&res->ares_timer, ares_timer_fired, res);
        r = opts_load(opts, &res->o, &res->resolv_conf, &res->servers_csv);
        if (r < 0)
                goto err_free;
        conf_stamp(conf_path(res), &res->conf);
        res->conf_checked_ms = evio_now_ms();
        r = channel_new(res, &res->o, res->resolv_conf, res->servers_csv, &res->channel);
        if (r < 0)
                goto err_free_opts;
        if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
                seed = evio_now_ms() ^ ((uint64_t)getpid() << 32);
        res->rng = seed | 1;
        *out = res;
        return 0;

err_free_opts:
        free(res->resolv_conf);
        free(res->servers_csv);
err_free:
        free(res);
err_cleanup:
        ares_library_cleanup();
        return r;
}

int resolver_reconfigure(struct resolver *res, const struct resolver_options *opts)
{
        struct resolver_options o;
        char *rc, *csv;
        ares_channel ch;
        int r;

        resolver__assert_owner(res);
        assert(res->depth == 0);
        r = opts_load(opts, &o, &rc, &csv);
        if (r < 0)
                return r;
        r = channel_new(res, &o, rc, csv, &ch);
        if (r < 0) {
                free(rc);
                free(csv);
                res->m.channel_reload_errors++;
                return r;
        }
        free(res->resolv_conf);
        free(res->servers_csv);
        res->o = o;
        res->resolv_conf = rc;
        res->servers_csv = csv;
        conf_stamp(conf_path(res), &res->conf);
        res->conf_checked_ms = evio_now_ms();
        channel_swap(res, ch);
        return 0;
}

void resolver_free(struct resolver *res)
{
        if (!res)
                return;
        resolver__assert_owner(res);
        assert(res->depth == 0);
        res->freeing = true;
        resolver__watches_stop(res);
        /* Every lookup in flight ends here with ARES_EDESTRUCTION; nobody is told. */
        resolver__enter(res);
        ares_destroy(res->channel);
        res->channel = NULL;
        resolver__leave(res);
        resolver__watches_free(res);
        evio_timer_cancel(res->driver, &res->ares_timer);
        assert(!res->socks);
        free(res->resolv_conf);
        free(res->servers_csv);
        free(res);
        ares_library_cleanup();
}

void resolver_metrics(const struct resolver *res, struct resolver_metrics *out)
{
        resolver__assert_owner(res);
        *out = res->m;
}

enum resolver_status resolver__status_from_ares(int status)
{
        switch (status) {
        case ARES_SUCCESS:
                return RESOLVER_STATUS_OK;
        case ARES_ENOTFOUND:
                return RESOLVER_STATUS_NXDOMAIN;
        case ARES_ENODATA:
                return RESOLVER_STATUS_NODATA;
        case ARES_ETIMEOUT:
                return RESOLVER_STATUS_TIMEOUT;
        case ARES_ESERVFAIL:
                return RESOLVER_STATUS_SERVFAIL;
        case ARES_EREFUSED:
        case ARES_ECONNREFUSED:
                return RESOLVER_STATUS_REFUSED;
        default:
                return RESOLVER_STATUS_ERROR;
        }
}

const char *resolver_status_name(enum resolver_status s)
{
        static const char *const names[RESOLVER_STATUS_COUNT] = {
            "ok", "nxdomain", "nodata", "timeout", "servfail", "refused", "error",
        };

        return (unsigned)s < RESOLVER_STATUS_COUNT ? names[s] : "unknown";
}

bool resolver_status_is_negative(enum resolver_status s)
{
        return s == RESOLVER_STATUS_NXDOMAIN || s == RESOLVER_STATUS_NODATA;
}
