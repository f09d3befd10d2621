/* The handover record's bytes (handover_wire.h). Host byte order: a handover never leaves the
 * machine. Layout: a 48-byte header (magic, version, fd/listener/connection counts, body length,
 * FNV-1a 64 checksum of the body, zero), then each listener (texts, socket count, fd indices),
 * then each connection (texts, fd indices, state, addresses, times, two directions with their
 * bytes in flight), then one 64-bit cookie per fd index. The reader checks every length against
 * what is left and every value against its range, so no input makes it read out of bounds or accept
 * an inconsistent record. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "handover_wire.h"

struct wbuf {
        unsigned char *p;
        size_t len, cap;
        int err;
};

struct rbuf {
        const unsigned char *p;
        size_t len, off;
        int err;
};

static void w_bytes(struct wbuf *w, const void *src, size_t n)
{
        if (w->err)
                return;
        if (w->cap - w->len < n) {
                size_t cap = w->cap ? w->cap : 4096;
                unsigned char *p;

                while (cap - w->len < n)
                        cap *= 2;
                p = realloc(w->p, cap);
                if (!p) {
                        w->err = -ENOMEM;
                        return;
                }
                w->p = p;
                w->cap = cap;
        }
        if (n)
                memcpy(w->p + w->len, src, n);
        w->len += n;
}

#define W_VAL(w, type, v)                                                                          \
        do {                                                                                       \
                type v_ = (type)(v);                                                               \
                w_bytes((w), &v_, sizeof(v_));                                                     \
        } while (0)

static void w_text(struct wbuf *w, const char *s, size_t max)
{
        size_t n = strnlen(s, max);

        if (n >= max && !w->err)
                w->err = -E2BIG;
        W_VAL(w, uint16_t, n);
        w_bytes(w, s, n);
}

static const void *r_take(struct rbuf *r, size_t n)
{
        const void *p;

        if (r->err || r->len - r->off < n) {
                r->err = -EBADMSG;
                return NULL;
        }
        p = r->p + r->off;
        r->off += n;
        return p;
}

#define R_VAL(r, type, out)                                                                        \
        do {                                                                                       \
                const void *p_ = r_take((r), sizeof(type));                                        \
                type v_ = 0;                                                                       \
                if (p_)                                                                            \
                        memcpy(&v_, p_, sizeof(type));                                             \
                (out) = v_;                                                                        \
        } while (0)

/* A text of at most max-1 bytes without NUL inside, NUL-terminated into out[max]. */
static void r_text(struct rbuf *r, char *out, size_t max)
{
        uint16_t n;
        const char *p;

        R_VAL(r, uint16_t, n);
        out[0] = '\0';
        if (r->err)
                return;
        if (n >= max) {
                r->err = -EBADMSG;
                return;
        }
        p = r_take(r, n);
        if (!p)
                return;
        if (memchr(p, '\0', n)) {
                r->err = -EBADMSG;
                return;
        }
        memcpy(out, p, n);
        out[n] = '\0';
}

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
        uint64_t h = UINT64_C(14695981039346656037);

        for (size_t i = 0; i < n; i++) {
                h ^= p[i];
                h *= UINT64_C(1099511628211);
        }
        return h;
}

/* ---- building and freeing ---- */

static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
        size_t ncap;
        void *p;

        if (n < *cap)
                return 0;
        ncap = *cap ? *cap * 2 : 16;
        p = realloc(*arr, ncap * size);
        if (!p)
                return -ENOMEM;
        *arr = p;
        *cap = ncap;
        return 0;
}

int ho_state_add_conn(struct ho_state *st, struct ho_conn **out)
{
        struct ho_conn *c;

        if (grow((void **)&st->cs, &st->cap_cs, st->n_cs, sizeof(*st->cs)) < 0)
                return -ENOMEM;
        c = &st->cs[st->n_cs++];
        memset(c, 0, sizeof(*c));
        c->cfd = c->ufd = -1;
        *out = c;
        return 0;
}

int ho_state_add_listener(struct ho_state *st, unsigned n_socks, struct ho_listener **out)
{
        struct ho_listener *l;
        int *fds = malloc((n_socks ? n_socks : 1) * sizeof(int));

        if (!fds || grow((void **)&st->ls, &st->cap_ls, st->n_ls, sizeof(*st->ls)) < 0) {
                free(fds);
                return -ENOMEM;
        }
        l = &st->ls[st->n_ls++];
        memset(l, 0, sizeof(*l));
        l->n_socks = n_socks;
        l->fds = fds;
        for (unsigned i = 0; i < n_socks; i++)
                fds[i] = -1;
        *out = l;
        return 0;
}

int ho_state_move(struct ho_state *dst, struct ho_state *src)
{
        size_t n_cs = dst->n_cs + src->n_cs, n_ls = dst->n_ls + src->n_ls;
        void *p;

        if (n_cs > dst->cap_cs) {
                p = realloc(dst->cs, n_cs * sizeof(*dst->cs));
                if (!p)
                        return -ENOMEM;
                dst->cs = p;
                dst->cap_cs = n_cs;
        }
        if (n_ls > dst->cap_ls) {
                p = realloc(dst->ls, n_ls * sizeof(*dst->ls));
                if (!p)
                        return -ENOMEM;
                dst->ls = p;
                dst->cap_ls = n_ls;
        }
        if (src->n_cs)
                memcpy(dst->cs + dst->n_cs, src->cs, src->n_cs * sizeof(*src->cs));
        if (src->n_ls)
                memcpy(dst->ls + dst->n_ls, src->ls, src->n_ls * sizeof(*src->ls));
        dst->n_cs = n_cs;
        dst->n_ls = n_ls;
        src->n_cs = src->n_ls = 0; /* entries moved: src frees only its arrays */
        ho_state_free(src);
        return 0;
}

void ho_state_free(struct ho_state *st)
{
        for (size_t i = 0; i < st->n_cs; i++) {
                free(st->cs[i].up.data);
                free(st->cs[i].down.data);
        }
        for (size_t i = 0; i < st->n_ls; i++)
                free(st->ls[i].fds);
        free(st->cs);
        free(st->ls);
        free(st->cookies);
        memset(st, 0, sizeof(*st));
}

static void close_fd(int *fd)
{
        if (*fd >= 0)
                close(*fd);
        *fd = -1;
}

void ho_state_close_fds(struct ho_state *st)
{
        for (size_t i = 0; i < st->n_ls; i++)
                for (unsigned j = 0; j < st->ls[i].n_socks; j++)
                        close_fd(&st->ls[i].fds[j]);
        for (size_t i = 0; i < st->n_cs; i++) {
                close_fd(&st->cs[i].cfd);
                close_fd(&st->cs[i].ufd);
        }
}

uint64_t ho_state_pending(const struct ho_state *st)
{
        uint64_t n = 0;

        for (size_t i = 0; i < st->n_cs; i++)
                n += st->cs[i].up.len + st->cs[i].down.len;
        return n;
}

/* ---- encoding ---- */

static void w_fd(struct wbuf *w, int fd, int *fds, size_t *n_fds)
{
        if (fd < 0) {
                W_VAL(w, uint32_t, UINT32_MAX);
                return;
        }
        if (*n_fds >= HO_MAX_FDS) {
                if (!w->err)
                        w->err = -E2BIG;
                return;
        }
        fds[*n_fds] = fd;
        W_VAL(w, uint32_t, *n_fds);
        (*n_fds)++;
}

static void w_dir(struct wbuf *w, const struct ho_dir *d)
{
        if (d->len > HO_MAX_PENDING && !w->err)
                w->err = -E2BIG;
        W_VAL(w, uint8_t, (d->eof ? 1 : 0) | (d->done ? 2 : 0));
        W_VAL(w, uint64_t, d->bytes);
        W_VAL(w, uint32_t, d->len);
        w_bytes(w, d->data, d->len);
}

static void w_conn(struct wbuf *w, const struct ho_conn *c, int *fds, size_t *n_fds)
{
        w_text(w, c->route, sizeof(c->route));
        w_text(w, c->upstream, sizeof(c->upstream));
        w_fd(w, c->cfd, fds, n_fds);
        w_fd(w, c->ufd, fds, n_fds);
        W_VAL(w, uint8_t, c->state);
        W_VAL(w, uint8_t, c->first_eof);
        W_VAL(w, uint8_t, c->pp_pending);
        W_VAL(w, uint8_t, c->pp_sent);
        W_VAL(w, uint32_t, c->client_len);
        w_bytes(w, &c->client, c->client_len <= sizeof(c->client) ? c->client_len : 0);
        W_VAL(w, uint32_t, c->local_len);
        w_bytes(w, &c->local, c->local_len <= sizeof(c->local) ? c->local_len : 0);
        W_VAL(w, uint64_t, c->age_ms);
        W_VAL(w, uint64_t, c->idle_ms);
        w_dir(w, &c->up);
        w_dir(w, &c->down);
}

static size_t count_fds(const struct ho_state *st)
{
        size_t n = 0;

        for (size_t i = 0; i < st->n_ls; i++)
                n += st->ls[i].n_socks;
        for (size_t i = 0; i < st->n_cs; i++)
                n += (st->cs[i].cfd >= 0) + (st->cs[i].ufd >= 0);
        return n;
}

int ho_encode(const struct ho_state *st, ho_cookie_fn *cookie, unsigned char **buf, size_t *len,
              int **fds_out, size_t *n_fds_out)
{
        unsigned char hdr[HO_HEADER_SIZE] = {0};
        struct wbuf w = {0};
        size_t n_fds = 0, max = count_fds(st);
        int *fds;

        if (max > HO_MAX_FDS || st->n_ls > UINT32_MAX || st->n_cs > UINT32_MAX)
                return -E2BIG;
        fds = malloc((max ? max : 1) * sizeof(int));
        if (!fds)
                return -ENOMEM;
        w_bytes(&w, hdr, sizeof(hdr)); /* filled in below */
        for (size_t i = 0; i < st->n_ls; i++) {
                const struct ho_listener *l = &st->ls[i];

                w_text(&w, l->text, sizeof(l->text));
                w_text(&w, l->route, sizeof(l->route));
                if ((l->n_socks == 0 || l->n_socks > HO_MAX_SOCKS) && !w.err)
                        w.err = -E2BIG;
                W_VAL(&w, uint32_t, l->n_socks);
                for (unsigned j = 0; j < l->n_socks; j++)
                        w_fd(&w, l->fds[j], fds, &n_fds);
        }
        for (size_t i = 0; i < st->n_cs; i++)
                w_conn(&w, &st->cs[i], fds, &n_fds);
        for (size_t i = 0; i < n_fds; i++)
                W_VAL(&w, uint64_t, cookie ? cookie(fds[i]) : 0);
        if (!w.err && w.len > HO_MAX_SIZE)
                w.err = -E2BIG;
        if (w.err) {
                free(w.p);
                free(fds);
                return w.err;
        }
        struct ho_header h = {.version = HO_VERSION,
                              .n_fds = (uint32_t)n_fds,
                              .n_ls = (uint32_t)st->n_ls,
                              .n_cs = (uint32_t)st->n_cs,
                              .body_len = w.len - HO_HEADER_SIZE,
                              .sum = fnv1a(w.p + HO_HEADER_SIZE, w.len - HO_HEADER_SIZE)};
        _Static_assert(sizeof(h) == HO_HEADER_SIZE, "handover header");
        memcpy(h.magic, HO_MAGIC, 8);
        memcpy(w.p, &h, sizeof(h));
        *buf = w.p;
        *len = w.len;
        *fds_out = fds;
        *n_fds_out = n_fds;
        return 0;
}

/* ---- decoding ---- */

struct fdcheck {
        size_t n_fds;
        unsigned char *used; /* one byte per index */
};

/* An fd index: below n_fds and not used before; UINT32_MAX (none) only where allowed. */
static int r_fd(struct rbuf *r, struct fdcheck *fc, bool optional)
{
        uint32_t i;

        R_VAL(r, uint32_t, i);
        if (r->err)
                return -1;
        if (i == UINT32_MAX && optional)
                return -1;
        if (i >= fc->n_fds || fc->used[i]) {
                r->err = -EBADMSG;
                return -1;
        }
        fc->used[i] = 1;
        return (int)i;
}

static void r_dir(struct rbuf *r, struct ho_dir *d)
{
        uint8_t flags;
        const void *p;

        R_VAL(r, uint8_t, flags);
        R_VAL(r, uint64_t, d->bytes);
        R_VAL(r, uint32_t, d->len);
        if (r->err)
                return;
        d->eof = flags & 1;
        d->done = flags & 2;
        /* done means EOF passed on: nothing may be left to write after it */
        if ((flags & ~3u) || (d->done && (!d->eof || d->len)) || d->len > HO_MAX_PENDING) {
                r->err = -EBADMSG;
                return;
        }
        p = r_take(r, d->len);
        if (!p || !d->len)
                return;
        d->data = malloc(d->len);
        if (!d->data) {
                r->err = -ENOMEM;
                return;
        }
        memcpy(d->data, p, d->len);
}

static void r_addr(struct rbuf *r, struct sockaddr_storage *ss, uint32_t *len)
{
        const void *p;

        R_VAL(r, uint32_t, *len);
        if (!r->err && *len > sizeof(*ss)) {
                r->err = -EBADMSG;
                return;
        }
        p = r_take(r, *len);
        if (p && *len) {
                memcpy(ss, p, *len);
                if (*len < sizeof(sa_family_t))
                        r->err = -EBADMSG;
        }
}

static bool conn_consistent(const struct ho_conn *c)
{
        bool fwd = c->state == HO_FORWARDING;

        if (c->state > HO_PROXY_HEADER || c->first_eof > HO_EOF_UPSTREAM || c->route[0] == '\0')
                return false;
        if (fwd != (c->ufd >= 0) || (fwd && c->upstream[0] == '\0'))
                return false;
        if (c->pp_sent > 232 || (!fwd && (c->pp_pending || c->pp_sent)))
                return false;
        /* Before forwarding nothing was read: no byte, no EOF. Both done: it had ended. */
        if (!fwd &&
            (c->up.eof || c->down.eof || c->up.bytes || c->down.bytes || c->up.len || c->down.len))
                return false;
        if (c->up.done && c->down.done)
                return false;
        return (c->first_eof == HO_EOF_NONE) == !(c->up.eof || c->down.eof);
}

static void r_conn(struct rbuf *r, struct ho_conn *c, struct fdcheck *fc)
{
        uint8_t pp;

        r_text(r, c->route, sizeof(c->route));
        r_text(r, c->upstream, sizeof(c->upstream));
        c->cfd = r_fd(r, fc, false);
        c->ufd = r_fd(r, fc, true);
        R_VAL(r, uint8_t, c->state);
        R_VAL(r, uint8_t, c->first_eof);
        R_VAL(r, uint8_t, pp);
        R_VAL(r, uint8_t, c->pp_sent);
        c->pp_pending = pp == 1;
        if (pp > 1 && !r->err)
                r->err = -EBADMSG;
        r_addr(r, &c->client, &c->client_len);
        r_addr(r, &c->local, &c->local_len);
        R_VAL(r, uint64_t, c->age_ms);
        R_VAL(r, uint64_t, c->idle_ms);
        r_dir(r, &c->up);
        r_dir(r, &c->down);
        if (!r->err && !conn_consistent(c))
                r->err = -EBADMSG;
}

static void r_listener(struct rbuf *r, struct ho_state *st, struct fdcheck *fc)
{
        char text[HO_TEXT_MAX], route[CFG_ROUTE_NAME_MAX + 1];
        struct ho_listener *l;
        uint32_t n;

        r_text(r, text, sizeof(text));
        r_text(r, route, sizeof(route));
        R_VAL(r, uint32_t, n);
        if (r->err)
                return;
        if (n == 0 || n > HO_MAX_SOCKS || text[0] == '\0' || route[0] == '\0') {
                r->err = -EBADMSG;
                return;
        }
        if (ho_state_add_listener(st, n, &l) < 0) {
                r->err = -ENOMEM;
                return;
        }
        memcpy(l->text, text, sizeof(text));
        memcpy(l->route, route, sizeof(route));
        for (unsigned j = 0; j < n && !r->err; j++)
                l->fds[j] = r_fd(r, fc, false);
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

        return x < y ? -1 : x > y;
}

/* One cookie per fd index; a non-zero one names one socket, so it may not repeat. */
static void r_cookies(struct rbuf *r, struct ho_state *st, size_t n_fds)
{
        const void *p = r_take(r, n_fds * sizeof(uint64_t));
        uint64_t *sorted;

        if (!p)
                return;
        st->cookies = malloc((n_fds ? n_fds : 1) * sizeof(uint64_t));
        sorted = malloc((n_fds ? n_fds : 1) * sizeof(uint64_t));
        if (!st->cookies || !sorted) {
                free(sorted);
                r->err = -ENOMEM;
                return;
        }
        memcpy(st->cookies, p, n_fds * sizeof(uint64_t));
        st->n_cookies = n_fds;
        memcpy(sorted, p, n_fds * sizeof(uint64_t));
        qsort(sorted, n_fds, sizeof(uint64_t), cmp_u64);
        for (size_t i = 1; i < n_fds; i++)
                if (sorted[i] && sorted[i] == sorted[i - 1])
                        r->err = -EBADMSG;
        free(sorted);
}

static int check_header(const unsigned char *buf, size_t len, size_t n_fds, uint32_t *n_ls,
                        uint32_t *n_cs)
{
        struct ho_header h;

        if (len < sizeof(h))
                return -EBADMSG;
        memcpy(&h, buf, sizeof(h));
        if (memcmp(h.magic, HO_MAGIC, 8) != 0)
                return -EBADMSG;
        if (h.version != HO_VERSION)
                return -EPROTONOSUPPORT;
        if (h.zero != 0 || h.body_len != len - sizeof(h) || h.n_fds != n_fds ||
            n_fds > HO_MAX_FDS || len > HO_MAX_SIZE)
                return -EBADMSG;
        if (fnv1a(buf + sizeof(h), len - sizeof(h)) != h.sum)
                return -EBADMSG;
        /* Each entry takes at least this many bytes: bound the counts before allocating. */
        if (h.n_ls > h.body_len / 12 || h.n_cs > h.body_len / 60)
                return -EBADMSG;
        *n_ls = h.n_ls;
        *n_cs = h.n_cs;
        return 0;
}

int ho_decode(const unsigned char *buf, size_t len, size_t n_fds, struct ho_state *out)
{
        struct rbuf r = {.p = buf, .len = len, .off = HO_HEADER_SIZE};
        struct fdcheck fc = {.n_fds = n_fds};
        uint32_t n_ls = 0, n_cs = 0;
        struct ho_conn *c;
        int err;

        memset(out, 0, sizeof(*out));
        err = check_header(buf, len, n_fds, &n_ls, &n_cs);
        if (err < 0)
                return err;
        fc.used = calloc(n_fds ? n_fds : 1, 1);
        if (!fc.used)
                return -ENOMEM;
        for (uint32_t i = 0; i < n_ls && !r.err; i++)
                r_listener(&r, out, &fc);
        for (uint32_t i = 0; i < n_cs && !r.err; i++) {
                if (ho_state_add_conn(out, &c) < 0)
                        r.err = -ENOMEM;
                else
                        r_conn(&r, c, &fc);
        }
        if (!r.err && n_fds > (r.len - r.off) / sizeof(uint64_t))
                r.err = -EBADMSG;
        if (!r.err)
                r_cookies(&r, out, n_fds);
        if (!r.err && r.off != r.len)
                r.err = -EBADMSG; /* trailing bytes */
        for (size_t i = 0; i < n_fds && !r.err; i++)
                if (!fc.used[i])
                        r.err = -EBADMSG; /* an fd nobody claims */
        free(fc.used);
        if (r.err) {
                ho_state_free(out);
                return r.err;
        }
        return 0;
}

void ho_resign(unsigned char *buf, size_t len)
{
        uint64_t body = len - HO_HEADER_SIZE, sum = fnv1a(buf + HO_HEADER_SIZE, body);

        memcpy(buf + offsetof(struct ho_header, body_len), &body, sizeof(body));
        memcpy(buf + offsetof(struct ho_header, sum), &sum, sizeof(sum));
}

void ho_state_map_fds(struct ho_state *st, const int *fds, size_t n_fds)
{
        for (size_t i = 0; i < st->n_ls; i++)
                for (unsigned j = 0; j < st->ls[i].n_socks; j++)
                        if (st->ls[i].fds[j] >= 0 && (size_t)st->ls[i].fds[j] < n_fds)
                                st->ls[i].fds[j] = fds[st->ls[i].fds[j]];
        for (size_t i = 0; i < st->n_cs; i++) {
                struct ho_conn *c = &st->cs[i];

                if (c->cfd >= 0 && (size_t)c->cfd < n_fds)
                        c->cfd = fds[c->cfd];
                if (c->ufd >= 0 && (size_t)c->ufd < n_fds)
                        c->ufd = fds[c->ufd];
        }
}
