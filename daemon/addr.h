/* Socket addresses as text for logs: "1.2.3.4:5", "[::1]:5", "unix:/path", "unix:@name", or "-"
 * for an unnamed or unknown address. IPv4-mapped IPv6 addresses print as IPv4. */
#ifndef EVPROXYD_ADDR_H
#define EVPROXYD_ADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define ADDR_STRLEN 160

/* Always writes a NUL-terminated string; returns buf. */
char *addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t size);

/* True for an AF_UNIX address without a name (what accept() reports for most unix clients). */
bool addr_is_unnamed(const struct sockaddr *sa, socklen_t len);

/* An address a connection keeps for its whole life. An inet address (at most 28 bytes) is kept in
 * place; a longer one (a unix peer that bound a name, or our own unix listener's name from
 * getsockname) in a heap copy. Two of these cost an idle connection 64 bytes where two
 * sockaddr_storage cost 256. Zeroed = no address (len 0). */
struct addr_slot {
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
                struct sockaddr *heap;
        } u;
        socklen_t len;
};

/* Replace s's address by a copy of sa (len bytes; 0 = none). -ENOMEM leaves s empty. */
int addr_slot_set(struct addr_slot *s, const struct sockaddr *sa, socklen_t len);
/* The address kept (family 0 when there is none); its length is s->len. */
const struct sockaddr *addr_slot_get(const struct addr_slot *s);
/* Free what s holds; s is then empty. */
void addr_slot_clear(struct addr_slot *s);

#endif
