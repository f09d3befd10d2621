/* Socket addresses as text for logs: "1.2.3.4:5", "[::1]:5", "unix:/path", "unix:@name", or "-"
 * for an unnamed or unknown address. IPv4-mapped IPv6 addresses print as IPv4. */
#ifndef EVPROXYD_ADDR_H
#define EVPROXYD_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define ADDR_STRLEN 160

/* Always writes a NUL-terminated string; returns buf. */
char *addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t size);

/* True for an AF_UNIX address without a name (what accept() reports for most unix clients). */
bool addr_is_unnamed(const struct sockaddr *sa, socklen_t len);

#endif
