/* Socket address formatting for access and error logs. Abstract unix names may hold any byte:
 * bytes that are not printable ASCII (including NUL) are shown as '?' so a line stays a line. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "addr.h"

static bool slot_on_heap(const struct addr_slot *s)
{
        return s->len > sizeof(s->u);
}

void addr_slot_clear(struct addr_slot *s)
{
        if (slot_on_heap(s))
                free(s->u.heap);
        memset(s, 0, sizeof(*s));
}

int addr_slot_set(struct addr_slot *s, const struct sockaddr *sa, socklen_t len)
{
        addr_slot_clear(s);
        if (len > sizeof(struct sockaddr_storage))
                len = sizeof(struct sockaddr_storage);
        if (len > sizeof(s->u)) {
                s->u.heap = malloc(len);
                if (!s->u.heap)
                        return -ENOMEM;
                memcpy(s->u.heap, sa, len);
        } else if (len > 0) {
                memcpy(&s->u, sa, len);
        }
        s->len = len;
        return 0;
}

const struct sockaddr *addr_slot_get(const struct addr_slot *s)
{
        return slot_on_heap(s) ? s->u.heap : &s->u.sa;
}

bool addr_is_unnamed(const struct sockaddr *sa, socklen_t len)
{
        return sa->sa_family == AF_UNIX && len <= offsetof(struct sockaddr_un, sun_path);
}

static char *format_unix(const struct sockaddr_un *un, socklen_t len, char *buf, size_t size)
{
        size_t n = len - offsetof(struct sockaddr_un, sun_path);
        size_t pos;
        const char *p = un->sun_path;
        bool abstract = p[0] == '\0';

        if (n > sizeof(un->sun_path))
                n = sizeof(un->sun_path);
        pos = (size_t)snprintf(buf, size, abstract ? "unix:@" : "unix:");
        if (abstract) {
                p++;
                n--;
        } else {
                n = strnlen(p, n);
        }
        for (size_t i = 0; i < n && pos + 1 < size; i++) {
                unsigned char ch = (unsigned char)p[i];

                buf[pos++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
        }
        buf[pos < size ? pos : size - 1] = '\0';
        return buf;
}

char *addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
        char host[INET6_ADDRSTRLEN];

        if (!sa || len < sizeof(sa_family_t) || addr_is_unnamed(sa, len)) {
                snprintf(buf, size, "-");
                return buf;
        }
        if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
                const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

                inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
                snprintf(buf, size, "%s:%u", host, ntohs(in->sin_port));
        } else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

                if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
                        inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host, sizeof(host));
                        snprintf(buf, size, "%s:%u", host, ntohs(in6->sin6_port));
                } else {
                        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
                        snprintf(buf, size, "[%s]:%u", host, ntohs(in6->sin6_port));
                }
        } else if (sa->sa_family == AF_UNIX) {
                return format_unix((const struct sockaddr_un *)sa, len, buf, size);
        } else {
                snprintf(buf, size, "-");
        }
        return buf;
}
