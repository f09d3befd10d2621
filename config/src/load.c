/* Entry points: read the file (regular files only, bounded size, no NUL bytes), let libconfig
 * parse it with @include relative to the file's directory, then build and validate a struct
 * cfg. Any failure leaves *out NULL and describes the problem in err. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static int fail_errno(struct cfg_error *err, const char *path, int r, const char *what)
{
        char buf[256];

        cfg_error_set(err, path, 0, NULL, "%s: %s", what, strerror_r(-r, buf, sizeof(buf)));
        return r;
}

static int read_all(int fd, const char *path, char **out, struct cfg_error *err)
{
        size_t cap = 4096, len = 0;
        char *buf = malloc(cap + 1), *p;
        ssize_t n;

        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len == cap) {
                        if (cap >= CFG_MAX_FILE_SIZE) {
                                free(buf);
                                cfg_error_set(err, path, 0, NULL, "file too large (over %u MiB)",
                                              CFG_MAX_FILE_SIZE >> 20);
                                return -EFBIG;
                        }
                        cap *= 2;
                        p = realloc(buf, cap + 1);
                        if (!p) {
                                free(buf);
                                return -ENOMEM;
                        }
                        buf = p;
                }
                n = read(fd, buf + len, cap - len);
                if (n == 0)
                        break;
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int r = -errno;

                        free(buf);
                        return fail_errno(err, path, r, "cannot read");
                }
                len += (size_t)n;
        }
        buf[len] = '\0';
        if (memchr(buf, '\0', len)) {
                free(buf);
                cfg_error_set(err, path, 0, NULL, "not a text file (contains a NUL byte)");
                return -EINVAL;
        }
        *out = buf;
        return 0;
}

static int read_file(const char *path, char **out, struct cfg_error *err)
{
        struct stat st;
        int fd, r;

        /* O_NONBLOCK: opening a FIFO must not hang waiting for a writer. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return fail_errno(err, path, -errno, "cannot open");
        if (fstat(fd, &st) < 0) {
                r = fail_errno(err, path, -errno, "cannot stat");
        } else if (S_ISDIR(st.st_mode)) {
                r = -EISDIR;
                cfg_error_set(err, path, 0, NULL, "is a directory, not a configuration file");
        } else if (!S_ISREG(st.st_mode)) {
                r = -EINVAL;
                cfg_error_set(err, path, 0, NULL, "not a regular file");
        } else {
                r = read_all(fd, path, out, err);
        }
        close(fd);
        return r;
}

static int parse_text(const char *text, const char *name, const char *include_dir, struct cfg **out,
                      struct cfg_error *err)
{
        struct cfg_ctx ctx = {.err = err, .main_file = name};
        struct cfg *c = NULL;
        config_t lc;
        int r;

        if (include_dir && strcmp(include_dir, ".") != 0)
                ctx.include_prefix = include_dir;
        config_init(&lc);
        if (include_dir)
                config_set_include_dir(&lc, include_dir);
        if (config_read_string(&lc, text) != CONFIG_TRUE) {
                cfg_display_file(&ctx, config_error_file(&lc), err->file, sizeof(err->file));
                err->line = config_error_line(&lc);
                err->setting[0] = '\0';
                snprintf(err->message, sizeof(err->message), "%s",
                         config_error_text(&lc) ? config_error_text(&lc) : "cannot parse");
                /* libconfig 1.5 prefixes every @include path, absolute ones too, with the
                 * include directory; say which directory that is. */
                if (include_dir && strcmp(err->message, "cannot open include file") == 0)
                        snprintf(err->message, sizeof(err->message),
                                 "cannot open include file (@include paths are relative to "
                                 "\"%.400s\")",
                                 include_dir);
                r = -EINVAL;
                goto out;
        }
        c = calloc(1, sizeof(*c));
        if (!c || !(c->path = strdup(name))) {
                r = -ENOMEM;
                goto out;
        }
        r = cfg_parse_root(&ctx, config_root_setting(&lc), c);
        if (r == 0)
                r = cfg_validate(&ctx, config_root_setting(&lc), c);
out:
        config_destroy(&lc);
        if (r == -ENOMEM)
                cfg_error_set(err, name, 0, NULL, "out of memory");
        if (r < 0) {
                cfg_free(c);
                c = NULL;
        }
        *out = c;
        return r;
}

int cfg_load(const char *path, struct cfg **out, struct cfg_error *err)
{
        struct cfg_error dummy;
        char *text = NULL, *dir;
        const char *slash;
        int r;

        if (!err)
                err = &dummy;
        memset(err, 0, sizeof(*err));
        *out = NULL;
        if (!path || !*path) {
                cfg_error_set(err, "", 0, NULL, "no configuration file given");
                return -EINVAL;
        }
        r = read_file(path, &text, err);
        if (r < 0)
                return r;
        slash = strrchr(path, '/');
        if (!slash)
                dir = strdup(".");
        else if (slash == path)
                dir = strdup("/");
        else
                dir = strndup(path, (size_t)(slash - path));
        if (!dir) {
                free(text);
                cfg_error_set(err, path, 0, NULL, "out of memory");
                return -ENOMEM;
        }
        r = parse_text(text, path, dir, out, err);
        free(dir);
        free(text);
        return r;
}

int cfg_load_string(const char *text, const char *name, struct cfg **out, struct cfg_error *err)
{
        struct cfg_error dummy;

        if (!err)
                err = &dummy;
        memset(err, 0, sizeof(*err));
        *out = NULL;
        if (!text) {
                cfg_error_set(err, name ? name : "<string>", 0, NULL, "no text given");
                return -EINVAL;
        }
        return parse_text(text, name ? name : "<string>", NULL, out, err);
}

void cfg_free(struct cfg *c)
{
        size_t i;

        if (!c)
                return;
        for (i = 0; i < c->n_routes; i++)
                cfg_route_free(&c->routes[i]);
        free(c->routes);
        free(c->user);
        free(c->admin.group);
        free(c->admin.state_file);
        cfg_resolver_free(&c->resolver);
        free(c->path);
        free(c);
}
