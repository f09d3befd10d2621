/* Addresses and CIDRs as written in the file: "host:port", "[v6]:port", "*:port",
 * "unix:/path", "unix:@abstract", "systemd:NAME", "10.0.0.0/8". No DNS: the only name known
 * is "localhost". Parsed sockaddrs are zero-filled so that two equal addresses compare equal
 * byte for byte, which is what listener identity (cfg_addr_cmp) relies on. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "internal.h"

#define UNIX_PATH_MAX_LEN (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

static int reason(char *msg, size_t len, const char *text)
{
        snprintf(msg, len, "%s", text);
        return -EINVAL;
}

static bool is_name_char(char ch, bool allow_colon)
{
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               ch == '_' || ch == '.' || ch == '-' || (allow_colon && ch == ':');
}

static int parse_port(const char *s, in_port_t *port, char *msg, size_t len)
{
        unsigned long v = 0;
        const char *p;

        if (!*s)
                return reason(msg, len, "missing port after ':'");
        for (p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return reason(msg, len, "port is not a number");
                if (v <= 65535)
                        v = v * 10 + (unsigned long)(*p - '0');
        }
        if (v == 0 || v > 65535)
                return reason(msg, len, "port out of range");
        *port = htons((in_port_t)v);
        return 0;
}

int cfg_port_parse(const char *s, uint16_t *port, char *msg, size_t len)
{
        in_port_t p;
        int r = parse_port(s, &p, msg, len);

        if (r == 0)
                *port = ntohs(p);
        return r;
}

static int parse_unix(const char *rest, struct cfg_addr *out, char *msg, size_t len)
{
        struct sockaddr_un *un = (struct sockaddr_un *)&out->sa;
        bool abstract = rest[0] == '@';
        const char *name = abstract ? rest + 1 : rest;
        size_t n = strlen(name);

        if (n == 0)
                return reason(msg, len,
                              abstract ? "empty abstract socket name" : "empty unix socket path");
        if (n > UNIX_PATH_MAX_LEN) /* a path needs its NUL; a name needs its leading NUL */
                return reason(msg, len,
                              abstract ? "abstract socket name too long (at most 107 bytes)"
                                       : "unix socket path too long (at most 107 bytes)");
        if (!abstract && name[0] != '/')
                return reason(msg, len, "unix socket path must be absolute");
        un->sun_family = AF_UNIX;
        if (abstract) {
                memcpy(un->sun_path + 1, name, n); /* sun_path[0] stays '\0' */
                out->sa_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
                out->kind = CFG_ADDR_ABSTRACT;
        } else {
                memcpy(un->sun_path, name, n);
                out->sa_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
                out->kind = CFG_ADDR_UNIX;
        }
        return 0;
}

static int parse_systemd(const char *name, bool for_listen, struct cfg_addr *out, char *msg,
                         size_t len)
{
        size_t n = strlen(name), i;

        if (!for_listen)
                return reason(msg, len, "systemd: sockets can only be used to listen");
        if (n == 0)
                return reason(msg, len, "empty systemd socket name");
        if (n >= sizeof(out->name))
                return reason(msg, len, "systemd socket name too long (at most 63 characters)");
        for (i = 0; i < n; i++)
                if (!is_name_char(name[i], true))
                        return reason(msg, len,
                                      "systemd socket name may only use A-Z a-z 0-9 _ . - :");
        memcpy(out->name, name, n + 1);
        out->kind = CFG_ADDR_SYSTEMD;
        out->sa.ss_family = AF_UNSPEC;
        out->sa_len = 0;
        return 0;
}

static int set_inet6(struct cfg_addr *out, const struct in6_addr *a, const char *port, char *msg,
                     size_t len)
{
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->sa;
        int r;

        sin6->sin6_family = AF_INET6;
        sin6->sin6_addr = *a;
        r = parse_port(port, &sin6->sin6_port, msg, len);
        out->sa_len = sizeof(*sin6);
        out->kind = CFG_ADDR_INET;
        return r;
}

static int parse_bracketed(const char *text, char *msg, size_t len, struct cfg_addr *out)
{
        const char *end = strchr(text, ']');
        char host[INET6_ADDRSTRLEN + 1];
        struct in6_addr a;
        size_t n;

        if (!end)
                return reason(msg, len, "missing ']' after the IPv6 address");
        n = (size_t)(end - text - 1);
        if (n == 0 || n >= sizeof(host))
                return reason(msg, len, "not an IPv6 address");
        memcpy(host, text + 1, n);
        host[n] = '\0';
        if (strchr(host, '%'))
                return reason(msg, len, "IPv6 scope ids (%) are not supported");
        if (inet_pton(AF_INET6, host, &a) != 1)
                return reason(msg, len, "not an IPv6 address");
        if (end[1] != ':')
                return reason(msg, len, "missing port (expected \"[v6]:port\")");
        return set_inet6(out, &a, end + 2, msg, len);
}

static int parse_host_port(const char *text, char *msg, size_t len, struct cfg_addr *out)
{
        struct sockaddr_in *sin = (struct sockaddr_in *)&out->sa;
        const char *colon = strrchr(text, ':');
        char host[INET_ADDRSTRLEN + 1];
        size_t n;

        if (!colon)
                return reason(msg, len, "missing port (expected \"host:port\")");
        if (strchr(text, ':') != colon)
                return reason(msg, len, "IPv6 addresses must be in brackets, e.g. \"[::1]:8080\"");
        if (text[0] == '*' && colon == text + 1) {
                out->wildcard = true;
                return set_inet6(out, &in6addr_any, colon + 1, msg, len);
        }
        n = (size_t)(colon - text);
        if (n == 0)
                return reason(msg, len, "missing host before ':' (use \"*:port\" for all)");
        if (n == strlen("localhost") && strncmp(text, "localhost", n) == 0) {
                sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        } else {
                if (n >= sizeof(host))
                        return reason(msg, len,
                                      "not an IPv4 address (host names are not "
                                      "resolved; only \"localhost\" is known)");
                memcpy(host, text, n);
                host[n] = '\0';
                if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
                        return reason(msg, len,
                                      "not an IPv4 address (host names are not "
                                      "resolved; only \"localhost\" is known)");
        }
        sin->sin_family = AF_INET;
        out->sa_len = sizeof(*sin);
        out->kind = CFG_ADDR_INET;
        return parse_port(colon + 1, &sin->sin_port, msg, len);
}

static bool is_unspecified(const struct cfg_addr *a)
{
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->sa;
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->sa;

        if (a->kind != CFG_ADDR_INET)
                return false;
        if (a->sa.ss_family == AF_INET)
                return sin->sin_addr.s_addr == htonl(INADDR_ANY);
        return IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
}

int cfg_addr_parse(const char *text, bool for_listen, struct cfg_addr *out, char *msg,
                   size_t msg_len)
{
        size_t n = strlen(text);
        int r;

        memset(out, 0, sizeof(*out));
        if (n == 0)
                return reason(msg, msg_len, "empty address");
        if (n >= sizeof(out->text))
                return reason(msg, msg_len, "address too long (at most 127 characters)");
        memcpy(out->text, text, n + 1);
        if (strncmp(text, "unix:", 5) == 0)
                r = parse_unix(text + 5, out, msg, msg_len);
        else if (strncmp(text, "systemd:", 8) == 0)
                r = parse_systemd(text + 8, for_listen, out, msg, msg_len);
        else if (text[0] == '[')
                r = parse_bracketed(text, msg, msg_len, out);
        else
                r = parse_host_port(text, msg, msg_len, out);
        if (r == 0 && !for_listen && out->wildcard)
                r = reason(msg, msg_len, "an upstream cannot be a wildcard address");
        else if (r == 0 && !for_listen && is_unspecified(out))
                r = reason(msg, msg_len, "an upstream cannot be an unspecified address");
        if (r < 0)
                memset(out, 0, sizeof(*out));
        return r;
}

int cfg_addr_cmp(const struct cfg_addr *a, const struct cfg_addr *b)
{
        if (a->kind != b->kind)
                return a->kind < b->kind ? -1 : 1;
        if (a->kind == CFG_ADDR_SYSTEMD)
                return strcmp(a->name, b->name);
        if (a->wildcard != b->wildcard)
                return a->wildcard ? 1 : -1;
        if (a->sa_len != b->sa_len)
                return a->sa_len < b->sa_len ? -1 : 1;
        return memcmp(&a->sa, &b->sa, a->sa_len);
}

bool cfg_addr_equal(const struct cfg_addr *a, const struct cfg_addr *b)
{
        return cfg_addr_cmp(a, b) == 0;
}

static in_port_t inet_port(const struct cfg_addr *a)
{
        if (a->sa.ss_family == AF_INET)
                return ((const struct sockaddr_in *)&a->sa)->sin_port;
        return ((const struct sockaddr_in6 *)&a->sa)->sin6_port;
}

bool cfg_addr_overlap(const struct cfg_addr *a, const struct cfg_addr *b)
{
        if (cfg_addr_equal(a, b))
                return true;
        if (a->kind != CFG_ADDR_INET || b->kind != CFG_ADDR_INET || a->wildcard == b->wildcard)
                return false;
        return inet_port(a) == inet_port(b) && is_unspecified(a) && is_unspecified(b);
}

static void mask_host_bits(uint8_t *addr, unsigned bytes, unsigned prefix)
{
        unsigned i;

        for (i = 0; i < bytes; i++) {
                if (prefix >= 8 * (i + 1))
                        continue;
                addr[i] &= prefix > 8 * i ? (uint8_t)(0xff << (8 - (prefix - 8 * i))) : 0;
        }
}

int cfg_cidr_parse(const char *text, struct cfg_cidr *out, char *msg, size_t msg_len)
{
        static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        char host[INET6_ADDRSTRLEN + 1];
        const char *slash = strchr(text, '/');
        size_t n = slash ? (size_t)(slash - text) : strlen(text);
        unsigned long prefix = 0, max;
        const char *p;

        memset(out, 0, sizeof(*out));
        if (n == 0 || n >= sizeof(host))
                return reason(msg, msg_len, "not an IP address");
        memcpy(host, text, n);
        host[n] = '\0';
        if (inet_pton(AF_INET, host, out->addr) == 1)
                out->family = AF_INET;
        else if (inet_pton(AF_INET6, host, out->addr) == 1)
                out->family = AF_INET6;
        else
                return reason(msg, msg_len,
                              "not an IP address (expected e.g. \"10.0.0.0/8\" or \"::1/128\")");
        max = out->family == AF_INET ? 32 : 128;
        if (!slash) {
                prefix = max;
        } else {
                if (!slash[1])
                        return reason(msg, msg_len, "missing prefix length after '/'");
                for (p = slash + 1; *p; p++) {
                        if (*p < '0' || *p > '9')
                                return reason(msg, msg_len, "prefix length is not a number");
                        if (prefix <= max)
                                prefix = prefix * 10 + (unsigned long)(*p - '0');
                }
                if (prefix > max)
                        return reason(msg, msg_len,
                                      out->family == AF_INET
                                          ? "prefix length out of range (0..32)"
                                          : "prefix length out of range (0..128)");
        }
        out->prefix = (unsigned)prefix;
        if (out->family == AF_INET6 && prefix >= 96 && memcmp(out->addr, v4mapped, 12) == 0) {
                memmove(out->addr, out->addr + 12, 4);
                memset(out->addr + 4, 0, 12);
                out->family = AF_INET;
                out->prefix -= 96;
        }
        mask_host_bits(out->addr, out->family == AF_INET ? 4 : 16, out->prefix);
        return 0;
}

bool cfg_cidr_match(const struct cfg_cidr *cidr, const struct sockaddr *addr)
{
        static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        uint8_t a[16] = {0};
        int family = addr->sa_family;
        unsigned full, rest;

        if (family == AF_INET) {
                memcpy(a, &((const struct sockaddr_in *)addr)->sin_addr, 4);
        } else if (family == AF_INET6) {
                memcpy(a, &((const struct sockaddr_in6 *)addr)->sin6_addr, 16);
                if (memcmp(a, v4mapped, 12) == 0) {
                        memmove(a, a + 12, 4);
                        memset(a + 4, 0, 12);
                        family = AF_INET;
                }
        } else {
                return false;
        }
        if (family != cidr->family)
                return false;
        full = cidr->prefix / 8;
        rest = cidr->prefix % 8;
        if (memcmp(a, cidr->addr, full) != 0)
                return false;
        return rest == 0 || ((a[full] ^ cidr->addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}
