/* TCP keepalive and TCP_USER_TIMEOUT on accepted and upstream sockets. The file gives seconds
 * (durations, kept in ms); the kernel takes whole seconds for keepalive, so they are rounded
 * up, and milliseconds for the user timeout. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "keepalive.h"
#include "log.h"

static int set_int(int fd, int level, int name, int v)
{
        return setsockopt(fd, level, name, &v, sizeof(v)) == 0 ? 0 : -errno;
}

static int whole_seconds(uint64_t ms)
{
        return (int)((ms + 999) / 1000);
}

int keepalive_apply(int fd, const struct cfg_keepalive *ka, uint64_t user_timeout_ms)
{
        int r = 0;

        if (ka->enabled) {
                if ((r = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1)) < 0 ||
                    (r = set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, whole_seconds(ka->idle_ms))) < 0 ||
                    (r = set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, whole_seconds(ka->interval_ms))) <
                        0 ||
                    (r = set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, (int)ka->count)) < 0)
                        return r;
        }
        if (user_timeout_ms)
                r = set_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT,
                            user_timeout_ms > INT32_MAX ? INT32_MAX : (int)user_timeout_ms);
        return r;
}

void keepalive_side(int fd, int family, const struct cfg_policy *p, bool upstream,
                    const char *route)
{
        const struct cfg_keepalive *ka = upstream ? &p->upstream_keepalive : &p->client_keepalive;
        uint64_t ut = upstream ? p->upstream_user_timeout_ms : p->client_user_timeout_ms;
        int r;

        if (fd < 0 || (family != AF_INET && family != AF_INET6) || (!ka->enabled && !ut))
                return;
        r = keepalive_apply(fd, ka, ut);
        if (r < 0)
                log_debug_errno(r, "route %s: setting %s keepalive/user_timeout", route,
                                upstream ? "upstream" : "client");
}
