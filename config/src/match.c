/* Routes that share a listen address and choose among themselves by the client's first bytes:
 * a route's match = { sni; alpn; protocol } and its inspect settings (parsed here from
 * route.c), and the rules for an address several routes share (checked here from validate.c):
 * at most one default (a route without match), one set of listener options, no SNI name
 * claimed twice, and somewhere for every connection to go (a default or protocol "any"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CFG_MAX_SNI  4096 /* names of one route */
#define CFG_MAX_ALPN 64

static const char *const protocol_words[] = {"tls", "ssh", "http", "any", NULL};
static const char *const bad_hello_words[] = {"default", "close", NULL};

/* A host name or "*.name": lower-cased, trailing dot dropped. 0, or -EINVAL with why. */
static int sni_normalize(const char *v, char *out, size_t size, const char **why)
{
        size_t n = strlen(v), i, start = 0;

        if (n > 0 && v[n - 1] == '.')
                n--;
        if (n >= 2 && v[0] == '*' && v[1] == '.')
                start = 2;
        if (n == start || n > 253 || n >= size) {
                *why = "expected a host name (at most 253 characters) or \"*.\" and one";
                return -EINVAL;
        }
        for (i = 0; i < n; i++) {
                char ch = v[i];

                if (ch >= 'A' && ch <= 'Z')
                        ch = (char)(ch - 'A' + 'a');
                if (i >= start && !((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                                    ch == '-' || ch == '_' || ch == '.')) {
                        *why = ch == '*' ? "'*' may only start a name, as \"*.example.org\""
                                         : "a host name may only use A-Z a-z 0-9 - _ and dots";
                        return -EINVAL;
                }
                if (ch == '.' && (i == start || v[i - 1] == '.')) {
                        *why = "empty label in a host name";
                        return -EINVAL;
                }
                out[i] = ch;
        }
        out[n] = '\0';
        return 0;
}

static int parse_strings(const struct cfg_ctx *ctx, const config_setting_t *s, size_t max, bool sni,
                         char ***out, size_t *n_out)
{
        char buf[256], quoted[300];
        const char *why = NULL;
        size_t i, n;
        int r;

        if ((r = cfg_get_string_list(ctx, s, false, max, &n)) < 0)
                return r;
        *out = calloc(n, sizeof(**out));
        if (!*out)
                return -ENOMEM;
        *n_out = n;
        for (i = 0; i < n; i++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
                const char *v = config_setting_get_string(e);

                cfg_quote(v, quoted, sizeof(quoted));
                if (sni && sni_normalize(v, buf, sizeof(buf), &why) < 0)
                        return cfg_fail(ctx, e, "%s: %s", quoted, why);
                if (!sni && (strlen(v) == 0 || strlen(v) > 255))
                        return cfg_fail(ctx, e, "%s: an ALPN protocol has 1 to 255 bytes", quoted);
                (*out)[i] = strdup(sni ? buf : v);
                if (!(*out)[i])
                        return -ENOMEM;
        }
        return 0;
}

static int parse_match_group(const struct cfg_ctx *ctx, const config_setting_t *s,
                             struct cfg_match *m)
{
        static const char *const keys[] = {"sni", "alpn", "protocol", NULL};
        const config_setting_t *e, *proto = config_setting_get_member(s, "protocol");
        int r, w;

        if ((r = cfg_get_group(ctx, s)) < 0 || (r = cfg_check_keys(ctx, s, keys)) < 0)
                return r;
        m->protocol = CFG_PROTO_TLS;
        if ((e = config_setting_get_member(s, "sni")) &&
            (r = parse_strings(ctx, e, CFG_MAX_SNI, true, &m->sni, &m->n_sni)) < 0)
                return r;
        if ((e = config_setting_get_member(s, "alpn")) &&
            (r = parse_strings(ctx, e, CFG_MAX_ALPN, false, &m->alpn, &m->n_alpn)) < 0)
                return r;
        if (proto) {
                if ((r = cfg_get_word(ctx, proto, protocol_words, &w)) < 0)
                        return r;
                m->protocol = (enum cfg_protocol)w;
        } else if (!m->n_sni && !m->n_alpn) {
                return cfg_fail(ctx, s, "a match needs sni, alpn or protocol");
        }
        if ((m->n_sni || m->n_alpn) && m->protocol != CFG_PROTO_TLS)
                return cfg_fail(ctx, proto,
                                "sni and alpn are read from a TLS ClientHello: protocol must be "
                                "\"tls\" (or left out) with them");
        return 0;
}

int cfg_parse_match(const struct cfg_ctx *ctx, const config_setting_t *route, struct cfg_route *r)
{
        const config_setting_t *s;
        unsigned long long u;
        int ret, w;

        r->inspect_timeout_ms = 5000;
        r->inspect_max = 16384;
        if ((s = config_setting_get_member(route, "inspect_timeout")) &&
            (ret = cfg_get_duration(ctx, s, 0.001, 3600, &r->inspect_timeout_ms)) < 0)
                return ret;
        if ((s = config_setting_get_member(route, "inspect_max"))) {
                if ((ret = cfg_get_size(ctx, s, 512, 65536, &u)) < 0)
                        return ret;
                r->inspect_max = (size_t)u;
        }
        if ((s = config_setting_get_member(route, "on_bad_hello"))) {
                if ((ret = cfg_get_word(ctx, s, bad_hello_words, &w)) < 0)
                        return ret;
                r->bad_hello_close = w == 1;
        }
        if (!(s = config_setting_get_member(route, "match")))
                return 0;
        r->match = calloc(1, sizeof(*r->match));
        if (!r->match)
                return -ENOMEM;
        return parse_match_group(ctx, s, r->match);
}

void cfg_match_free(struct cfg_match *m)
{
        if (!m)
                return;
        for (size_t i = 0; i < m->n_sni; i++)
                free(m->sni[i]);
        for (size_t i = 0; i < m->n_alpn; i++)
                free(m->alpn[i]);
        free(m->sni);
        free(m->alpn);
        free(m);
}
