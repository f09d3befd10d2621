/* ScheduledIo: tick-checked clears, sticky closed bits, the shutdown bit, wide ticks, wakers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

static struct scheduled_io *new_io(void)
{
        struct scheduled_io *io = malloc(sizeof(*io));
        assert_non_null(io);
        sio_init(io, -1, INTEREST_READABLE | INTEREST_WRITABLE, NULL);
        return io;
}

static void free_io(struct scheduled_io *io)
{
        free(io);
}

static void test_readiness_after_snapshot_survives_clear(void **state)
{
        struct scheduled_io *io = new_io();
        sio_set_readiness(io, READY_READABLE);
        struct ready_event ev = sio_ready(io, INTEREST_READABLE);
        assert_int_equal(ev.ready, READY_READABLE);
        /* The driver sets readiness again while the consumer does its I/O. */
        sio_set_readiness(io, READY_READABLE);
        assert_false(sio_clear_readiness(io, ev));
        assert_int_equal(sio_ready(io, INTEREST_READABLE).ready, READY_READABLE);
        free_io(io);
}

static void test_clear_removes_only_snapshot_bits(void **state)
{
        struct scheduled_io *io = new_io();
        sio_set_readiness(io, READY_READABLE | READY_WRITABLE);
        struct ready_event ev = sio_ready(io, INTEREST_READABLE);
        assert_int_equal(ev.ready, READY_READABLE);
        assert_true(sio_clear_readiness(io, ev));
        assert_int_equal(sio_ready(io, INTEREST_READABLE).ready, 0);
        assert_int_equal(sio_ready(io, INTEREST_WRITABLE).ready, READY_WRITABLE);
        free_io(io);
}

static void test_closed_bits_are_sticky(void **state)
{
        struct scheduled_io *io = new_io();
        sio_set_readiness(io, READY_READABLE | READY_READ_CLOSED | READY_WRITE_CLOSED);
        struct ready_event ev = sio_ready(io, INTEREST_READABLE | INTEREST_WRITABLE);
        assert_true(sio_clear_readiness(io, ev));
        ev = sio_ready(io, INTEREST_READABLE | INTEREST_WRITABLE);
        assert_int_equal(ev.ready, READY_READ_CLOSED | READY_WRITE_CLOSED);
        free_io(io);
}

static void stale_after(unsigned events)
{
        struct scheduled_io *io = new_io();
        sio_set_readiness(io, READY_READABLE);
        struct ready_event stale = sio_ready(io, INTEREST_READABLE);
        for (unsigned i = 0; i < events; i++)
                sio_set_readiness(io, READY_READABLE);
        /* A truncated (8- or 16-bit) tick would match again here and wipe fresh readiness. */
        assert_false(sio_clear_readiness(io, stale));
        assert_int_equal(sio_ready(io, INTEREST_READABLE).ready, READY_READABLE);
        assert_int_equal(sio_tick(io), stale.tick + events);
        free_io(io);
}

static void test_stale_snapshot_after_256(void **state)
{
        stale_after(256);
        stale_after(257);
        stale_after(512);
}

static void test_stale_snapshot_after_65536(void **state)
{
        stale_after(65536);
        stale_after(65537);
        stale_after(1u << 17);
}

static void test_shutdown_bit_survives_clear(void **state)
{
        struct scheduled_io *io = new_io();
        sio_set_readiness(io, READY_READABLE);
        sio_set_shutdown(io);
        struct ready_event ev = sio_ready(io, INTEREST_READABLE);
        assert_true(ev.is_shutdown);
        assert_true(sio_clear_readiness(io, ev));
        assert_true(sio_ready(io, INTEREST_READABLE).is_shutdown);
        assert_int_equal(sio_poll_ready(io, DIRECTION_READ, NULL, &ev), -ESHUTDOWN);
        /* Setting readiness later keeps it too. */
        sio_set_readiness(io, READY_WRITABLE);
        assert_true(sio_ready(io, INTEREST_WRITABLE).is_shutdown);
        free_io(io);
}

struct wake_log {
        int calls;
        uint32_t ready;
};

static void record_wake(void *arg, uint32_t ready)
{
        struct wake_log *log = arg;
        log->calls++;
        log->ready |= ready;
}

static void test_poll_ready_installs_waker(void **state)
{
        struct scheduled_io *io = new_io();
        struct wake_log log = {0};
        struct waker w = {record_wake, &log};
        struct ready_event ev;

        assert_int_equal(sio_poll_ready(io, DIRECTION_READ, &w, &ev), -EAGAIN);
        sio_wake(io, sio_set_readiness(io, READY_WRITABLE));
        assert_int_equal(log.calls, 0); /* write readiness does not wake the reader */
        sio_wake(io, sio_set_readiness(io, READY_READABLE));
        assert_int_equal(log.calls, 1);
        assert_true(log.ready & READY_READABLE);
        assert_int_equal(sio_poll_ready(io, DIRECTION_READ, NULL, &ev), 0);
        assert_true(ev.ready & READY_READABLE);
        free_io(io);
}

static void test_same_waker_both_directions_called_once(void **state)
{
        struct scheduled_io *io = new_io();
        struct wake_log log = {0};
        struct waker w = {record_wake, &log};

        sio_set_waker(io, DIRECTION_READ, &w);
        sio_set_waker(io, DIRECTION_WRITE, &w);
        sio_wake(io, sio_set_readiness(io, READY_READABLE | READY_WRITABLE));
        assert_int_equal(log.calls, 1);
        assert_int_equal(log.ready, READY_READABLE | READY_WRITABLE);
        free_io(io);
}

static void test_released_record_has_no_wakers(void **state)
{
        struct scheduled_io *io = new_io();
        struct wake_log log = {0};
        struct waker w = {record_wake, &log};

        sio_set_waker(io, DIRECTION_READ, &w);
        sio_release(io);
        sio_set_waker(io, DIRECTION_READ, &w); /* too late: stays released */
        sio_wake(io, sio_set_readiness(io, READY_READABLE));
        assert_int_equal(log.calls, 0);
        free_io(io);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_readiness_after_snapshot_survives_clear),
            cmocka_unit_test(test_clear_removes_only_snapshot_bits),
            cmocka_unit_test(test_closed_bits_are_sticky),
            cmocka_unit_test(test_stale_snapshot_after_256),
            cmocka_unit_test(test_stale_snapshot_after_65536),
            cmocka_unit_test(test_shutdown_bit_survives_clear),
            cmocka_unit_test(test_poll_ready_installs_waker),
            cmocka_unit_test(test_same_waker_both_directions_called_once),
            cmocka_unit_test(test_released_record_has_no_wakers),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
