/* Typed access to libconfig settings. libconfig keeps ints, 64-bit ints and floats apart and
 * never converts for us (auto-convert is off), so every getter checks the type itself and
 * says, in words, what was expected and what was found, then checks the range. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const char *type_words(int type)
{
        switch (type) {
        case CONFIG_TYPE_GROUP:
                return "a group { ... }";
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64:
                return "an integer";
        case CONFIG_TYPE_FLOAT:
                return "a decimal number";
        case CONFIG_TYPE_STRING:
                return "a string";
        case CONFIG_TYPE_BOOL:
                return "true or false";
        case CONFIG_TYPE_ARRAY:
                return "a list [ ... ]";
        case CONFIG_TYPE_LIST:
                return "a list ( ... )";
        default:
                return "nothing";
        }
}

static int wrong_type(const struct cfg_ctx *ctx, const config_setting_t *s, const char *expected)
{
        return cfg_fail(ctx, s, "expected %s, found %s", expected,
                        type_words(config_setting_type(s)));
}

int cfg_check_keys(const struct cfg_ctx *ctx, const config_setting_t *group,
                   const char *const *keys)
{
        int i, n = config_setting_length(group);

        for (i = 0; i < n; i++) {
                const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
                const char *name = config_setting_name(s);
                const char *const *k;

                for (k = keys; *k; k++)
                        if (name && strcmp(*k, name) == 0)
                                break;
                if (!*k)
                        return cfg_fail(ctx, s, "unknown setting");
        }
        return 0;
}

int cfg_check_keys_more(const struct cfg_ctx *ctx, const config_setting_t *group,
                        const char *const *keys, const char *const *more)
{
        int i, n = config_setting_length(group);

        for (i = 0; i < n; i++) {
                const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
                const char *name = config_setting_name(s);
                const char *const *k;

                for (k = keys; name && *k; k++)
                        if (strcmp(*k, name) == 0)
                                break;
                if (name && *k)
                        continue;
                for (k = more; name && *k; k++)
                        if (strcmp(*k, name) == 0)
                                break;
                if (!name || !*k)
                        return cfg_fail(ctx, s, "unknown setting");
        }
        return 0;
}

int cfg_get_group(const struct cfg_ctx *ctx, const config_setting_t *s)
{
        if (config_setting_type(s) != CONFIG_TYPE_GROUP)
                return wrong_type(ctx, s, "a group { ... }");
        return 0;
}

int cfg_get_uint(const struct cfg_ctx *ctx, const config_setting_t *s, unsigned long long min,
                 unsigned long long max, unsigned long long *out)
{
        long long v;

        if (config_setting_type(s) != CONFIG_TYPE_INT &&
            config_setting_type(s) != CONFIG_TYPE_INT64)
                return wrong_type(ctx, s, "an integer");
        v = config_setting_get_int64(s);
        if (v < 0 || (unsigned long long)v < min || (unsigned long long)v > max)
                return cfg_fail(ctx, s, "%lld is out of range (%llu..%llu)", v, min, max);
        *out = (unsigned long long)v;
        return 0;
}

int cfg_get_duration(const struct cfg_ctx *ctx, const config_setting_t *s, double min, double max,
                     uint64_t *out_ms)
{
        double v;

        switch (config_setting_type(s)) {
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64:
                v = (double)config_setting_get_int64(s);
                break;
        case CONFIG_TYPE_FLOAT:
                v = config_setting_get_float(s);
                break;
        default:
                return wrong_type(ctx, s, "a number of seconds");
        }
        if (!isfinite(v) || v < min || v > max)
                return cfg_fail(ctx, s, "%g seconds is out of range (%g..%g)", v, min, max);
        *out_ms = (uint64_t)llround(v * 1000.0);
        if (*out_ms == 0 && v > 0)
                *out_ms = 1;
        return 0;
}

int cfg_get_bool(const struct cfg_ctx *ctx, const config_setting_t *s, bool *out)
{
        if (config_setting_type(s) != CONFIG_TYPE_BOOL)
                return wrong_type(ctx, s, "true or false");
        *out = config_setting_get_bool(s) != 0;
        return 0;
}

int cfg_get_string(const struct cfg_ctx *ctx, const config_setting_t *s, const char **out)
{
        if (config_setting_type(s) != CONFIG_TYPE_STRING)
                return wrong_type(ctx, s, "a string");
        *out = config_setting_get_string(s);
        return 0;
}

int cfg_get_word(const struct cfg_ctx *ctx, const config_setting_t *s, const char *const *words,
                 int *out)
{
        char quoted[200], expected[256] = "";
        const char *v = ""; /* set by cfg_get_string when it succeeds */
        size_t pos = 0;
        int i, r;

        r = cfg_get_string(ctx, s, &v);
        if (r < 0)
                return r;
        for (i = 0; words[i]; i++) {
                if (strcmp(words[i], v) == 0) {
                        *out = i;
                        return 0;
                }
                if (pos < sizeof(expected))
                        pos += (size_t)snprintf(expected + pos, sizeof(expected) - pos, "%s\"%s\"",
                                                i == 0         ? ""
                                                : words[i + 1] ? ", "
                                                               : " or ",
                                                words[i]);
        }
        cfg_quote(v, quoted, sizeof(quoted));
        return cfg_fail(ctx, s, "%s: unknown value; expected %s", quoted, expected);
}

int cfg_get_string_list(const struct cfg_ctx *ctx, const config_setting_t *s, bool allow_empty,
                        size_t max, size_t *n)
{
        int i, len;

        if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
            config_setting_type(s) != CONFIG_TYPE_LIST)
                return wrong_type(ctx, s, "a list of strings [ \"...\", ... ]");
        len = config_setting_length(s);
        if (len == 0 && !allow_empty)
                return cfg_fail(ctx, s, "the list is empty");
        if ((size_t)len > max)
                return cfg_fail(ctx, s, "too many entries (%d, at most %zu)", len, max);
        for (i = 0; i < len; i++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);

                if (config_setting_type(e) != CONFIG_TYPE_STRING)
                        return wrong_type(ctx, e, "a string");
        }
        *n = (size_t)len;
        return 0;
}

/* "256M": digits and an optional K, M or G (powers of 1024). 0, -EINVAL (not a size) or
 * -ERANGE (too big for 64 bits). */
static int parse_size_text(const char *v, unsigned long long *out)
{
        const unsigned long long max = ~0ull;
        unsigned long long n = 0, unit = 1;
        const char *p = v;

        for (; *p >= '0' && *p <= '9'; p++) {
                if (n > (max - 9) / 10)
                        return -ERANGE;
                n = n * 10 + (unsigned long long)(*p - '0');
        }
        if (p == v)
                return -EINVAL;
        if (*p == 'K' || *p == 'M' || *p == 'G') {
                unit = *p == 'K' ? 1ull << 10 : *p == 'M' ? 1ull << 20 : 1ull << 30;
                p++;
        }
        if (*p != '\0')
                return -EINVAL;
        if (n > max / unit)
                return -ERANGE;
        *out = n * unit;
        return 0;
}

int cfg_get_size(const struct cfg_ctx *ctx, const config_setting_t *s, unsigned long long min,
                 unsigned long long max, unsigned long long *out)
{
        char quoted[200];
        const char *v;
        int r;

        if (config_setting_type(s) == CONFIG_TYPE_INT ||
            config_setting_type(s) == CONFIG_TYPE_INT64)
                return cfg_get_uint(ctx, s, min, max, out);
        if (config_setting_type(s) != CONFIG_TYPE_STRING)
                return wrong_type(ctx, s,
                                  "a number of bytes (an integer, or a string like \"256M\")");
        v = config_setting_get_string(s);
        cfg_quote(v, quoted, sizeof(quoted));
        r = parse_size_text(v, out);
        if (r == -EINVAL)
                return cfg_fail(ctx, s,
                                "%s: expected a number of bytes, optionally followed by K, M "
                                "or G (e.g. \"256M\")",
                                quoted);
        if (r < 0 || *out < min || *out > max)
                return cfg_fail(ctx, s, "%s is out of range (%llu..%llu bytes)", quoted, min, max);
        return 0;
}
