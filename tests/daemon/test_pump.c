/* cmocka tests of one forwarding direction (daemon/pump.c, splice.c, copy.c) over unix socket
 * pairs and a real driver: bytes arrive intact, EOF becomes shutdown(SHUT_WR), a reader that
 * does not read stops the pump with bounded data in flight, and pooled pipes/buffers go back. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <evproxy/driver.h>
#include <evproxy/registration.h>

#include "pool.h"
#include "pump.h"

#define BUF_SIZE 65536

/* Failure injection: splice(2) is wrapped (-Wl,--wrap=splice, tests/daemon/CMakeLists.txt). While
 * on, the first splice into a pipe moves at most in_cap bytes, the first out of one at most
 * out_cap, and splice into a pipe number eagain_at (from 1) fails with EAGAIN. */
struct inject {
        bool on;
        size_t in_cap, out_cap;
        int eagain_at;
        int in_calls, out_calls;
};
static struct inject inject;

ssize_t __real_splice(int fd_in, loff_t *off_in, int fd_out, loff_t *off_out, size_t len,
                      unsigned flags);
ssize_t __wrap_splice(int fd_in, loff_t *off_in, int fd_out, loff_t *off_out, size_t len,
                      unsigned flags);

static bool is_pipe(int fd)
{
        struct stat st;

        return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

ssize_t __wrap_splice(int fd_in, loff_t *off_in, int fd_out, loff_t *off_out, size_t len,
                      unsigned flags)
{
        if (inject.on && is_pipe(fd_out)) {
                if (++inject.in_calls == inject.eagain_at) {
                        errno = EAGAIN;
                        return -1;
                }
                if (inject.in_calls == 1 && len > inject.in_cap)
                        len = inject.in_cap;
        } else if (inject.on && is_pipe(fd_in)) {
                if (++inject.out_calls == 1 && len > inject.out_cap)
                        len = inject.out_cap;
        }
        return __real_splice(fd_in, off_in, fd_out, off_out, len, flags);
}

struct rig {
        struct evio_driver *d;
        int sv_src[2]; /* [0] the peer writes, [1] the pump reads (src owns it) */
        int sv_dst[2]; /* [0] the pump writes (dst owns it), [1] the peer reads */
        struct evio_registration src, dst;
        struct pipe_pool pipes;
        struct buf_pool bufs;
        struct pump p;
        struct pump_io x;
};

static void rig_init(struct rig *r, bool copy)
{
        memset(r, 0, sizeof(*r));
        assert_int_equal(evio_driver_new(&r->d, NULL), 0);
        assert_int_equal(
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, r->sv_src), 0);
        assert_int_equal(
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, r->sv_dst), 0);
        assert_int_equal(evio_reg_open(&r->src, evio_driver_handle(r->d), r->sv_src[1],
                                       EVIO_INTEREST_READABLE | EVIO_INTEREST_WRITABLE, NULL),
                         0);
        assert_int_equal(evio_reg_open(&r->dst, evio_driver_handle(r->d), r->sv_dst[0],
                                       EVIO_INTEREST_READABLE | EVIO_INTEREST_WRITABLE, NULL),
                         0);
        pipe_pool_init(&r->pipes, BUF_SIZE, 4);
        buf_pool_init(&r->bufs, BUF_SIZE, 4);
        r->p.copy = copy;
        r->x = (struct pump_io){.src = &r->src, .dst = &r->dst};
}

static void rig_free(struct rig *r)
{
        pump_release(&r->p, &r->pipes, &r->bufs);
        evio_reg_close(&r->src);
        evio_reg_close(&r->dst);
        close(r->sv_src[0]);
        close(r->sv_dst[1]);
        pipe_pool_destroy(&r->pipes);
        buf_pool_destroy(&r->bufs);
        evio_driver_free(r->d);
}

static uint8_t pattern(size_t i)
{
        return (uint8_t)((i * 2654435761u) >> 13);
}

static enum pump_status step(struct rig *r)
{
        evio_driver_turn(r->d, 10);
        return pump_run(&r->p, &r->x, &r->pipes, &r->bufs);
}

static void forward_all_from(bool copy, bool auto_splice)
{
        const size_t total = 4u << 20;
        static uint8_t in[4096], out[4096];
        size_t sent = 0, got = 0;
        enum pump_status st = PUMP_WAIT;
        bool eof = false;
        struct rig r;

        rig_init(&r, copy);
        r.p.auto_splice = auto_splice;
        for (int round = 0; round < 100000 && !eof; round++) {
                while (sent < total) {
                        size_t n = total - sent < sizeof(in) ? total - sent : sizeof(in);
                        ssize_t w;

                        for (size_t i = 0; i < n; i++)
                                in[i] = pattern(sent + i);
                        w = write(r.sv_src[0], in, n);
                        if (w <= 0)
                                break;
                        sent += (size_t)w;
                }
                if (sent == total)
                        shutdown(r.sv_src[0], SHUT_WR);
                st = step(&r);
                assert_true(st == PUMP_WAIT || st == PUMP_AGAIN || st == PUMP_DONE);
                for (;;) {
                        ssize_t n = read(r.sv_dst[1], out, sizeof(out));

                        if (n == 0) {
                                eof = true;
                                break;
                        }
                        if (n < 0) {
                                assert_int_equal(errno, EAGAIN);
                                break;
                        }
                        for (ssize_t i = 0; i < n; i++)
                                assert_int_equal(out[i], pattern(got + (size_t)i));
                        got += (size_t)n;
                }
        }
        assert_true(eof);
        assert_int_equal(got, total);
        assert_int_equal(r.p.bytes, total);
        assert_true(r.p.done);
        /* Nothing is held once the direction is done. */
        assert_null(r.p.pipe);
        assert_null(r.p.buf);
        if (auto_splice) /* 4 MiB is a bulk flow: it went over to splice */
                assert_false(r.p.copy);
        rig_free(&r);
}

static void forward_all(bool copy)
{
        forward_all_from(copy, false);
}

static void test_auto_splice_switches_on_bulk(void **state)
{
        forward_all_from(true, true);
}

static void test_auto_splice_keeps_small_messages_copied(void **state)
{
        static const char msg[] = "small request";
        char out[64];
        struct rig r;

        rig_init(&r, true);
        r.p.auto_splice = true;
        for (int i = 0; i < 10; i++) {
                assert_int_equal(write(r.sv_src[0], msg, sizeof(msg)), sizeof(msg));
                step(&r);
                assert_int_equal(read(r.sv_dst[1], out, sizeof(out)), sizeof(msg));
                assert_memory_equal(out, msg, sizeof(msg));
        }
        assert_true(r.p.copy);
        assert_true(r.p.auto_splice);
        assert_int_equal(r.p.bytes, 10 * sizeof(msg));
        rig_free(&r);
}

static void test_splice_forwards_and_half_closes(void **state)
{
        forward_all(false);
}

static void test_copy_forwards_and_half_closes(void **state)
{
        forward_all(true);
}

/* The reader never reads: the pump must stop (WAIT) with at most one pipe or buffer in flight. */
static void backpressure(bool copy)
{
        static uint8_t junk[65536];
        enum pump_status st = PUMP_AGAIN;
        struct rig r;

        rig_init(&r, copy);
        for (int round = 0; round < 1000; round++) {
                while (write(r.sv_src[0], junk, sizeof(junk)) > 0)
                        ;
                st = step(&r);
                if (st == PUMP_WAIT && r.p.pending > 0)
                        break;
        }
        assert_int_equal(st, PUMP_WAIT);
        assert_true(r.p.pending > 0);
        assert_true(r.p.pending <= (copy ? BUF_SIZE : r.p.pipe->cap));
        /* Running again without the reader making room changes nothing. */
        for (int i = 0; i < 10; i++)
                assert_int_equal(step(&r), PUMP_WAIT);
        rig_free(&r);
}

static void test_splice_backpressure(void **state)
{
        backpressure(false);
}

static void test_copy_backpressure(void **state)
{
        backpressure(true);
}

/* An EAGAIN from a splice into a pipe that holds data is ambiguous (src empty, or the pipe's
 * slots full): it must not clear src's read readiness, or what src still holds stalls there,
 * since a writer that has stopped sets no new readiness. Injected: the first read takes part of
 * src, the first write part of the pipe, and the second read says EAGAIN. */
static void test_splice_ambiguous_eagain_keeps_read_readiness(void **state)
{
        static uint8_t in[3000], out[4096];
        size_t got = 0;
        struct rig r;
        ssize_t n;

        rig_init(&r, false);
        for (size_t i = 0; i < sizeof(in); i++)
                in[i] = pattern(i);
        assert_int_equal(write(r.sv_src[0], in, sizeof(in)), sizeof(in));
        inject = (struct inject){.on = true, .in_cap = 1000, .out_cap = 500, .eagain_at = 2};
        for (int round = 0; round < 50 && got < sizeof(in); round++) {
                step(&r);
                while ((n = read(r.sv_dst[1], out + got, sizeof(out) - got)) > 0)
                        got += (size_t)n;
        }
        inject.on = false;
        assert_true(inject.in_calls >= 3); /* the EAGAIN was injected, and reading went on */
        assert_int_equal(got, sizeof(in));
        assert_memory_equal(out, in, sizeof(in));
        rig_free(&r);
}

/* An idle direction holds no pipe and no buffer. */
static void test_idle_holds_nothing(void **state)
{
        struct rig r;

        rig_init(&r, false);
        assert_int_equal(write(r.sv_src[0], "abc", 3), 3);
        for (int i = 0; i < 5; i++)
                step(&r);
        assert_int_equal(r.p.bytes, 3);
        assert_null(r.p.pipe);
        assert_int_equal(r.pipes.n_free, 1); /* went back to the pool */
        rig_free(&r);
}

/* The peer of dst is gone: the pump reports a write failure on dst. */
static void test_dst_gone_is_error(void **state)
{
        enum pump_status st = PUMP_WAIT;
        struct rig r;

        rig_init(&r, false);
        close(r.sv_dst[1]);
        r.sv_dst[1] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0); /* keep rig_free simple */
        assert_int_equal(write(r.sv_src[0], "abc", 3), 3);
        for (int i = 0; i < 5 && st != PUMP_ERR_DST; i++)
                st = step(&r);
        assert_int_equal(st, PUMP_ERR_DST);
        assert_true(r.x.err == -EPIPE || r.x.err == -ECONNRESET);
        rig_free(&r);
}

/* A shaped pump (shaper.c) reads no more than it is allowed, says PUMP_THROTTLED instead of
 * reading on, and keeps src's readiness, so the next grant reads on without a new event. */
static void shaped_reads_what_it_may(bool copy)
{
        static uint8_t data[20000], out[20000];
        struct rig r;
        size_t got = 0;

        rig_init(&r, copy);
        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = pattern(i);
        assert_int_equal(write(r.sv_src[0], data, sizeof(data)), sizeof(data));
        evio_driver_turn(r.d, 10);
        r.p.shaped = true;
        r.p.allow = 3000;
        assert_int_equal(pump_run(&r.p, &r.x, &r.pipes, &r.bufs), PUMP_THROTTLED);
        assert_int_equal(r.p.bytes, 3000);
        assert_int_equal(r.p.allow, 0);
        assert_int_equal(pump_run(&r.p, &r.x, &r.pipes, &r.bufs), PUMP_THROTTLED);
        assert_int_equal(r.p.bytes, 3000);
        r.p.allow = 100000; /* no driver turn in between: readiness was kept */
        assert_int_equal(pump_run(&r.p, &r.x, &r.pipes, &r.bufs), PUMP_WAIT);
        assert_int_equal(r.p.bytes, sizeof(data));
        assert_int_equal(r.p.allow, 100000 - (sizeof(data) - 3000));
        while (got < sizeof(out)) {
                ssize_t n = read(r.sv_dst[1], out + got, sizeof(out) - got);

                assert_true(n > 0);
                got += (size_t)n;
        }
        assert_memory_equal(out, data, sizeof(data));
        rig_free(&r);
}

static void test_splice_shaped(void **state)
{
        shaped_reads_what_it_may(false);
}

static void test_copy_shaped(void **state)
{
        shaped_reads_what_it_may(true);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_splice_forwards_and_half_closes),
            cmocka_unit_test(test_auto_splice_switches_on_bulk),
            cmocka_unit_test(test_auto_splice_keeps_small_messages_copied),
            cmocka_unit_test(test_copy_forwards_and_half_closes),
            cmocka_unit_test(test_splice_backpressure),
            cmocka_unit_test(test_copy_backpressure),
            cmocka_unit_test(test_splice_ambiguous_eagain_keeps_read_readiness),
            cmocka_unit_test(test_idle_holds_nothing),
            cmocka_unit_test(test_dst_gone_is_error),
            cmocka_unit_test(test_splice_shaped),
            cmocka_unit_test(test_copy_shaped),
        };

        signal(SIGPIPE, SIG_IGN); /* as evproxyd does: splice(2) has no MSG_NOSIGNAL */
        return cmocka_run_group_tests(tests, NULL, NULL);
}
