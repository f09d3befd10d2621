/* The admin socket (admin = { listen = "unix:..."; } in the configuration): evproxyctl's way to
 * look at the daemon and change upstream servers' admin state at run time. It runs on the main
 * thread's driver; admin_server.c has the connection state machine, admin_cmds.c the commands,
 * admin_state.c the state file that keeps drain/maint across reloads and restarts. */
#ifndef EVPROXYD_ADMIN_H
#define EVPROXYD_ADMIN_H

struct daemon;

/* Open d's admin socket (if its configuration has one) and apply the state file. Main thread,
 * before the daemon drops privileges and before workers start. 0, or -errno (logged). */
int admin_server_start(struct daemon *d);
/* Close the socket and every admin connection. Accepts a daemon without one. */
void admin_server_stop(struct daemon *d);
/* Route r (current generation) published a new server set: apply the state file's entries that
 * waited for one of its addresses (an upstream name that resolved after the start). */
struct route;
void admin_state_set_published(struct daemon *d, struct route *r);
/* reload.c: a reload ended; error is NULL when every worker applied the new configuration,
 * else why it failed (file:line: ...). Answers the admin clients waiting for it. */
void admin_reload_done(struct daemon *d, const char *error);

#endif
