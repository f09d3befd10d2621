/* Handover at restart or upgrade (issue 18): a running evproxyd gives every listener and every
 * established connection to its successor, which resumes them; no client sees it.
 * Takeover mode (evproxyd -H PATH): the successor connects to PATH, where the running one
 * listens, and the exchange goes (unix SOCK_SEQPACKET):
 *   new: TAKE --> old: quiesce workers, STATE (memfd) + FDS (<= 253 fds each) --> new: check,
 *   adopt, OK --> old: COMMIT, exit (its copies closed, unix paths left) --> new: resume
 * Until COMMIT the new one touches nothing (no read, no accept); the old one, seeing anything
 * else than OK (EOF, timeout, garbage), resumes everything it had: its fds are still its own. */
#ifndef EVPROXYD_HANDOVER_H
#define EVPROXYD_HANDOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct daemon;
struct pump;
struct ho_dir;

/* From main(), before daemon_run(): the handover socket path (NULL: no handover). */
void handover_configure(const char *path);

/* Start-up of a new process, in this order (each a no-op without a path or an old process):
 * take (connect, receive, validate), adopt_listeners (before daemon_bind: what systemd's fd
 * store gave, if take got nothing; the old sockets become this process's socket sets, never
 * bound again), confirm (OK, wait for COMMIT, close
 * listeners the new configuration dropped, wait for the old one to be gone), import (into the
 * workers, before they start), listen (for the next successor). -errno (logged) means exit 1:
 * the old process resumes. */
int handover_take(struct daemon *d);
int handover_adopt_listeners(struct daemon *d);
int handover_confirm(struct daemon *d);
void handover_import(struct daemon *d);
int handover_listen(struct daemon *d);
/* SIGTERM while running: with handover.fdstore under systemd, start handing everything to the
 * fd store (true: the daemon then exits as the handover commits, or drains if it fails). */
bool handover_stop_signal(struct daemon *d);
/* A signal (SIGHUP, SIGTERM, SIGINT) the main loop took while a handover is under way: true if
 * it is put off until the handover is over (raised again if this process goes on). A reload or
 * a drain must not touch listeners and connections that are being handed over. */
bool handover_defer_signal(struct daemon *d, int sig);
/* Main loop, after each turn: serve a successor's request (old process). */
void handover_progress(struct daemon *d);
/* At exit; accepts a daemon without handover. */
void handover_free(struct daemon *d);

/* One direction in and out of a record (handover_conn.c). alloc: d->data for len bytes.
 * export: p's state and pending bytes into d (whose data holds p->pending bytes), p left empty;
 * -errno if a pipe would not give its bytes back. import: p from d, bytes in flight in a buffer
 * of its own (at least buf_size); -ENOMEM. */
int ho_dir_alloc(struct ho_dir *d, uint32_t len);
int ho_pump_export(struct pump *p, struct ho_dir *d);
int ho_pump_import(struct pump *p, struct ho_dir *d, size_t buf_size, bool splice);

#endif
