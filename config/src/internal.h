/* Private glue between the config/ source files: the parse context that turns a libconfig
 * setting into "file:line: setting: message", typed getters that enforce ranges, and the
 * pieces each file exports to the others. Nothing here is part of the public API. */
#ifndef EVPROXY_CONFIG_INTERNAL_H
#define EVPROXY_CONFIG_INTERNAL_H

#include <libconfig.h>

#include "evproxy/config.h"

/* Limits on what a file may ask us to allocate. */
#define CFG_MAX_FILE_SIZE (4u << 20)
#define CFG_MAX_ROUTES    16384
#define CFG_MAX_LISTEN    256
#define CFG_MAX_CIDRS     65536
#define CFG_USER_NAME_MAX 32
/* pipe_memory: its range, and the default per allowed connection (HAProxy's maxpipes default,
 * a quarter of maxconn, times the kernel's default pipe of 64 KiB). */
#define CFG_PIPE_MEMORY_MIN      (1ull << 20)
#define CFG_PIPE_MEMORY_MAX      (1ull << 40)
#define CFG_PIPE_MEMORY_PER_CONN (16ull << 10)

struct cfg_ctx {
        struct cfg_error *err;      /* never NULL */
        const char *main_file;      /* shown for settings that come from the main text */
        const char *include_prefix; /* NULL, or directory @include names are relative to */
};

#define CFG_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* error.c */
void cfg_error_set(struct cfg_error *err, const char *file, int line, const char *setting,
                   const char *fmt, ...) CFG_PRINTF(5, 6);
void cfg_display_file(const struct cfg_ctx *ctx, const char *source, char *buf, size_t len);
void cfg_setting_path(const config_setting_t *s, char *buf, size_t len);
int cfg_setting_line(const config_setting_t *s);
void cfg_quote(const char *text, char *buf, size_t len);
/* Reports a problem with setting s; returns -EINVAL. */
int cfg_fail(const struct cfg_ctx *ctx, const config_setting_t *s, const char *fmt, ...)
    CFG_PRINTF(3, 4);
/* Reports a problem with the member key of group (which may be absent); returns -EINVAL. */
int cfg_fail_key(const struct cfg_ctx *ctx, const config_setting_t *group, const char *key,
                 const char *fmt, ...) CFG_PRINTF(4, 5);
/* Reports that group lacks a required member key; returns -EINVAL. */
int cfg_fail_missing(const struct cfg_ctx *ctx, const config_setting_t *group, const char *key);

/* values.c: each returns 0 or -EINVAL after reporting through ctx. */
int cfg_check_keys(const struct cfg_ctx *ctx, const config_setting_t *group,
                   const char *const *keys);
/* The same for a group whose keys come from two lists (a module adding its own keys). */
int cfg_check_keys_more(const struct cfg_ctx *ctx, const config_setting_t *group,
                        const char *const *keys, const char *const *more);
int cfg_get_group(const struct cfg_ctx *ctx, const config_setting_t *s);
int cfg_get_uint(const struct cfg_ctx *ctx, const config_setting_t *s, unsigned long long min,
                 unsigned long long max, unsigned long long *out);
/* A byte count: an integer, or a string of digits with an optional K, M or G (x1024). */
int cfg_get_size(const struct cfg_ctx *ctx, const config_setting_t *s, unsigned long long min,
                 unsigned long long max, unsigned long long *out);
/* A duration in seconds, checked against [min, max] seconds, stored in milliseconds (the
 * rule is in config.h). */
int cfg_get_duration(const struct cfg_ctx *ctx, const config_setting_t *s, double min, double max,
                     uint64_t *out_ms);
int cfg_get_bool(const struct cfg_ctx *ctx, const config_setting_t *s, bool *out);
int cfg_get_string(const struct cfg_ctx *ctx, const config_setting_t *s, const char **out);
/* words is NULL-terminated; *out is the index of the match. */
int cfg_get_word(const struct cfg_ctx *ctx, const config_setting_t *s, const char *const *words,
                 int *out);
/* A [ ... ] or ( ... ) whose elements are all strings; *n its length. */
int cfg_get_string_list(const struct cfg_ctx *ctx, const config_setting_t *s, bool allow_empty,
                        size_t max, size_t *n);

/* upstream.c: routes[i].upstreams */
int cfg_parse_upstreams(const struct cfg_ctx *ctx, const config_setting_t *route,
                        struct cfg_route *r);

/* queue.c: routes[i].queue_timeout and queue_size (defaults when absent) */
int cfg_parse_queue(const struct cfg_ctx *ctx, const config_setting_t *route, struct cfg_route *r);

/* addr.c */
int cfg_addr_cmp(const struct cfg_addr *a, const struct cfg_addr *b);
/* A port 1..65535 (decimal digits only), in host order. 0 or -EINVAL with a reason. */
int cfg_port_parse(const char *s, uint16_t *port, char *msg, size_t len);
/* Would binding both a and b fight over the same port ("*:80" against "0.0.0.0:80")? */
bool cfg_addr_overlap(const struct cfg_addr *a, const struct cfg_addr *b);

/* An octal permission mode written as a string ("0660"). route.c */
int cfg_get_mode(const struct cfg_ctx *ctx, const config_setting_t *s, mode_t *out);
/* handover = { ... } (handover.c). */
int cfg_parse_handover(const struct cfg_ctx *ctx, const config_setting_t *s, struct cfg *c);
/* admin = { ... } (admin.c); c->admin.enabled is set only on success. */
int cfg_parse_admin(const struct cfg_ctx *ctx, const config_setting_t *s, struct cfg *c);
int cfg_validate_admin(const struct cfg_ctx *ctx, const config_setting_t *root,
                       const struct cfg *c);

/* policy.c: the traffic policy keys of the top level (in_route false) or of a route, with
 * their defaults; then, once every route is parsed, what routes inherit from the top. */
int cfg_parse_policy(const struct cfg_ctx *ctx, const config_setting_t *g, struct cfg_policy *p,
                     bool in_route);
int cfg_parse_client_table_size(const struct cfg_ctx *ctx, const config_setting_t *root,
                                struct cfg *c);
void cfg_policy_inherit(struct cfg *c);
extern const char *const cfg_policy_root_keys[], *const cfg_policy_route_keys[];

/* parse.c, route.c, validate.c */
int cfg_parse_root(const struct cfg_ctx *ctx, const config_setting_t *root, struct cfg *c);
int cfg_parse_route(const struct cfg_ctx *ctx, const config_setting_t *s, struct cfg_route *r);
void cfg_route_free(struct cfg_route *r);
/* resolver.c: the global resolver group (before the routes), a route's resolver group (after
 * its upstreams), the global values filled into routes (after them), and freeing. */
int cfg_parse_resolver(const struct cfg_ctx *ctx, const config_setting_t *root, struct cfg *c);
int cfg_parse_route_resolver(const struct cfg_ctx *ctx, const config_setting_t *route,
                             struct cfg_route *r);
int cfg_resolver_finish(const struct cfg_ctx *ctx, const config_setting_t *root, struct cfg *c);
void cfg_resolver_free(struct cfg_resolver *res);
int cfg_validate(const struct cfg_ctx *ctx, const config_setting_t *root, const struct cfg *c);

/* match.c: a route's match and inspect settings; match_validate.c: shared listen addresses. */
int cfg_parse_match(const struct cfg_ctx *ctx, const config_setting_t *route, struct cfg_route *r);
void cfg_match_free(struct cfg_match *m); /* accepts NULL */
int cfg_validate_shared(const struct cfg_ctx *ctx, const config_setting_t *root,
                        const struct cfg *c);
/* diff.c: orders struct cfg_listener_ref by address, then file order (qsort). */
int cfg_listener_ref_cmp(const void *pa, const void *pb);

#endif
