/* What handover.c (the new process's side) and handover_old.c (the old one's) share. */
#ifndef EVPROXYD_HANDOVER_INT_H
#define EVPROXYD_HANDOVER_INT_H

#include <stdbool.h>
#include <stdint.h>
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
        bool from_store;    /* ... through systemd's fd store, not yet removed from it */
        bool to_store;      /* old process: this handover goes to the fd store */
        uint64_t deferred;  /* signals (bit sig-1) that came during an exchange: raised after */
        struct ho_state st; /* old: what the workers exported; new: what was received */
};

/* d->ho, if not made yet, for the socket of -H or else of the configuration ("": none).
 * 0 or -errno (logged). */
int ho_new(struct daemon *d);
/* The fd store (handover_fdstore.c). wanted: configured and under systemd. push: st to the
 * store (0, or -errno with nothing left there). take: from d->passed into ho->st, ho->took set
 * (an unusable record is dropped from the store: 0, start afresh). release: remove what we took
 * from the store, once it runs here. */
bool ho_fdstore_wanted(const struct daemon *d);
bool ho_fdstore_restarting(void);
int ho_fdstore_push(struct handover *ho);
int ho_fdstore_take(struct daemon *d, struct handover *ho);
void ho_fdstore_release(struct handover *ho);

/* A generation with route alone, listening nowhere, for the connections of st of a route the
 * configuration dropped (handover_ghost.c); one reference, NULL if it cannot be made (logged). */
struct gen *ho_ghost_gen(const struct daemon *d, const char *route, const struct ho_state *st);

/* fd's SO_COOKIE (its socket's identity), 0 if it has none. */
uint64_t ho_cookie(int fd);
/* The pid of a unix socket's peer, 0 if unknown. */
pid_t ho_peer_pid(int fd);

#endif
