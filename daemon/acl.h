/* Access control of a route: allow / deny CIDR lists over the client address. */
#ifndef EVPROXYD_ACL_H
#define EVPROXYD_ACL_H

#include <stdbool.h>
#include <sys/socket.h>

#include <evproxy/config.h>

/* May a client from sa use route r? Deny wins over allow; an empty allow list allows everyone
 * not denied; IPv4-mapped IPv6 addresses count as IPv4. Unix-socket clients (and any other
 * family) are always allowed: the socket file's mode governs them. */
bool acl_allows(const struct cfg_route *r, const struct sockaddr *sa);

#endif
