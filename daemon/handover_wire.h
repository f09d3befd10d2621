/* The handover record: what one evproxyd hands its successor, as plain structs (ho_state) and
 * as the versioned, bounds-checked bytes that travel in a memfd. File descriptors travel
 * beside it (SCM_RIGHTS or systemd's fd store); the bytes name them by index, 0..n_fds-1, each
 * index used exactly once. Bytes in flight travel inline: a copy buffer's pending bytes, and a
 * splice pipe's, read out of the pipe at export (a pipe left in flight could be dropped by
 * systemd's store as POLLHUP once its writer closes, and holds no state worth an fd). */
#ifndef EVPROXYD_HANDOVER_WIRE_H
#define EVPROXYD_HANDOVER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <evproxy/config.h>

#define HO_MAGIC       "EVPXHO\r\n" /* 8 bytes */
#define HO_VERSION     1
#define HO_HEADER_SIZE 48
#define HO_MAX_FDS     65536             /* fds of one handover */
#define HO_MAX_SOCKS   1024              /* sockets of one listener (one per worker) */
#define HO_MAX_PENDING (16u << 20)       /* bytes in flight of one direction */
#define HO_MAX_SIZE    ((size_t)1 << 34) /* the whole record */
#define HO_TEXT_MAX    128               /* address texts, with the NUL (cfg_addr.text) */

/* The record's first HO_HEADER_SIZE bytes (host order). sum: FNV-1a 64 of the body. */
struct ho_header {
        char magic[8];
        uint32_t version, n_fds, n_ls, n_cs;
        uint64_t body_len, sum, zero;
};

/* What a connection was doing when it was handed over, and so what the successor does. */
enum ho_conn_state {
        HO_FORWARDING = 0,   /* both sockets: resume the pumps */
        HO_CONNECTING = 1,   /* client socket only, nothing forwarded yet: connect again */
        HO_PROXY_HEADER = 2, /* client socket only, header unread (peeked): wait for it again */
};

enum ho_first_eof { HO_EOF_NONE = 0, HO_EOF_CLIENT = 1, HO_EOF_UPSTREAM = 2 };

/* One direction: bytes read from its source and not yet written (data, len), and its end. */
struct ho_dir {
        bool eof;  /* the source said EOF */
        bool done; /* EOF passed on (destination shut down for writing) */
        uint64_t bytes;
        uint32_t len;
        unsigned char *data; /* malloc'ed, len bytes; NULL when len is 0 */
};

struct ho_conn {
        char route[CFG_ROUTE_NAME_MAX + 1];
        char upstream[HO_TEXT_MAX]; /* the server's address as configured; "" none yet */
        int cfd, ufd;               /* fds, or indices in encoded form; ufd -1 unless forwarding */
        uint8_t state;              /* enum ho_conn_state */
        uint8_t first_eof;          /* enum ho_first_eof */
        bool pp_pending;            /* our PROXY header is not all sent yet */
        uint8_t pp_sent;            /* bytes of it sent */
        struct sockaddr_storage client, local; /* as conn.c keeps them; len 0: unknown */
        uint32_t client_len, local_len;
        uint64_t age_ms, idle_ms;
        struct ho_dir up, down; /* client -> upstream, upstream -> client */
};

struct ho_listener {
        char text[HO_TEXT_MAX];             /* listen address as configured */
        char route[CFG_ROUTE_NAME_MAX + 1]; /* the route that listened on it */
        unsigned n_socks;                   /* one per worker for TCP, else 1 */
        int *fds;                           /* fds, or indices in encoded form */
};

struct ho_state {
        uint64_t *cookies; /* decoded: SO_COOKIE of each fd index (0: unknown) */
        size_t n_cookies;
        struct ho_listener *ls;
        size_t n_ls, cap_ls;
        struct ho_conn *cs;
        size_t n_cs, cap_cs;
};

/* A new zeroed entry at the end (its fds -1): 0 or -ENOMEM. */
int ho_state_add_conn(struct ho_state *st, struct ho_conn **out);
int ho_state_add_listener(struct ho_state *st, unsigned n_socks, struct ho_listener **out);
/* Move every entry of src to the end of dst (src is left empty). 0 or -ENOMEM (nothing moved). */
int ho_state_move(struct ho_state *dst, struct ho_state *src);
/* Free what st holds, not closing its fds; st is left empty. Accepts an empty/zeroed st. */
void ho_state_free(struct ho_state *st);
/* Close every fd of st (>= 0) and set it to -1. */
void ho_state_close_fds(struct ho_state *st);
/* Bytes in flight, both directions of every connection. */
uint64_t ho_state_pending(const struct ho_state *st);

/* The identity of an fd that travels with its index (SO_COOKIE): a receiver that gets the fds in
 * no particular order (systemd's fd store) maps them back by it, one that gets them in order
 * checks it. 0: unknown. */
typedef uint64_t ho_cookie_fn(int fd);

/* st as bytes (*buf malloc'ed, *len) and its fds in index order (*fds malloc'ed, *n_fds), each
 * fd's cookie (cookie may be NULL: all 0) in the record. 0, -ENOMEM, or -E2BIG past the limits
 * above. */
int ho_encode(const struct ho_state *st, ho_cookie_fn *cookie, unsigned char **buf, size_t *len,
              int **fds, size_t *n_fds);
/* Parse and check buf: magic, version, length, checksum, every count and length within bounds
 * and consistent, every fd index below n_fds and used once, each used, no trailing byte. out's
 * fds are the indices, its cookies the record's (a non-zero cookie twice: inconsistent).
 * 0, or -EBADMSG (-EPROTONOSUPPORT for another version, -ENOMEM); out is
 * left empty on failure. */
int ho_decode(const unsigned char *buf, size_t len, size_t n_fds, struct ho_state *out);
/* Recompute the length and checksum in the header of an encoded record of len bytes (tests and
 * fuzzing edit records and then make only the semantic checks stand in the way). */
void ho_resign(unsigned char *buf, size_t len);
/* Replace the indices of a decoded st by fds[index]. */
void ho_state_map_fds(struct ho_state *st, const int *fds, size_t n_fds);

#endif
