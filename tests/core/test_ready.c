/* Ready / Interest / Direction: epoll flag mapping (HUP, RDHUP, ERR) and masks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/epoll.h>

#include "internal.h"

static void test_readable_only_is_not_closed(void **state)
{
        assert_int_equal(evio__ready_from_epoll(EPOLLIN), EVIO_READY_READABLE);
        assert_int_equal(evio__ready_from_epoll(EPOLLOUT), EVIO_READY_WRITABLE);
}

static void test_rdhup_is_read_closed(void **state)
{
        uint32_t r = evio__ready_from_epoll(EPOLLIN | EPOLLRDHUP);
        assert_int_equal(r, EVIO_READY_READABLE | EVIO_READY_READ_CLOSED);
        assert_false(r & EVIO_READY_WRITE_CLOSED);
}

static void test_hup_closes_both(void **state)
{
        uint32_t r = evio__ready_from_epoll(EPOLLHUP);
        assert_true(r & EVIO_READY_READ_CLOSED);
        assert_true(r & EVIO_READY_WRITE_CLOSED);
        assert_false(r & EVIO_READY_ERROR);
}

static void test_err_maps(void **state)
{
        assert_int_equal(evio__ready_from_epoll(EPOLLERR),
                         EVIO_READY_ERROR | EVIO_READY_WRITE_CLOSED);
        assert_int_equal(evio__ready_from_epoll(EPOLLOUT | EPOLLERR),
                         EVIO_READY_WRITABLE | EVIO_READY_WRITE_CLOSED | EVIO_READY_ERROR);
        assert_int_equal(evio__ready_from_epoll(EPOLLIN | EPOLLERR),
                         EVIO_READY_READABLE | EVIO_READY_ERROR);
}

static void test_pri(void **state)
{
        assert_int_equal(evio__ready_from_epoll(EPOLLPRI),
                         EVIO_READY_READABLE | EVIO_READY_PRIORITY);
}

static void test_interest_and_direction(void **state)
{
        assert_int_equal(evio_ready_from_interest(EVIO_INTEREST_READABLE),
                         EVIO_READY_READABLE | EVIO_READY_READ_CLOSED);
        assert_int_equal(evio_ready_from_interest(EVIO_INTEREST_WRITABLE),
                         EVIO_READY_WRITABLE | EVIO_READY_WRITE_CLOSED);
        assert_int_equal(evio_direction_mask(EVIO_DIRECTION_READ),
                         EVIO_READY_READABLE | EVIO_READY_READ_CLOSED);
        assert_int_equal(evio_direction_mask(EVIO_DIRECTION_WRITE),
                         EVIO_READY_WRITABLE | EVIO_READY_WRITE_CLOSED);
        uint32_t ev = evio__interest_to_epoll(EVIO_INTEREST_READABLE | EVIO_INTEREST_WRITABLE);
        assert_true(ev & EPOLLET);
        assert_true(ev & EPOLLRDHUP);
        assert_true(ev & EPOLLIN);
        assert_true(ev & EPOLLOUT);
        assert_false(evio__interest_to_epoll(EVIO_INTEREST_WRITABLE) & EPOLLIN);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_readable_only_is_not_closed),
            cmocka_unit_test(test_rdhup_is_read_closed),
            cmocka_unit_test(test_hup_closes_both),
            cmocka_unit_test(test_err_maps),
            cmocka_unit_test(test_pri),
            cmocka_unit_test(test_interest_and_direction),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
