/* What handover.c (the new process's side) and handover_old.c (the old one's) share. */
#ifndef EVPROXYD_HANDOVER_INT_H
#define EVPROXYD_HANDOVER_INT_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/un.h>

#include <evproxy/registration.h>

#include "handover_wire.h"

struct daemon;

#define HO_TIMEOUT_MS 10000 /* any one wait of the exchange */

enum ho_phase { HO_IDLE, HO_QUIESCING, HO_RESUMING, HO_DONE };

struct handover {
        struct sockaddr_un sun;
        int lfd; /* listening for a successor (after start-up) */
        struct evio_registration lreg;
        bool own_file; /* the socket file at sun is ours: dev, ino */
        dev_t dev;
        ino_t ino;
        int peer; /* the other process of an exchange, or -1 */
        pid_t peer_pid;
        enum ho_phase phase;
        bool took;          /* new process: st holds what the old one gave */
        struct ho_state st; /* old: what the workers exported; new: what was received */
};

extern const char *ho_path; /* handover_configure() */

/* d->ho for ho_path, if not made yet: 0 or -errno (logged). */
int ho_new(struct daemon *d);
/* The pid of a unix socket's peer, 0 if unknown. */
pid_t ho_peer_pid(int fd);

#endif
