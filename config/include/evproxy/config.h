/* evproxy configuration: a libconfig file turned into a validated, immutable struct cfg.
 * cfg_load() checks everything that can be checked without opening a socket and reports the
 * first problem as file:line: setting: message. Nothing here logs, binds or starts threads.
 * File format: packaging/evproxy.conf. */
#ifndef EVPROXY_CONFIG_H
#define EVPROXY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Limits the configuration enforces, for the daemon to size what it keeps per route. */
#define CFG_ROUTE_NAME_MAX 63   /* bytes in a route name, without the NUL */
#define CFG_MAX_UPSTREAMS  1024 /* servers of one route */
#define CFG_MAX_WEIGHT     1000 /* weight of one upstream */

/* Durations: the file gives seconds (integer or decimal); the object keeps milliseconds, each
 * converted once by one rule: rounded to the nearest millisecond, and a positive value never
 * becomes 0 (0.0004 s is 1 ms; 0 stays 0, which means "none" where a key allows it). */

enum cfg_addr_kind { CFG_ADDR_INET, CFG_ADDR_UNIX, CFG_ADDR_ABSTRACT, CFG_ADDR_SYSTEMD };

struct cfg_addr {
        enum cfg_addr_kind kind;
        char text[128];             /* as written in the file, e.g. "[::1]:8080", "unix:@app" */
        struct sockaddr_storage sa; /* INET/UNIX/ABSTRACT: ready for bind()/connect() */
        socklen_t sa_len; /* abstract: offsetof(sun_path)+1+strlen(name), no trailing NUL */
        bool wildcard;    /* "*:port": sa is in6addr_any; daemon binds with IPV6_V6ONLY=0 */
        char name[64];    /* CFG_ADDR_SYSTEMD: the fd name */
};

/* Host bits beyond the prefix are cleared ("10.1.2.3/8" becomes 10.0.0.0/8). An IPv4-mapped
 * IPv6 CIDR (::ffff:a.b.c.d/96..128) is stored as AF_INET with prefix - 96. */
struct cfg_cidr {
        int family;       /* AF_INET or AF_INET6 */
        uint8_t addr[16]; /* AF_INET uses addr[0..3] */
        unsigned prefix;
};

/* What an upstream names: a literal address (IP, unix, abstract; "localhost" counts as
 * 127.0.0.1), a host name resolved to all its A/AAAA records ("db.internal:5432"), or an SRV
 * name whose targets and ports are the servers ("srv:_pg._tcp.db.service.consul"). */
enum cfg_upstream_kind { CFG_UPSTREAM_ADDR, CFG_UPSTREAM_NAME, CFG_UPSTREAM_SRV };

/* One element of a route's upstreams: "address" or { address = ...; weight = ...; ... }. */
struct cfg_upstream {
        struct cfg_addr addr;     /* ADDR: the address; NAME/SRV: only text (as written) */
        unsigned weight;          /* [1] share for balancing, 1..CFG_MAX_WEIGHT */
        unsigned max_connections; /* [0] per-server limit; 0 = none */
        int line;                 /* where it is written (for messages) */
        enum cfg_upstream_kind kind;
        char host[256]; /* NAME: the host name; SRV: the SRV name (without "srv:") */
        uint16_t port;  /* NAME: the port (host order); SRV: 0 (each record has its own) */
};

/* Parses one upstream string: a literal address (cfg_addr_parse) or a name. The fields other
 * than addr, kind, host and port are left alone. 0 or -EINVAL with a reason in msg. */
int cfg_upstream_parse(const char *text, struct cfg_upstream *out, char *msg, size_t msg_len);

/* How names are resolved: globally (resolver = { ... }) and per route (a route's resolver =
 * { family; refresh; nxdomain_hold; } overrides the global values it names). */
enum cfg_family { CFG_FAMILY_ANY, CFG_FAMILY_IPV4, CFG_FAMILY_IPV6 };
struct cfg_dns_policy {
        enum cfg_family family;    /* ["any"] which records: A and AAAA, A, AAAA */
        uint64_t refresh_min_ms;   /* [1 s] an answer's TTL is clamped to [min, max] */
        uint64_t refresh_max_ms;   /* [300 s] */
        uint64_t nxdomain_hold_ms; /* [60 s] a name that stops existing keeps its addresses */
        unsigned set;              /* route: which of the above the route gave (bits 0..3) */
};
struct cfg_resolver {
        char **nameservers; /* "ip", "ip:port", "[v6]:port"; none: resolv_conf's */
        size_t n_nameservers;
        uint64_t timeout_ms; /* [0: resolv.conf's] first try's timeout */
        unsigned attempts;   /* [0: resolv.conf's] tries per server */
        char *resolv_conf;   /* [NULL: /etc/resolv.conf] search, ndots, nameservers */
        struct cfg_dns_policy policy;
};

/* Every policy honours the servers' weights (all 1 by default). HASH: rendezvous hashing of the
 * client's address (IPv6: its prefix), so a client keeps its server. */
enum cfg_balance {
        CFG_BALANCE_ROUND_ROBIN,
        CFG_BALANCE_LEAST_CONN,
        CFG_BALANCE_RANDOM,
        CFG_BALANCE_HASH,
};
enum cfg_proxy_protocol { CFG_PROXY_OFF, CFG_PROXY_V1, CFG_PROXY_V2 };
enum cfg_forwarding { CFG_FORWARD_SPLICE, CFG_FORWARD_COPY };
enum cfg_protocol { CFG_PROTO_TLS, CFG_PROTO_SSH, CFG_PROTO_HTTP, CFG_PROTO_ANY };

/* match = { sni = [...]; alpn = [...]; protocol = "..." }: what a connection's first bytes must
 * show for this route to take it. Names are lower-case without a trailing dot; "*.example.org"
 * is any name under example.org. sni or alpn imply protocol "tls". */
struct cfg_match {
        char **sni;
        size_t n_sni;
        char **alpn;
        size_t n_alpn;
        enum cfg_protocol protocol;
};

struct cfg_health {
        unsigned fails;             /* failed connects in a row before skipping; 0 = never skip */
        uint64_t backoff_ms;        /* skipped after the first failure streak */
        uint64_t backoff_max_ms;    /* doubling stops here */
        uint64_t check_interval_ms; /* 0 = no active check */
};

/* Traffic policy (issue 16): per-client limits, TCP keepalive and user timeout, bandwidth.
 * Parsed by config/src/policy.c at the top level and in each route; see evproxy.conf(5). */
struct cfg_keepalive {
        bool enabled;                  /* the group was given: SO_KEEPALIVE on */
        uint64_t idle_ms, interval_ms; /* whole seconds when applied (rounded up) */
        unsigned count;
};
struct cfg_rate {
        uint64_t upload, download; /* bytes per second, client->upstream / back; 0 = no limit */
};
struct cfg_policy {
        unsigned max_per_client; /* max_connections_per_client; 0 = none */
        unsigned client_rate;    /* client_rate.per_second; 0 = none */
        unsigned client_burst;   /* client_rate.burst */
        unsigned client_prefix6; /* IPv6 clients are keyed by this prefix [64] */
        struct cfg_keepalive client_keepalive, upstream_keepalive;
        uint64_t client_user_timeout_ms, upstream_user_timeout_ms; /* 0 = kernel default */
        struct cfg_rate rate;                                      /* per connection */
        struct cfg_rate route_rate; /* all connections of a route together (routes only) */
        unsigned set;               /* which keys the file gave (private to config/) */
};

struct cfg_route {
        char *name;
        struct cfg_addr *listen;
        size_t n_listen;
        struct cfg_upstream *upstreams;
        size_t n_upstreams;
        enum cfg_balance balance;
        uint64_t connect_timeout_ms;
        uint64_t idle_timeout_ms; /* 0 = none */
        unsigned max_connections; /* 0 = only the global limit */
        struct cfg_cidr *allow;   /* empty = everyone not denied */
        size_t n_allow;
        struct cfg_cidr *deny;
        size_t n_deny;
        enum cfg_proxy_protocol proxy_protocol;
        bool accept_proxy_protocol;
        uint64_t proxy_protocol_timeout_ms; /* allowed for a client's PROXY header */
        mode_t unix_mode;
        struct cfg_health health;
        int line;                  /* where the route starts in its file (for messages) */
        struct cfg_dns_policy dns; /* for its named upstreams (global values filled in) */
        size_t n_named;            /* upstreams that are NAME or SRV */
        /* Its own client limits; the rest inherited from the top level (policy.c). */
        struct cfg_policy policy;
        /* Routing on a shared listen address by the client's first bytes (match.c). Routes
         * that share an address agree on the inspect settings. */
        struct cfg_match *match;     /* NULL: the default route of its listen addresses */
        uint64_t inspect_timeout_ms; /* wait for the first bytes [5 s] */
        size_t inspect_max;          /* bytes a ClientHello may take [16 KiB] */
        bool bad_hello_close;        /* on_bad_hello = "close"; else the default route */
        /* Clients with no server to take them wait up to queue_timeout (0 = not at all),
         * at most queue_size of them per route (config/src/queue.c). */
        uint64_t queue_timeout_ms;
        unsigned queue_size;
};

/* Restart without a drop (handover = { ... }, issue 18): the successor's socket ("" = none) and
 * whether a SIGTERM under systemd hands everything to the fd store instead of draining. */
struct cfg_handover {
        char socket[108]; /* sun_path */
        bool fdstore;
};

/* The admin socket (admin = { ... }): evproxyctl's way in. Off unless the group is present. */
#define CFG_ADMIN_STATE_FILE "/var/lib/evproxy/state"
struct cfg_admin {
        bool enabled;
        struct cfg_addr listen; /* a unix socket path ("unix:/run/evproxy/admin.sock") */
        mode_t mode;            /* of the socket file ["0660"] */
        char *group;            /* group of the socket file; NULL = the user's (or ours) */
        char *state_file;       /* drain/maint states kept across restarts */
};

struct cfg {
        char *path;       /* the file loaded */
        unsigned workers; /* 0 = one per CPU */
        unsigned max_connections;
        uint64_t drain_timeout_ms;
        int log_level; /* syslog LOG_DEBUG..LOG_ERR */
        bool access_log;
        char *user; /* NULL = do not drop privileges */
        bool has_metrics;
        struct cfg_addr metrics_listen;
        enum cfg_forwarding forwarding;
        size_t buffer_size; /* copy buffer per direction; splice pipes are at least this big */
        size_t pipe_memory; /* bytes all splice pipes may hold (set, or max_connections*16K) */
        struct cfg_route *routes;
        size_t n_routes;
        struct cfg_admin admin;
        struct cfg_resolver resolver;
        /* Top-level policy: route defaults and daemon-wide client limits; and the entries of
         * the per-client table (client_table_size). */
        struct cfg_policy policy;
        size_t client_table_size;
        struct cfg_handover handover;
};

struct cfg_error {
        char file[4096];
        int line;          /* 0 if unknown */
        char setting[256]; /* e.g. "routes[0].upstreams[1]"; empty if none */
        char message[512];
};

/* 0, or -errno: -ENOENT, -EACCES, -EISDIR, -EFBIG ... for the file itself, -EINVAL for bad
 * content, -ENOMEM. err (may be NULL) is filled on every failure. @include paths are relative
 * to the directory of the main file (libconfig 1.5 prefixes absolute ones too). */
int cfg_load(const char *path, struct cfg **out, struct cfg_error *err);
/* For tests and fuzzing: name is used as the file in messages (NULL: "<string>"); @include is
 * relative to the current directory. */
int cfg_load_string(const char *text, const char *name, struct cfg **out, struct cfg_error *err);
void cfg_free(struct cfg *c); /* accepts NULL */

/* "evproxy.conf:14: routes[0].upstreams[1]: \"127.0.0.1:99999\": port out of range".
 * Returns the length snprintf would have written (>= len means truncated) or -EINVAL. */
int cfg_error_format(const struct cfg_error *err, char *buf, size_t len);

/* Same listener identity: kind + sockaddr (+ the wildcard flag), or the systemd name. */
bool cfg_addr_equal(const struct cfg_addr *a, const struct cfg_addr *b);
/* Parses one address as written in the file. 0 or -EINVAL with a reason in msg. */
int cfg_addr_parse(const char *text, bool for_listen, struct cfg_addr *out, char *msg,
                   size_t msg_len);
/* Parses "a.b.c.d/n", "v6/n" or a bare address (full-length prefix). 0 or -EINVAL + msg. */
int cfg_cidr_parse(const char *text, struct cfg_cidr *out, char *msg, size_t msg_len);
/* Does addr (AF_INET or AF_INET6 sockaddr; v4-mapped v6 counts as v4) fall in cidr? */
bool cfg_cidr_match(const struct cfg_cidr *cidr, const struct sockaddr *addr);

/* Which listeners stayed, were added, were removed between two configs (reload uses it). A
 * listener is identified by its address (kind + sockaddr, or systemd name); entries point into
 * the configs, and name the route each belongs to. */
struct cfg_listener_ref {
        const struct cfg_route *route;
        const struct cfg_addr *addr;
        size_t route_index, listen_index;
};
struct cfg_diff {
        struct cfg_listener_ref *kept_old, *kept_new;
        size_t n_kept; /* pairs: same index */
        struct cfg_listener_ref *added;
        size_t n_added;
        struct cfg_listener_ref *removed;
        size_t n_removed;
};
/* old_cfg may be NULL (everything is added). 0 or -ENOMEM; out is zeroed on failure. */
int cfg_diff_listeners(const struct cfg *old_cfg, const struct cfg *new_cfg, struct cfg_diff *out);
void cfg_diff_free(struct cfg_diff *d); /* accepts NULL and a zeroed diff */

#endif
