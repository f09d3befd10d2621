/* The state file: upstream servers the admin set to drain or maint, so that neither a reload
 * (the states live in the shared struct upstream_server) nor a restart (this file) puts a server
 * in maintenance back into service. Format (JSON):
 *   {"version": 1, "servers": [{"route": "web", "server": "10.0.0.1:80", "state": "maint"}]}
 * Written whole on every change: a temp file beside it, fsync, rename, fsync of the directory.
 * Entries whose route or server left the configuration are dropped (logged) at start-up and
 * from the next write on. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin.h"
#include "admin_int.h"
#include "daemon.h"
#include "gen.h"
#include "log.h"
#include "server_set.h"
#include "upstream.h"

#define STATE_VERSION  1
#define STATE_MAX_SIZE (16u << 20)

static json_t *a_pending(struct daemon *d)
{
        return d->admin ? d->admin->pending : NULL;
}

/* The file's text for d's current states (malloc'd), or NULL without memory. */
static char *state_text(struct daemon *d)
{
        json_t *root = json_pack("{s:i, s:[]}", "version", STATE_VERSION, "servers");
        json_t *list = json_object_get(root, "servers");
        const struct gen *g = d->gen;
        char *text = NULL;
        bool failed = !root;

        for (size_t i = 0; !failed && i < g->n_routes; i++) {
                struct route *r = &g->routes[i];
                struct server_set *set = route_set_get(r);

                for (size_t j = 0; !failed && j < set->n; j++) {
                        unsigned st = atomic_load(&set->e[j].srv->admin);

                        if (st == ADMIN_STATE_READY)
                                continue;
                        failed = json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "route",
                                                                       r->cfg->name, "server",
                                                                       set->e[j].addr.text, "state",
                                                                       admin_state_name(st))) != 0;
                }
                server_set_unref(set);
        }
        for (size_t i = 0; !failed && a_pending(d) && i < json_array_size(a_pending(d)); i++)
                failed = json_array_append(list, json_array_get(a_pending(d), i)) != 0;
        if (!failed)
                text = json_dumps(root, JSON_INDENT(2));
        json_decref(root);
        return text;
}

static int write_all(int fd, const char *text, size_t len)
{
        while (len > 0) {
                ssize_t n = write(fd, text, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                text += n;
                len -= (size_t)n;
        }
        return 0;
}

static int fsync_dir(const char *path)
{
        char *copy = strdup(path);
        int fd, r = 0;

        if (!copy)
                return -ENOMEM;
        fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        free(copy);
        if (fd == -1)
                return -errno;
        if (fsync(fd) == -1)
                r = -errno;
        close(fd);
        return r;
}

/* Write text to path atomically; what failed goes to why. */
static int replace_file(const char *path, const char *text, char *why, size_t why_len)
{
        char tmp[4200];
        const char *step = "creating";
        int fd, r;

        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        (void)unlink(tmp); /* left by a crash, maybe by another user: start afresh */
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (fd == -1) {
                r = -errno;
                goto fail;
        }
        step = "writing";
        r = write_all(fd, text, strlen(text));
        if (r == 0)
                r = write_all(fd, "\n", 1);
        if (r == 0 && fsync(fd) == -1)
                r = -errno;
        if (close(fd) == -1 && r == 0)
                r = -errno;
        if (r == 0) {
                step = "renaming";
                r = rename(tmp, path) == -1 ? -errno : 0;
        }
        if (r < 0) {
                (void)unlink(tmp);
                goto fail;
        }
        step = "syncing the directory of";
        r = fsync_dir(path);
        if (r == 0)
                return 0;
fail:
        snprintf(why, why_len, "%s the state file %s: %s", step, step[0] == 'r' ? path : tmp,
                 strerror(-r));
        return r;
}

int admin_state_save(struct admin_server *a, char *why, size_t why_len)
{
        char *text = state_text(a->d);
        int r;

        if (!text) {
                snprintf(why, why_len, "out of memory writing the state file");
                return -ENOMEM;
        }
        if (a->saved && strcmp(a->saved, text) == 0) {
                free(text);
                return 0; /* nothing changed: no disk write on every reload */
        }
        r = replace_file(a->state_file, text, why, why_len);
        if (r < 0) {
                free(text);
                return r;
        }
        free(a->saved);
        a->saved = text;
        return 0;
}

/* Apply one entry of the file; false if it names nothing of the configuration. */
static int apply_entry(struct admin_server *a, json_t *e, size_t index, bool *dropped)
{
        const char *route, *server, *state;
        enum admin_state st;
        json_error_t jerr;
        struct server_set *set;
        struct route *r;
        int i;

        if (json_unpack_ex(e, &jerr, JSON_STRICT, "{s:s, s:s, s:s}", "route", &route, "server",
                           &server, "state", &state) < 0) {
                log_error("admin: state file %s: servers[%zu]: %s", a->state_file, index,
                          jerr.text);
                return -EINVAL;
        }
        if (admin_state_parse(state, &st) < 0) {
                log_error("admin: state file %s: servers[%zu]: unknown state \"%s\"", a->state_file,
                          index, state);
                return -EINVAL;
        }
        r = admin_find_route(a->d, route);
        set = r ? route_set_get(r) : NULL;
        i = set ? admin_find_server(set, server) : -1;
        if (i < 0 && r && r->cfg->n_named && st != ADMIN_STATE_READY) {
                /* Perhaps an address of one of its names, not resolved yet: kept until it is
                 * (admin_state_set_published), and in the file meanwhile. */
                server_set_unref(set);
                if (!a->pending && !(a->pending = json_array()))
                        return -ENOMEM;
                return json_array_append(a->pending, e) == 0 ? 0 : -ENOMEM;
        }
        if (i < 0) {
                server_set_unref(set);
                log_notice("admin: state file: route %s server %s is no longer configured; its "
                           "state (%s) is dropped",
                           route, server, state);
                *dropped = true;
                return 0;
        }
        atomic_store(&set->e[i].srv->admin, st);
        server_set_unref(set);
        if (st != ADMIN_STATE_READY)
                log_notice("admin: route %s server %s: %s (from the state file)", route, server,
                           state);
        return 0;
}

static int apply_file(struct admin_server *a, json_t *root, bool *dropped)
{
        json_error_t jerr;
        json_t *list, *e;
        size_t i;
        int version, r;

        if (json_unpack_ex(root, &jerr, JSON_STRICT, "{s:i, s:o}", "version", &version, "servers",
                           &list) < 0 ||
            !json_is_array(list)) {
                log_error("admin: state file %s: expected {\"version\": 1, \"servers\": [...]}: %s",
                          a->state_file, json_is_array(list) ? jerr.text : "no servers list");
                return -EINVAL;
        }
        if (version != STATE_VERSION) {
                log_error("admin: state file %s: version %d, this daemon reads version %d",
                          a->state_file, version, STATE_VERSION);
                return -EINVAL;
        }
        json_array_foreach(list, i, e)
        {
                r = apply_entry(a, e, i, dropped);
                if (r < 0)
                        return r;
        }
        return 0;
}

int admin_state_load(struct admin_server *a)
{
        json_error_t jerr;
        struct stat st;
        bool dropped = false;
        json_t *root;
        char why[600];
        int fd, r;

        fd = open(a->state_file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd == -1 && errno == ENOENT)
                return 0; /* first start: every server ready */
        if (fd == -1 || fstat(fd, &st) == -1) {
                r = -errno;
                if (fd >= 0)
                        close(fd);
                return log_error_errno(r, "admin: state file %s", a->state_file);
        }
        if (!S_ISREG(st.st_mode) || st.st_size > STATE_MAX_SIZE) {
                close(fd);
                log_error("admin: state file %s: not a regular file of at most %u MiB",
                          a->state_file, STATE_MAX_SIZE >> 20);
                return -EINVAL;
        }
        root = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
        close(fd);
        if (!root) {
                log_error("admin: state file %s:%d: %s (fix or remove the file)", a->state_file,
                          jerr.line, jerr.text);
                return -EINVAL;
        }
        r = apply_file(a, root, &dropped);
        json_decref(root);
        if (r < 0)
                return r;
        if (!dropped) {
                a->saved = state_text(a->d); /* the file says just that: no rewrite needed */
                return 0;
        }
        if (admin_state_save(a, why, sizeof(why)) < 0)
                log_warning("admin: %s", why);
        return 0;
}

void admin_state_set_published(struct daemon *d, struct route *r)
{
        struct admin_server *a = d->admin;
        struct server_set *set;
        const char *route, *server, *state;
        enum admin_state st;
        bool applied = false;
        char why[600];
        size_t i = 0;

        if (!a || !a->pending)
                return;
        set = route_set_get(r);
        while (i < json_array_size(a->pending)) {
                json_t *e = json_array_get(a->pending, i);
                int k;

                if (json_unpack(e, "{s:s, s:s, s:s}", "route", &route, "server", &server, "state",
                                &state) < 0 ||
                    strcmp(route, r->cfg->name) != 0 || (k = admin_find_server(set, server)) < 0 ||
                    admin_state_parse(state, &st) < 0) {
                        i++;
                        continue;
                }
                atomic_store(&set->e[k].srv->admin, st);
                log_notice("admin: route %s server %s (%s): %s (from the state file, now that "
                           "its name resolved)",
                           route, server, set->e[k].name, state);
                json_array_remove(a->pending, i);
                applied = true;
        }
        server_set_unref(set);
        if (applied && admin_state_save(a, why, sizeof(why)) < 0)
                log_warning("admin: %s", why);
}
