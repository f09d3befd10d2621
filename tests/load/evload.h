/* What the load client (evload.c) and its echo server (echo.c) share. */
#ifndef EVLOAD_H
#define EVLOAD_H

#include <signal.h>
#include <sys/socket.h>

#define MAX_EVENTS 1024
#define IO_CHUNK   16384

extern volatile sig_atomic_t stop_requested;
double now_s(void);
/* evload --echo ADDR: serve until SIGTERM/SIGINT; 0 or 2 on a setup error. */
int run_echo(const char *text, struct sockaddr_storage *sa, socklen_t len);

#endif
