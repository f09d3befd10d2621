/* Handover through systemd's fd store (handover = { fdstore = true; }, NOTIFY_SOCKET set).
 * Old process, on SIGTERM: every fd goes to the store as FDNAME=evproxy-fd, then the record's
 * memfd as FDNAME=evproxy-handover, all with FDPOLL=0 (systemd >= 246): the store must not
 * close a socket whose peer hung up, or its unread bytes would be lost. New process: the stored
 * fds come back in LISTEN_FDS in no particular order, so each is matched to its index by its
 * SO_COOKIE; once this process runs, both names are removed from the store (FDSTOREREMOVE=1),
 * else a finished connection's socket would stay open in the store. Until then the store keeps
 * everything: a successor that fails leaves it for the next start. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <evproxy/sd.h>

#include "daemon.h"
#include "gen.h"
#include "handover.h"
#include "handover_int.h"
#include "handover_msg.h"
#include "log.h"

#define NAME_FD    "evproxy-fd"
#define NAME_STATE "evproxy-handover"

bool ho_fdstore_wanted(const struct daemon *d)
{
        const char *e = getenv("NOTIFY_SOCKET");

        return d->gen->cfg->handover.fdstore && e && *e;
}

/* Whether this SIGTERM is a restart, asked of systemd: its job on our unit. A stop (and a
 * SIGTERM with no job: `kill`, `systemctl kill`) drains instead, because systemd 252 discards
 * the store when the service stops and would close every connection at once. A process that is
 * not the unit's main process, or a bus that cannot be asked, hands over as configured. */
bool ho_fdstore_restarting(void)
{
        char type[32];
        int r = evsd_unit_job(type, sizeof(type));

        if (r == 1 && (strcmp(type, "restart") == 0 || strcmp(type, "try-restart") == 0))
                return true;
        if (r >= 0) {
                log_notice("stopping: systemd's job is %s, not a restart: draining instead of "
                           "handing over to the fd store (which a stop discards)",
                           r ? type : "none");
                return false;
        }
        if (r != -ESRCH)
                log_warning_errno(r, "stopping: cannot ask systemd whether this is a restart "
                                     "(handing over to the fd store as configured)");
        return true;
}

/* Everything to the store; on failure what was stored is removed again. */
int ho_fdstore_push(struct handover *ho)
{
        unsigned char *buf;
        size_t len, n_fds, n;
        int *fds, mfd, r;

        r = ho_encode(&ho->st, ho_cookie, &buf, &len, &fds, &n_fds);
        if (r < 0)
                return r;
        mfd = ho_memfd_write(buf, len);
        free(buf);
        r = mfd < 0 ? mfd : 1;
        for (size_t off = 0; r > 0 && off < n_fds; off += n) {
                n = n_fds - off < HO_FDS_PER_MSG ? n_fds - off : HO_FDS_PER_MSG;
                r = evsd_notify_fds("FDSTORE=1\nFDPOLL=0\nFDNAME=" NAME_FD, fds + off, n);
        }
        if (r > 0)
                r = evsd_notify_fds("FDSTORE=1\nFDPOLL=0\nFDNAME=" NAME_STATE, &mfd, 1);
        free(fds);
        if (mfd >= 0)
                close(mfd);
        if (r <= 0) {
                (void)evsd_notify_fds("FDSTOREREMOVE=1\nFDNAME=" NAME_FD, NULL, 0);
                return r < 0 ? r : -ENOTCONN;
        }
        return 0;
}

struct by_cookie {
        uint64_t cookie;
        size_t index;
};

static int cmp_cookie(const void *a, const void *b)
{
        uint64_t x = ((const struct by_cookie *)a)->cookie;
        uint64_t y = ((const struct by_cookie *)b)->cookie;

        return x < y ? -1 : x > y;
}

/* fds[] (any order) to the record's indices by cookie: every index exactly once. */
static int map_by_cookie(struct ho_state *st, const int *fds, size_t n)
{
        struct by_cookie *idx = calloc(n ? n : 1, sizeof(*idx));
        int *ordered = malloc((n ? n : 1) * sizeof(int));
        int r = idx && ordered ? 0 : -ENOMEM;

        for (size_t i = 0; r == 0 && i < n; i++) {
                idx[i] = (struct by_cookie){.cookie = st->cookies[i], .index = i};
                ordered[i] = -1;
        }
        if (r == 0)
                qsort(idx, n, sizeof(*idx), cmp_cookie);
        for (size_t i = 0; r == 0 && i < n; i++) {
                struct by_cookie key = {.cookie = ho_cookie(fds[i])};
                struct by_cookie *hit = bsearch(&key, idx, n, sizeof(*idx), cmp_cookie);

                if (!key.cookie || !hit || ordered[hit->index] >= 0)
                        r = -EBADMSG; /* unknown, or one socket twice */
                else
                        ordered[hit->index] = fds[i];
        }
        if (r == 0)
                ho_state_map_fds(st, ordered, n);
        free(idx);
        free(ordered);
        return r;
}

/* Our entries out of d->passed (socket activation's stay): the record's memfd (-1 if none,
 * -2 if several) and the fds. */
static int take_entries(struct daemon *d, int *mfd, int **fds, size_t *n_fds)
{
        size_t k = 0, ours = 0;

        *mfd = -1;
        *n_fds = 0;
        *fds = NULL;
        for (size_t i = 0; i < d->n_passed; i++)
                ours +=
                    !strcmp(d->passed[i].name, NAME_FD) || !strcmp(d->passed[i].name, NAME_STATE);
        if (ours == 0) /* a start that follows no handover: nothing to do, nothing to allocate */
                return 0;
        *fds = malloc(ours * sizeof(int));
        if (!*fds)
                return log_error_errno(-ENOMEM, "handover: taking the fd store's sockets");
        for (size_t i = 0; i < d->n_passed; i++) {
                if (strcmp(d->passed[i].name, NAME_FD) == 0)
                        (*fds)[(*n_fds)++] = d->passed[i].fd;
                else if (strcmp(d->passed[i].name, NAME_STATE) == 0 && *mfd == -1)
                        *mfd = d->passed[i].fd;
                else if (strcmp(d->passed[i].name, NAME_STATE) == 0) {
                        close(d->passed[i].fd);
                        *mfd = -2;
                } else
                        d->passed[k++] = d->passed[i];
        }
        d->n_passed = k;
        return 0;
}

static void drop_entries(int mfd, int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++)
                close(fds[i]);
        if (mfd >= 0)
                close(mfd);
        (void)evsd_notify_fds("FDSTOREREMOVE=1\nFDNAME=" NAME_FD, NULL, 0);
        (void)evsd_notify_fds("FDSTOREREMOVE=1\nFDNAME=" NAME_STATE, NULL, 0);
}

int ho_fdstore_take(struct daemon *d, struct handover *ho)
{
        unsigned char *buf = NULL;
        size_t len, n;
        int mfd, *fds, r;

        r = take_entries(d, &mfd, &fds, &n);
        if (r < 0 || (mfd == -1 && n == 0)) {
                free(fds);
                return r;
        }
        r = mfd < 0 ? -ENODATA : ho_memfd_read(mfd, HO_MAX_SIZE, &buf, &len);
        if (r == 0)
                r = ho_decode(buf, len, n, &ho->st);
        free(buf);
        if (r == 0 && (r = map_by_cookie(&ho->st, fds, n)) < 0)
                ho_state_free(&ho->st);
        if (r < 0) {
                /* Nothing to resume from: start afresh rather than fail every start. */
                log_error_errno(r,
                                "handover: the fd store holds %zu fds and %s record: "
                                "closing them, starting afresh",
                                n,
                                mfd == -1   ? "no"
                                : mfd == -2 ? "more than one"
                                            : "an invalid");
                drop_entries(mfd, fds, n);
                free(fds);
                return 0;
        }
        close(mfd);
        free(fds);
        ho->took = ho->from_store = true;
        log_info("handover: the fd store gave %zu listeners, %zu connections, %llu bytes in "
                 "flight",
                 ho->st.n_ls, ho->st.n_cs, (unsigned long long)ho_state_pending(&ho->st));
        return 0;
}

void ho_fdstore_release(struct handover *ho)
{
        if (!ho->from_store)
                return;
        (void)evsd_notify_fds("FDSTOREREMOVE=1\nFDNAME=" NAME_FD, NULL, 0);
        (void)evsd_notify_fds("FDSTOREREMOVE=1\nFDNAME=" NAME_STATE, NULL, 0);
        ho->from_store = false;
}
