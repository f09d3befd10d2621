/* Listener diff for reload: which listen addresses of the old config survive into the new one
 * (their sockets are kept open), which are new, which are gone. Both sides are sorted by
 * address identity and merged, so a reload of a large file stays O(n log n). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int cfg_listener_ref_cmp(const void *pa, const void *pb)
{
        const struct cfg_listener_ref *a = pa, *b = pb;
        int r = cfg_addr_cmp(a->addr, b->addr);

        if (r)
                return r;
        if (a->route_index != b->route_index)
                return a->route_index < b->route_index ? -1 : 1;
        return a->listen_index < b->listen_index ? -1 : a->listen_index > b->listen_index;
}

static size_t count_listeners(const struct cfg *c)
{
        size_t i, n = 0;

        for (i = 0; c && i < c->n_routes; i++)
                n += c->routes[i].n_listen;
        return n;
}

/* All listeners of c, sorted; an address routes share (match) is one listener, named for
 * its first route in the file; *n shrinks to match. NULL only on allocation failure. */
static struct cfg_listener_ref *collect(const struct cfg *c, size_t *n_inout)
{
        size_t n = *n_inout, kept = 0;
        struct cfg_listener_ref *refs = calloc(n ? n : 1, sizeof(*refs));
        size_t i, j, k = 0;

        if (!refs)
                return NULL;
        for (i = 0; c && i < c->n_routes; i++)
                for (j = 0; j < c->routes[i].n_listen; j++)
                        refs[k++] =
                            (struct cfg_listener_ref){&c->routes[i], &c->routes[i].listen[j], i, j};
        qsort(refs, n, sizeof(*refs), cfg_listener_ref_cmp);
        for (k = 0; k < n; k++)
                if (kept == 0 || cfg_addr_cmp(refs[kept - 1].addr, refs[k].addr) != 0)
                        refs[kept++] = refs[k];
        *n_inout = kept;
        return refs;
}

int cfg_diff_listeners(const struct cfg *old_cfg, const struct cfg *new_cfg, struct cfg_diff *out)
{
        size_t n_old = count_listeners(old_cfg), n_new = count_listeners(new_cfg), i = 0, j = 0;
        struct cfg_listener_ref *o = collect(old_cfg, &n_old), *n = collect(new_cfg, &n_new);
        struct cfg_diff d = {0};
        size_t max_kept = n_old < n_new ? n_old : n_new;

        d.kept_old = calloc(max_kept ? max_kept : 1, sizeof(*d.kept_old));
        d.kept_new = calloc(max_kept ? max_kept : 1, sizeof(*d.kept_new));
        d.added = calloc(n_new ? n_new : 1, sizeof(*d.added));
        d.removed = calloc(n_old ? n_old : 1, sizeof(*d.removed));
        if (!o || !n || !d.kept_old || !d.kept_new || !d.added || !d.removed) {
                free(o);
                free(n);
                cfg_diff_free(&d);
                memset(out, 0, sizeof(*out));
                return -ENOMEM;
        }
        while (i < n_old || j < n_new) {
                int c = i == n_old ? 1 : j == n_new ? -1 : cfg_addr_cmp(o[i].addr, n[j].addr);

                if (c == 0) {
                        d.kept_old[d.n_kept] = o[i++];
                        d.kept_new[d.n_kept++] = n[j++];
                } else if (c < 0) {
                        d.removed[d.n_removed++] = o[i++];
                } else {
                        d.added[d.n_added++] = n[j++];
                }
        }
        free(o);
        free(n);
        *out = d;
        return 0;
}

void cfg_diff_free(struct cfg_diff *d)
{
        if (!d)
                return;
        free(d->kept_old);
        free(d->kept_new);
        free(d->added);
        free(d->removed);
        memset(d, 0, sizeof(*d));
}
