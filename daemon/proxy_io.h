/* The socket side of the PROXY protocol (proxy_proto.h does the bytes): read a client's header
 * without taking a byte of its data, and send ours to an upstream before any client byte. */
#ifndef EVPROXYD_PROXY_IO_H
#define EVPROXYD_PROXY_IO_H

#include <stdint.h>
#include <sys/socket.h>

#include <evproxy/config.h>
#include <evproxy/registration.h>

#include "proxy_proto.h"

/* Peek at what reg's socket holds (MSG_PEEK), parse it, and once a whole header is there consume
 * exactly its length. Returns 1 (h filled), 0 (need more: readiness cleared, wait for the waker),
 * -EPROTO (malformed, or the client half-closed mid-header), -EMSGSIZE (oversized),
 * -ENODATA (client closed before sending anything), or another -errno from recv. */
int proxy_read_header(struct evio_registration *reg, struct pp_header *h);

/* Send the header of version v for a connection from src to dst on reg's socket, from byte
 * *sent on. Returns 1 when all of it is out, 0 when the socket is full (readiness cleared),
 * -errno. */
int proxy_send_header(struct evio_registration *reg, enum cfg_proxy_protocol v,
                      const struct sockaddr *src, const struct sockaddr *dst, uint8_t *sent);

/* An IPv4-mapped IPv6 address becomes the plain IPv4 one (in place); others are left alone.
 * Returns the length of the address now in ss. */
socklen_t proxy_unmap_v4(struct sockaddr_storage *ss, socklen_t len);

#endif
