/* Error reporting: where a setting came from (file as the operator knows it, line), its path
 * ("routes[0].upstreams[1]"), and cfg_error_format() which prints the three with the message.
 * Text taken from the file is quoted with escapes so messages stay one printable line. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

void cfg_error_set(struct cfg_error *err, const char *file, int line, const char *setting,
                   const char *fmt, ...)
{
        va_list ap;

        snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
        err->line = line > 0 ? line : 0;
        snprintf(err->setting, sizeof(err->setting), "%s", setting ? setting : "");
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
}

/* libconfig names settings of the main text NULL and included files as written in @include,
 * relative to the include directory; show the latter as the operator would open them. */
void cfg_display_file(const struct cfg_ctx *ctx, const char *source, char *buf, size_t len)
{
        if (!source)
                snprintf(buf, len, "%s", ctx->main_file);
        else if (source[0] != '/' && ctx->include_prefix)
                snprintf(buf, len, "%s%s%s", ctx->include_prefix,
                         ctx->include_prefix[strlen(ctx->include_prefix) - 1] == '/' ? "" : "/",
                         source);
        else
                snprintf(buf, len, "%s", source);
}

static size_t append(char *buf, size_t len, size_t pos, const char *fmt, const char *s, int i)
{
        int n;

        if (pos >= len)
                return pos;
        n = s ? snprintf(buf + pos, len - pos, fmt, s) : snprintf(buf + pos, len - pos, fmt, i);
        return n < 0 ? pos : pos + (size_t)n;
}

static size_t setting_path(const config_setting_t *s, char *buf, size_t len)
{
        const config_setting_t *parent = config_setting_parent(s);
        size_t pos;

        if (!parent)
                return 0; /* the root group has no name */
        pos = setting_path(parent, buf, len);
        if (config_setting_type(parent) == CONFIG_TYPE_GROUP)
                return append(buf, len, pos, pos ? ".%s" : "%s", config_setting_name(s), 0);
        return append(buf, len, pos, "[%d]", NULL, config_setting_index(s));
}

void cfg_setting_path(const config_setting_t *s, char *buf, size_t len)
{
        if (len == 0)
                return;
        buf[0] = '\0';
        setting_path(s, buf, len);
}

int cfg_setting_line(const config_setting_t *s)
{
        for (; s; s = config_setting_parent(s))
                if (config_setting_source_line(s) > 0)
                        return config_setting_source_line(s);
        return 0;
}

void cfg_quote(const char *text, char *buf, size_t len)
{
        static const size_t max_shown = 160;
        size_t pos = 0, i;

        if (len < 8) {
                if (len)
                        buf[0] = '\0';
                return;
        }
        buf[pos++] = '"';
        for (i = 0; text[i] && pos + 6 < len; i++) {
                unsigned char ch = (unsigned char)text[i];

                if (i == max_shown || pos + 10 >= len) {
                        memcpy(buf + pos, "...", 3);
                        pos += 3;
                        break;
                }
                if (ch == '"' || ch == '\\') {
                        buf[pos++] = '\\';
                        buf[pos++] = (char)ch;
                } else if (ch < 0x20 || ch >= 0x7f) {
                        pos += (size_t)snprintf(buf + pos, len - pos, "\\x%02x", ch);
                } else {
                        buf[pos++] = (char)ch;
                }
        }
        buf[pos++] = '"';
        buf[pos] = '\0';
}

static int vfail(const struct cfg_ctx *ctx, const config_setting_t *s, const char *key,
                 const char *fmt, va_list ap)
{
        struct cfg_error *err = ctx->err;
        size_t n;

        cfg_display_file(ctx, config_setting_source_file(s), err->file, sizeof(err->file));
        err->line = cfg_setting_line(s);
        cfg_setting_path(s, err->setting, sizeof(err->setting));
        n = strlen(err->setting);
        if (key)
                snprintf(err->setting + n, sizeof(err->setting) - n, n ? ".%s" : "%s", key);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        return -EINVAL;
}

int cfg_fail(const struct cfg_ctx *ctx, const config_setting_t *s, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vfail(ctx, s, NULL, fmt, ap);
        va_end(ap);
        return r;
}

int cfg_fail_key(const struct cfg_ctx *ctx, const config_setting_t *group, const char *key,
                 const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vfail(ctx, group, key, fmt, ap);
        va_end(ap);
        return r;
}

int cfg_fail_missing(const struct cfg_ctx *ctx, const config_setting_t *group, const char *key)
{
        return cfg_fail_key(ctx, group, key, "missing (this setting is required)");
}

int cfg_error_format(const struct cfg_error *err, char *buf, size_t len)
{
        char where[4096 + 16] = "";
        char setting[256 + 2] = "";

        if (!err || (!buf && len))
                return -EINVAL;
        if (err->file[0] && err->line > 0)
                snprintf(where, sizeof(where), "%.4095s:%d: ", err->file, err->line);
        else if (err->file[0])
                snprintf(where, sizeof(where), "%.4095s: ", err->file);
        if (err->setting[0])
                snprintf(setting, sizeof(setting), "%.255s: ", err->setting);
        return snprintf(buf, len, "%s%s%.511s", where, setting, err->message);
}
