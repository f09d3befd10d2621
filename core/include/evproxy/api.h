/* Symbol visibility of libevproxy-core. Core is compiled with -fvisibility=hidden: only what a
 * public header marks EVIO_API is exported. Public names start with evio_ (EVIO_ for constants);
 * internals start with evio__ and are hidden, as libuv's uv_ / uv__. */
#ifndef EVPROXY_API_H
#define EVPROXY_API_H

#define EVIO_API __attribute__((visibility("default")))

#endif
