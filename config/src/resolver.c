/* Upstreams given by name and how names are resolved (issue 14): "host:port" and
 * "srv:_svc._proto.name" upstream strings, the global resolver = { nameservers; timeout;
 * attempts; resolv_conf; family; refresh = { min; max; }; nxdomain_hold; } group and a route's
 * resolver = { family; refresh; nxdomain_hold; } override. Names are only checked here (RFC 1123
 * labels, lengths); the daemon resolves them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define DNS_NAME_MAX  253
#define DNS_LABEL_MAX 63

enum { SET_FAMILY = 1, SET_REFRESH_MIN = 2, SET_REFRESH_MAX = 4, SET_HOLD = 8 };

static const char *const family_words[] = {"any", "ipv4", "ipv6", NULL};
static const char *const global_keys[] = {"nameservers", "timeout", "attempts",      "resolv_conf",
                                          "family",      "refresh", "nxdomain_hold", NULL};
static const char *const route_keys[] = {"family", "refresh", "nxdomain_hold", NULL};
static const char *const refresh_keys[] = {"min", "max", NULL};

static int reason(char *msg, size_t len, const char *text)
{
        snprintf(msg, len, "%s", text);
        return -EINVAL;
}

static bool is_alnum(char ch)
{
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/* RFC 1123 labels (letters, digits, '-' inside), '_' also allowed (SRV labels, container
 * names); one trailing dot (a fully qualified name: no search domains) is accepted. */
static int check_host(const char *h, size_t n, char *msg, size_t len)
{
        size_t label = 0;

        if (n > 0 && h[n - 1] == '.')
                n--;
        if (n == 0)
                return reason(msg, len, "empty host name");
        if (n > DNS_NAME_MAX)
                return reason(msg, len, "host name too long (at most 253 characters)");
        for (size_t i = 0; i <= n; i++) {
                char ch = i < n ? h[i] : '.';

                if (ch == '.') {
                        if (label == 0)
                                return reason(msg, len, "empty label in host name");
                        if (h[i - 1] == '-')
                                return reason(msg, len, "a host name label ends with '-'");
                        label = 0;
                        continue;
                }
                if (!is_alnum(ch) && ch != '-' && ch != '_')
                        return reason(msg, len,
                                      "host names have only letters, digits, '-', "
                                      "'_' and '.'");
                if (ch == '-' && label == 0)
                        return reason(msg, len, "a host name label starts with '-'");
                if (++label > DNS_LABEL_MAX)
                        return reason(msg, len, "host name label too long (at most 63)");
        }
        return 0;
}

/* Could text be meant as a literal address? Then cfg_addr_parse() decides and explains. */
static bool looks_literal(const char *text)
{
        const char *colon = strrchr(text, ':');
        size_t n;

        if (strncmp(text, "unix:", 5) == 0 || strncmp(text, "systemd:", 8) == 0 || text[0] == '[' ||
            text[0] == '*' || !colon || strchr(text, ':') != colon)
                return true;
        n = (size_t)(colon - text);
        if (n == 0 || (n == 9 && strncmp(text, "localhost", 9) == 0))
                return true;
        return strspn(text, "0123456789.") >= n; /* an IPv4 address, right or wrong */
}

static int parse_srv(const char *name, struct cfg_upstream *out, char *msg, size_t len)
{
        const char *dot = strchr(name, '.');
        int r;

        if (strchr(name, ':'))
                return reason(msg, len, "an SRV name has no port (the records give it)");
        r = check_host(name, strlen(name), msg, len);
        if (r < 0)
                return r;
        if (name[0] != '_' || !dot || dot[1] != '_' || !strchr(dot + 1, '.'))
                return reason(msg, len, "expected \"srv:_service._proto.name\"");
        out->kind = CFG_UPSTREAM_SRV;
        out->port = 0;
        snprintf(out->host, sizeof(out->host), "%s", name);
        return 0;
}

int cfg_upstream_parse(const char *text, struct cfg_upstream *out, char *msg, size_t msg_len)
{
        const char *colon;
        size_t n = strlen(text);
        int r;

        out->kind = CFG_UPSTREAM_ADDR;
        out->host[0] = '\0';
        out->port = 0;
        if (strncmp(text, "srv:", 4) != 0 && looks_literal(text))
                return cfg_addr_parse(text, false, &out->addr, msg, msg_len);
        memset(&out->addr, 0, sizeof(out->addr));
        if (n >= sizeof(out->addr.text))
                return reason(msg, msg_len, "address too long (at most 127 characters)");
        memcpy(out->addr.text, text, n + 1);
        if (strncmp(text, "srv:", 4) == 0)
                r = parse_srv(text + 4, out, msg, msg_len);
        else {
                colon = strrchr(text, ':');
                r = check_host(text, (size_t)(colon - text), msg, msg_len);
                if (r == 0)
                        r = cfg_port_parse(colon + 1, &out->port, msg, msg_len);
                if (r == 0) {
                        out->kind = CFG_UPSTREAM_NAME;
                        memcpy(out->host, text, (size_t)(colon - text));
                        out->host[colon - text] = '\0';
                }
        }
        if (r < 0) {
                memset(&out->addr, 0, sizeof(out->addr));
                out->kind = CFG_UPSTREAM_ADDR;
                out->host[0] = '\0';
        }
        return r;
}

static int parse_refresh(const struct cfg_ctx *ctx, const config_setting_t *s,
                         struct cfg_dns_policy *p)
{
        const config_setting_t *m;
        int r = cfg_get_group(ctx, s);

        if (r == 0)
                r = cfg_check_keys(ctx, s, refresh_keys);
        if (r < 0)
                return r;
        if ((m = config_setting_get_member(s, "min"))) {
                if ((r = cfg_get_duration(ctx, m, 0.1, 86400, &p->refresh_min_ms)) < 0)
                        return r;
                p->set |= SET_REFRESH_MIN;
        }
        if ((m = config_setting_get_member(s, "max"))) {
                if ((r = cfg_get_duration(ctx, m, 0.1, 86400, &p->refresh_max_ms)) < 0)
                        return r;
                p->set |= SET_REFRESH_MAX;
        }
        return 0;
}

/* family, refresh and nxdomain_hold of group s into p. */
static int parse_policy(const struct cfg_ctx *ctx, const config_setting_t *s,
                        struct cfg_dns_policy *p)
{
        const config_setting_t *m;
        int r, w;

        if ((m = config_setting_get_member(s, "family"))) {
                if ((r = cfg_get_word(ctx, m, family_words, &w)) < 0)
                        return r;
                p->family = (enum cfg_family)w;
                p->set |= SET_FAMILY;
        }
        if ((m = config_setting_get_member(s, "refresh")) && (r = parse_refresh(ctx, m, p)) < 0)
                return r;
        if ((m = config_setting_get_member(s, "nxdomain_hold"))) {
                if ((r = cfg_get_duration(ctx, m, 0, 86400, &p->nxdomain_hold_ms)) < 0)
                        return r;
                p->set |= SET_HOLD;
        }
        return 0;
}

static int check_order(const struct cfg_ctx *ctx, const config_setting_t *s,
                       const struct cfg_dns_policy *p)
{
        if (p->refresh_min_ms > p->refresh_max_ms)
                return cfg_fail_key(ctx, s, "refresh", "min (%gs) is above max (%gs)",
                                    (double)p->refresh_min_ms / 1000.0,
                                    (double)p->refresh_max_ms / 1000.0);
        return 0;
}

static int parse_nameservers(const struct cfg_ctx *ctx, const config_setting_t *s,
                             struct cfg_resolver *res)
{
        char msg[200], quoted[200];
        struct cfg_addr a;
        size_t n;
        int r = cfg_get_string_list(ctx, s, false, 16, &n);

        if (r < 0)
                return r;
        res->nameservers = calloc(n, sizeof(*res->nameservers));
        if (!res->nameservers)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
                const char *v = config_setting_get_string(e);

                /* c-ares takes "ip", "ip:port" and "[v6]:port": check the ones with a port
                 * as addresses, the bare ones as such with port 53. */
                snprintf(msg, sizeof(msg), "%s%s", v, strchr(v, ':') ? "" : ":53");
                if (strchr(v, ':') && v[0] != '[' && strchr(v, ':') != strrchr(v, ':'))
                        snprintf(msg, sizeof(msg), "[%s]:53", v);
                if (cfg_addr_parse(msg, false, &a, msg, sizeof(msg)) < 0 ||
                    a.kind != CFG_ADDR_INET) {
                        cfg_quote(v, quoted, sizeof(quoted));
                        return cfg_fail(ctx, e, "%s: not an IP address (with an optional port)",
                                        quoted);
                }
                res->nameservers[i] = strdup(v);
                if (!res->nameservers[i])
                        return -ENOMEM;
                res->n_nameservers = i + 1;
        }
        return 0;
}

static void policy_defaults(struct cfg_dns_policy *p)
{
        *p = (struct cfg_dns_policy){.family = CFG_FAMILY_ANY,
                                     .refresh_min_ms = 1000,
                                     .refresh_max_ms = 300000,
                                     .nxdomain_hold_ms = 60000};
}

int cfg_parse_resolver(const struct cfg_ctx *ctx, const config_setting_t *root, struct cfg *c)
{
        const config_setting_t *s = config_setting_get_member(root, "resolver"), *m;
        unsigned long long u;
        const char *v;
        int r;

        policy_defaults(&c->resolver.policy);
        if (!s)
                return 0;
        if ((r = cfg_get_group(ctx, s)) < 0 || (r = cfg_check_keys(ctx, s, global_keys)) < 0)
                return r;
        if ((m = config_setting_get_member(s, "nameservers")) &&
            (r = parse_nameservers(ctx, m, &c->resolver)) < 0)
                return r;
        if ((m = config_setting_get_member(s, "timeout")) &&
            (r = cfg_get_duration(ctx, m, 0.01, 60, &c->resolver.timeout_ms)) < 0)
                return r;
        if ((m = config_setting_get_member(s, "attempts"))) {
                if ((r = cfg_get_uint(ctx, m, 1, 10, &u)) < 0)
                        return r;
                c->resolver.attempts = (unsigned)u;
        }
        if ((m = config_setting_get_member(s, "resolv_conf"))) {
                if ((r = cfg_get_string(ctx, m, &v)) < 0)
                        return r;
                if (v[0] != '/')
                        return cfg_fail(ctx, m, "must be an absolute path");
                c->resolver.resolv_conf = strdup(v);
                if (!c->resolver.resolv_conf)
                        return -ENOMEM;
        }
        if ((r = parse_policy(ctx, s, &c->resolver.policy)) < 0)
                return r;
        c->resolver.policy.set = 0;
        return check_order(ctx, s, &c->resolver.policy);
}

int cfg_parse_route_resolver(const struct cfg_ctx *ctx, const config_setting_t *route,
                             struct cfg_route *r)
{
        const config_setting_t *s = config_setting_get_member(route, "resolver");
        int ret;

        r->n_named = 0;
        for (size_t i = 0; i < r->n_upstreams; i++)
                r->n_named += r->upstreams[i].kind != CFG_UPSTREAM_ADDR;
        if (!s)
                return 0;
        if ((ret = cfg_get_group(ctx, s)) < 0 || (ret = cfg_check_keys(ctx, s, route_keys)) < 0)
                return ret;
        return parse_policy(ctx, s, &r->dns);
}

int cfg_resolver_finish(const struct cfg_ctx *ctx, const config_setting_t *root, struct cfg *c)
{
        const struct cfg_dns_policy *g = &c->resolver.policy;
        const config_setting_t *routes = config_setting_get_member(root, "routes");

        for (size_t i = 0; i < c->n_routes; i++) {
                struct cfg_dns_policy *p = &c->routes[i].dns;

                if (!(p->set & SET_FAMILY))
                        p->family = g->family;
                if (!(p->set & SET_REFRESH_MIN))
                        p->refresh_min_ms = g->refresh_min_ms;
                if (!(p->set & SET_REFRESH_MAX))
                        p->refresh_max_ms = g->refresh_max_ms;
                if (!(p->set & SET_HOLD))
                        p->nxdomain_hold_ms = g->nxdomain_hold_ms;
                if (p->refresh_min_ms > p->refresh_max_ms) {
                        const config_setting_t *rs = config_setting_get_elem(routes, (unsigned)i);
                        const config_setting_t *s =
                            rs ? config_setting_get_member(rs, "resolver") : NULL;

                        return check_order(ctx, s ? s : rs, p);
                }
        }
        return 0;
}

void cfg_resolver_free(struct cfg_resolver *res)
{
        for (size_t i = 0; i < res->n_nameservers; i++)
                free(res->nameservers[i]);
        free(res->nameservers);
        free(res->resolv_conf);
        res->nameservers = NULL;
        res->resolv_conf = NULL;
        res->n_nameservers = 0;
}
