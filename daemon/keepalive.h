/* TCP keepalive and user timeout on a connection's sockets (issue 16): client_keepalive /
 * upstream_keepalive and client_user_timeout / upstream_user_timeout, so a peer that vanished
 * is found (ETIMEDOUT, end=peer_timeout) without waiting for idle_timeout. */
#ifndef EVPROXYD_KEEPALIVE_H
#define EVPROXYD_KEEPALIVE_H

#include <stdbool.h>
#include <stdint.h>

#include <evproxy/config.h>

/* Set SO_KEEPALIVE + TCP_KEEPIDLE/INTVL/CNT (when ka->enabled) and TCP_USER_TIMEOUT (when
 * user_timeout_ms > 0) on the TCP socket fd. 0, or the -errno of the first option refused. */
int keepalive_apply(int fd, const struct cfg_keepalive *ka, uint64_t user_timeout_ms);

/* Apply the client or the upstream side's settings of p to fd if family is AF_INET or AF_INET6
 * (unix sockets have neither); a failure is logged (debug) for route, never fatal. */
void keepalive_side(int fd, int family, const struct cfg_policy *p, bool upstream,
                    const char *route);

#endif
