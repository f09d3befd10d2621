/* The admin protocol, shared by evproxyd's admin socket and evproxyctl (which links this module
 * and jansson, never the daemon library). One connection carries one request: a JSON object on
 * one line, e.g. {"cmd":"drain","route":"web","server":"127.0.0.1:8081"}\n, answered by one
 * JSON object on one line, {"ok":true,...} or {"ok":false,"error":"why"}, then closed. */
#ifndef EVPROXYD_ADMIN_PROTO_H
#define EVPROXYD_ADMIN_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ADMIN_DEFAULT_SOCKET "/run/evproxy/admin.sock"
/* Bounds the server enforces (documented in evproxyctl(1) and evproxy.conf(5)). */
#define ADMIN_MAX_REQUEST        4096  /* bytes of one request line, newline included */
#define ADMIN_MAX_CLIENTS        16    /* admin connections open at once; more are closed */
#define ADMIN_REQUEST_TIMEOUT_MS 5000  /* to send the whole request line */
#define ADMIN_RELOAD_TIMEOUT_MS  60000 /* a reload (or conns) answer waits at most this long */
#define ADMIN_WRITE_TIMEOUT_MS   10000 /* to read the whole answer */
#define ADMIN_MAX_RESPONSE       (64u << 20)
#define ADMIN_NAME_MAX           63  /* a route name (CFG_ROUTE_NAME_MAX) */
#define ADMIN_SERVER_MAX         127 /* a server address as written in the config */

enum admin_cmd {
        ADMIN_CMD_STATUS,
        ADMIN_CMD_SERVERS, /* route optional */
        ADMIN_CMD_DRAIN,   /* route, server */
        ADMIN_CMD_MAINT,   /* route, server, kill */
        ADMIN_CMD_READY,   /* route, server */
        ADMIN_CMD_RELOAD,
        ADMIN_CMD_CHECK,
        ADMIN_CMD_CONNS, /* route, server optional */
        ADMIN_CMD_KILL,  /* id */
};

/* An upstream server's admin state: READY takes new connections; DRAIN and MAINT take none
 * (not even as a last resort), existing ones go on; kept in the state file across restarts. */
enum admin_state {
        ADMIN_STATE_READY,
        ADMIN_STATE_DRAIN,
        ADMIN_STATE_MAINT,
};

struct admin_request {
        enum admin_cmd cmd;
        char route[ADMIN_NAME_MAX + 1];    /* "" when not given */
        char server[ADMIN_SERVER_MAX + 1]; /* "" when not given */
        bool kill;                         /* maint: also reset the server's connections */
        uint64_t id;                       /* kill: the connection's id */
};

const char *admin_cmd_name(enum admin_cmd cmd);
const char *admin_state_name(enum admin_state s);
/* "ready", "drain", "maint" -> 0, or -EINVAL. */
int admin_state_parse(const char *name, enum admin_state *out);

/* Parse one request line (len bytes, without the newline). 0, or -EINVAL with a reason in err
 * ("unknown command \"x\"", "\"route\" is missing", ...); -ENOMEM. */
int admin_request_parse(const char *line, size_t len, struct admin_request *out, char *err,
                        size_t err_len);
/* The request as a JSON line with its newline (malloc'd), or NULL without memory. */
char *admin_request_format(const struct admin_request *req);

#endif
