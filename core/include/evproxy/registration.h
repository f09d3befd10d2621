/* A registration (Tokio's registration.rs): what a user of the driver holds for one fd, by value
 * in its own struct: the fd it owns, that fd's record in the driver and the driver's handle.
 * It polls readiness, does I/O with try_io (readiness is cleared with the snapshot taken before
 * the I/O, and only when the I/O said EAGAIN) and deregisters-and-closes. Its life:
 *   EMPTY (fd -1) --init(fd)--> HELD (fd, not registered) --register--> REGISTERED
 *   HELD/REGISTERED --close--> EMPTY (fd closed) | --deregister--> EMPTY (fd handed back)
 * A failed registration leaves r HELD: it still owns fd, so close or deregister deals with it.
 * r owns its fd only once evio_reg_init() (or _open) gave it a handle: zeroed memory is EMPTY, so
 * the destructor of a half-built object from calloc() closes nothing (not fd 0). */
#ifndef EVPROXY_REGISTRATION_H
#define EVPROXY_REGISTRATION_H

#include "api.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "driver.h"
#include "ready.h"
#include "scheduled_io.h"

struct evio_registration {
        int fd;                       /* the descriptor r owns; -1: none */
        struct evio_scheduled_io *io; /* fd's record while registered, else NULL */
        struct evio_handle *h;        /* the driver fd is (to be) registered with */
};

/* An empty registration whose fd reads -1 (zeroed memory is empty too, but its fd reads 0). */
#define EVIO_REGISTRATION_INIT ((struct evio_registration){.fd = -1, .io = NULL, .h = NULL})

/* r takes fd (-1: none) for h (not NULL), without registering it: HELD, or EMPTY for -1.
 * Overwrites r, so r must not own anything yet. */
EVIO_API void evio_reg_init(struct evio_registration *r, struct evio_handle *h, int fd);

/* Register r's fd with its handle for interest; w (may be NULL) becomes the waker of both
 * directions. 0, -EBADF (no fd), -ESHUTDOWN, or epoll_ctl's -errno. On failure r keeps its fd,
 * not registered: evio_reg_close() closes it, evio_reg_deregister() hands it back. */
EVIO_API int evio_reg_register(struct evio_registration *r, uint32_t interest,
                               const struct evio_waker *w);

/* evio_reg_init() then evio_reg_register(): r owns fd whatever the result (see above). */
EVIO_API int evio_reg_open(struct evio_registration *r, struct evio_handle *h, int fd,
                           uint32_t interest, const struct evio_waker *w);

EVIO_API bool evio_reg_is_registered(const struct evio_registration *r);

/* Snapshot of one direction's readiness into ev (may be NULL): 0 when some bit of the direction
 * (or ERROR) is set, -EAGAIN when none is, -ESHUTDOWN once the driver was shut down, -EBADF if r
 * is not registered. Wakers are those given at registration: nothing is installed here. */
EVIO_API int evio_reg_poll_ready(struct evio_registration *r, enum evio_direction dir,
                                 struct evio_ready_event *ev);

/* Clear what ev (a snapshot of r) saw, unless newer readiness arrived since: true if cleared.
 * For a caller that knows r is drained without having seen EAGAIN (a short read), or one whose
 * EAGAIN is ambiguous and so decides for itself (splice into a non-empty pipe). */
EVIO_API bool evio_reg_clear_readiness(struct evio_registration *r, struct evio_ready_event ev);

/* One non-blocking operation on an fd: >= 0 on success, -errno on failure (-EAGAIN: the fd has
 * nothing more for now, i.e. it is drained for the direction asked). */
typedef ssize_t evio_io_fn(int fd, void *arg);

/* Poll dir; if ready, call fn(r->fd, arg) and return its result. -EAGAIN from fn clears dir's
 * readiness with the snapshot taken before the call (readiness that arrived during fn is kept)
 * and is returned; any other result is returned as it is, readiness kept. -EINTR from fn calls
 * it again. Not ready: -EAGAIN without calling fn; -ESHUTDOWN, -EBADF as evio_reg_poll_ready().
 * ev (may be NULL) receives the snapshot, so the caller may clear on its own terms as well. */
EVIO_API ssize_t evio_reg_try_io(struct evio_registration *r, enum evio_direction dir,
                                 evio_io_fn *fn, void *arg, struct evio_ready_event *ev);

/* Make w (NULL: none) the waker of both directions, e.g. when r moves to a new owner. */
EVIO_API void evio_reg_set_waker(struct evio_registration *r, const struct evio_waker *w);

/* Deregister (without the epoll_ctl system call: the close does it) and close the fd; r becomes
 * EMPTY (fd -1) and may be given a new fd; an EMPTY (or zeroed) one just gets fd -1. r's fd must
 * not have been duplicated (dup, SCM_RIGHTS, fork): otherwise use evio_reg_deregister() and close
 * it. */
EVIO_API void evio_reg_close(struct evio_registration *r);

/* Deregister (epoll_ctl DEL: the fd stays open) and hand the fd back, or -1 if r had none; r
 * becomes EMPTY. No waker of r starts once this returned. DEL can only fail for an fd that is no
 * longer in the epoll set, so its error is not reported. */
EVIO_API int evio_reg_deregister(struct evio_registration *r);

#endif
