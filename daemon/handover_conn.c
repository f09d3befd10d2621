/* One direction of a connection in and out of a handover record (handover_wire.h): the bytes a
 * pump holds in flight leave with the record, whether they sat in a copy buffer or in a splice
 * pipe (read back out of it: the pipe stays here), and come back as a copy buffer of the new
 * process's own, written before anything more is read. The pump's own mechanics (pump.h) then
 * carry on: a splice-mode direction moves back to splice at its next bulk read. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "handover.h"
#include "handover_wire.h"
#include "pump.h"

int ho_dir_alloc(struct ho_dir *d, uint32_t len)
{
        d->len = len;
        d->data = NULL;
        if (len == 0)
                return 0;
        d->data = malloc(len);
        return d->data ? 0 : -ENOMEM;
}

/* All len bytes the pipe holds: they are there already, so a short read is an error. */
static int read_pipe(int fd, unsigned char *out, size_t len)
{
        size_t got = 0;

        while (got < len) {
                ssize_t n = read(fd, out + got, len - got);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : -EIO;
                got += (size_t)n;
        }
        return 0;
}

int ho_pump_export(struct pump *p, struct ho_dir *d)
{
        int r = 0;

        d->eof = p->eof;
        d->done = p->done;
        d->bytes = p->bytes;
        if (p->pending == 0)
                return 0;
        if (p->pipe)
                r = read_pipe(p->pipe->rfd, d->data, p->pending);
        else if (p->buf)
                memcpy(d->data, p->buf->data + p->off, p->pending);
        else
                r = -EIO; /* pending bytes nowhere: cannot be */
        if (r < 0)
                return r;
        p->pending = 0; /* the pipe is empty now: it goes back to the pool */
        p->off = 0;
        return 0;
}

int ho_pump_import(struct pump *p, struct ho_dir *d, size_t buf_size, bool splice)
{
        size_t size = d->len > buf_size ? d->len : buf_size;

        p->eof = d->eof;
        p->done = d->done;
        p->bytes = d->bytes;
        p->copy = true;
        p->auto_splice = splice;
        if (d->len == 0)
                return 0;
        /* At least a pool buffer's size: the pool may keep it for reuse at its own size. */
        p->buf = malloc(sizeof(struct buf) + size);
        if (!p->buf)
                return -ENOMEM;
        p->buf->next = NULL;
        memcpy(p->buf->data, d->data, d->len);
        p->pending = d->len;
        p->off = 0;
        return 0;
}
