/* The handover socket's messages (handover.h): a fixed 16-byte header, optionally with fds
 * (SCM_RIGHTS, at most HO_FDS_PER_MSG), every wait bounded by a timeout; and the memfd that
 * carries the record's bytes. Used by handover.c on both sides of the exchange. */
#ifndef EVPROXYD_HANDOVER_MSG_H
#define EVPROXYD_HANDOVER_MSG_H

#include <stddef.h>
#include <stdint.h>

#define HO_FDS_PER_MSG 253 /* SCM_MAX_FD */

enum ho_msg_type {
        HO_MSG_TAKE = 1,   /* new -> old: hand over, please */
        HO_MSG_STATE = 2,  /* old -> new: a = fd count, b = connections; the memfd */
        HO_MSG_FDS = 3,    /* old -> new: a = index of the first fd, b = fds attached */
        HO_MSG_OK = 4,     /* new -> old: checked and ready, nothing touched */
        HO_MSG_COMMIT = 5, /* old -> new: they are yours, I am leaving */
        HO_MSG_FAIL = 6,   /* either way: no handover (a = errno) */
};

struct ho_msg {
        uint32_t magic, type, a, b;
};

/* 0, or -errno (-ETIMEDOUT). */
int ho_msg_send(int fd, uint32_t type, uint32_t a, uint32_t b, const int *fds, size_t n_fds,
                int timeout_ms);
/* One message and up to max fds (*n_fds, CLOEXEC); more than max, a truncated message or a bad
 * magic: -EBADMSG (fds received are closed). EOF: -ECONNRESET. */
int ho_msg_recv(int fd, struct ho_msg *m, int *fds, size_t max, size_t *n_fds, int timeout_ms);
/* A sealed memfd holding buf: fd or -errno. */
int ho_memfd_write(const unsigned char *buf, size_t len);
/* The whole of a memfd (at most max bytes) into *buf (malloc'ed): 0 or -errno. */
int ho_memfd_read(int fd, size_t max, unsigned char **buf, size_t *len);

#endif
