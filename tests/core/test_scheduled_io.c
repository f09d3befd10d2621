/* ScheduledIo: tick-checked clears, sticky closed bits, the shutdown bit, wide ticks, wakers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

static struct evio_scheduled_io *new_io(void)
{
        struct evio_scheduled_io *io = malloc(sizeof(*io));
        assert_non_null(io);
        evio__sio_init(io, -1, EVIO_INTEREST_READABLE | EVIO_INTEREST_WRITABLE, NULL);
        return io;
}

static void free_io(struct evio_scheduled_io *io)
{
        free(io);
}

static void test_readiness_after_snapshot_survives_clear(void **state)
{
        struct evio_scheduled_io *io = new_io();
        evio__sio_set_readiness(io, EVIO_READY_READABLE);
        struct evio_ready_event ev = evio_sio_ready(io, EVIO_INTEREST_READABLE);
        assert_int_equal(ev.ready, EVIO_READY_READABLE);
        /* The driver sets readiness again while the consumer does its I/O. */
        evio__sio_set_readiness(io, EVIO_READY_READABLE);
        assert_false(evio_sio_clear_readiness(io, ev));
        assert_int_equal(evio_sio_ready(io, EVIO_INTEREST_READABLE).ready, EVIO_READY_READABLE);
        free_io(io);
}

static void test_clear_removes_only_snapshot_bits(void **state)
{
        struct evio_scheduled_io *io = new_io();
        evio__sio_set_readiness(io, EVIO_READY_READABLE | EVIO_READY_WRITABLE);
        struct evio_ready_event ev = evio_sio_ready(io, EVIO_INTEREST_READABLE);
        assert_int_equal(ev.ready, EVIO_READY_READABLE);
        assert_true(evio_sio_clear_readiness(io, ev));
        assert_int_equal(evio_sio_ready(io, EVIO_INTEREST_READABLE).ready, 0);
        assert_int_equal(evio_sio_ready(io, EVIO_INTEREST_WRITABLE).ready, EVIO_READY_WRITABLE);
        free_io(io);
}

static void test_closed_bits_are_sticky(void **state)
{
        struct evio_scheduled_io *io = new_io();
        evio__sio_set_readiness(io, EVIO_READY_READABLE | EVIO_READY_READ_CLOSED |
                                        EVIO_READY_WRITE_CLOSED);
        struct evio_ready_event ev =
            evio_sio_ready(io, EVIO_INTEREST_READABLE | EVIO_INTEREST_WRITABLE);
        assert_true(evio_sio_clear_readiness(io, ev));
        ev = evio_sio_ready(io, EVIO_INTEREST_READABLE | EVIO_INTEREST_WRITABLE);
        assert_int_equal(ev.ready, EVIO_READY_READ_CLOSED | EVIO_READY_WRITE_CLOSED);
        free_io(io);
}

static void stale_after(unsigned events)
{
        struct evio_scheduled_io *io = new_io();
        evio__sio_set_readiness(io, EVIO_READY_READABLE);
        struct evio_ready_event stale = evio_sio_ready(io, EVIO_INTEREST_READABLE);
        for (unsigned i = 0; i < events; i++)
                evio__sio_set_readiness(io, EVIO_READY_READABLE);
        /* A truncated (8- or 16-bit) tick would match again here and wipe fresh readiness. */
        assert_false(evio_sio_clear_readiness(io, stale));
        assert_int_equal(evio_sio_ready(io, EVIO_INTEREST_READABLE).ready, EVIO_READY_READABLE);
        assert_int_equal(evio__sio_tick(io), stale.tick + events);
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
        struct evio_scheduled_io *io = new_io();
        evio__sio_set_readiness(io, EVIO_READY_READABLE);
        evio__sio_set_shutdown(io);
        struct evio_ready_event ev = evio_sio_ready(io, EVIO_INTEREST_READABLE);
        assert_true(ev.is_shutdown);
        assert_true(evio_sio_clear_readiness(io, ev));
        assert_true(evio_sio_ready(io, EVIO_INTEREST_READABLE).is_shutdown);
        assert_int_equal(evio_sio_poll_ready(io, EVIO_DIRECTION_READ, NULL, &ev), -ESHUTDOWN);
        /* Setting readiness later keeps it too. */
        evio__sio_set_readiness(io, EVIO_READY_WRITABLE);
        assert_true(evio_sio_ready(io, EVIO_INTEREST_WRITABLE).is_shutdown);
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
        struct evio_scheduled_io *io = new_io();
        struct wake_log log = {0};
        struct evio_waker w = {record_wake, &log};
        struct evio_ready_event ev;

        assert_int_equal(evio_sio_poll_ready(io, EVIO_DIRECTION_READ, &w, &ev), -EAGAIN);
        evio__sio_wake(io, evio__sio_set_readiness(io, EVIO_READY_WRITABLE));
        assert_int_equal(log.calls, 0); /* write readiness does not wake the reader */
        evio__sio_wake(io, evio__sio_set_readiness(io, EVIO_READY_READABLE));
        assert_int_equal(log.calls, 1);
        assert_true(log.ready & EVIO_READY_READABLE);
        assert_int_equal(evio_sio_poll_ready(io, EVIO_DIRECTION_READ, NULL, &ev), 0);
        assert_true(ev.ready & EVIO_READY_READABLE);
        free_io(io);
}

static void test_same_waker_both_directions_called_once(void **state)
{
        struct evio_scheduled_io *io = new_io();
        struct wake_log log = {0};
        struct evio_waker w = {record_wake, &log};

        evio_sio_set_waker(io, EVIO_DIRECTION_READ, &w);
        evio_sio_set_waker(io, EVIO_DIRECTION_WRITE, &w);
        evio__sio_wake(io, evio__sio_set_readiness(io, EVIO_READY_READABLE | EVIO_READY_WRITABLE));
        assert_int_equal(log.calls, 1);
        assert_int_equal(log.ready, EVIO_READY_READABLE | EVIO_READY_WRITABLE);
        free_io(io);
}

static void test_released_record_has_no_wakers(void **state)
{
        struct evio_scheduled_io *io = new_io();
        struct wake_log log = {0};
        struct evio_waker w = {record_wake, &log};

        evio_sio_set_waker(io, EVIO_DIRECTION_READ, &w);
        evio__sio_release(io, true);
        evio_sio_set_waker(io, EVIO_DIRECTION_READ, &w); /* too late: stays released */
        evio__sio_wake(io, evio__sio_set_readiness(io, EVIO_READY_READABLE));
        assert_int_equal(log.calls, 0);
        free_io(io);
}

/* Issue 12 item 4: a direction's poll reports that direction's bits only (Tokio's masks):
 * READ = READABLE|READ_CLOSED, WRITE = WRITABLE|WRITE_CLOSED. ERROR alone satisfies neither;
 * an error shows on the write side as WRITE_CLOSED (the epoll mapping) and is read with
 * evio_sio_ready(EVIO_INTEREST_ERROR). */
static void test_error_is_not_in_direction_masks(void **state)
{
        struct evio_scheduled_io *io = new_io();
        struct evio_ready_event ev;

        evio__sio_set_readiness(io, EVIO_READY_ERROR);
        assert_int_equal(evio_sio_poll_ready(io, EVIO_DIRECTION_READ, NULL, &ev), -EAGAIN);
        assert_int_equal(evio_sio_poll_ready(io, EVIO_DIRECTION_WRITE, NULL, &ev), -EAGAIN);
        assert_int_equal(evio_sio_ready(io, EVIO_INTEREST_ERROR).ready, EVIO_READY_ERROR);
        evio__sio_set_readiness(io, EVIO_READY_WRITE_CLOSED);
        assert_int_equal(evio_sio_poll_ready(io, EVIO_DIRECTION_WRITE, NULL, &ev), 0);
        assert_int_equal(ev.ready, EVIO_READY_WRITE_CLOSED);
        assert_int_equal(evio_sio_poll_ready(io, EVIO_DIRECTION_READ, NULL, &ev), -EAGAIN);
        evio__sio_set_readiness(io, EVIO_READY_READABLE);
        assert_int_equal(evio_sio_poll_ready(io, EVIO_DIRECTION_READ, NULL, &ev), 0);
        assert_int_equal(ev.ready, EVIO_READY_READABLE);
        /* Clearing a direction's snapshot leaves the error for whoever asks for it. */
        assert_true(evio_sio_clear_readiness(io, ev));
        assert_int_equal(evio_sio_ready(io, EVIO_INTEREST_ERROR).ready, EVIO_READY_ERROR);
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
            cmocka_unit_test(test_error_is_not_in_direction_masks),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
