/* Ready / Interest / Direction: epoll flag mapping (HUP, RDHUP, ERR) and masks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/epoll.h>

#include <evproxy/ready.h>

static void test_readable_only_is_not_closed(void **state)
{
        assert_int_equal(ready_from_epoll(EPOLLIN), READY_READABLE);
        assert_int_equal(ready_from_epoll(EPOLLOUT), READY_WRITABLE);
}

static void test_rdhup_is_read_closed(void **state)
{
        uint32_t r = ready_from_epoll(EPOLLIN | EPOLLRDHUP);
        assert_int_equal(r, READY_READABLE | READY_READ_CLOSED);
        assert_false(r & READY_WRITE_CLOSED);
}

static void test_hup_closes_both(void **state)
{
        uint32_t r = ready_from_epoll(EPOLLHUP);
        assert_true(r & READY_READ_CLOSED);
        assert_true(r & READY_WRITE_CLOSED);
        assert_false(r & READY_ERROR);
}

static void test_err_maps(void **state)
{
        assert_int_equal(ready_from_epoll(EPOLLERR), READY_ERROR | READY_WRITE_CLOSED);
        assert_int_equal(ready_from_epoll(EPOLLOUT | EPOLLERR),
                         READY_WRITABLE | READY_WRITE_CLOSED | READY_ERROR);
        assert_int_equal(ready_from_epoll(EPOLLIN | EPOLLERR), READY_READABLE | READY_ERROR);
}

static void test_pri(void **state)
{
        assert_int_equal(ready_from_epoll(EPOLLPRI), READY_READABLE | READY_PRIORITY);
}

static void test_interest_and_direction(void **state)
{
        assert_int_equal(ready_from_interest(INTEREST_READABLE),
                         READY_READABLE | READY_READ_CLOSED);
        assert_int_equal(ready_from_interest(INTEREST_WRITABLE),
                         READY_WRITABLE | READY_WRITE_CLOSED);
        assert_int_equal(direction_mask(DIRECTION_READ), READY_READABLE | READY_READ_CLOSED);
        assert_int_equal(direction_mask(DIRECTION_WRITE), READY_WRITABLE | READY_WRITE_CLOSED);
        uint32_t ev = interest_to_epoll(INTEREST_READABLE | INTEREST_WRITABLE);
        assert_true(ev & EPOLLET);
        assert_true(ev & EPOLLRDHUP);
        assert_true(ev & EPOLLIN);
        assert_true(ev & EPOLLOUT);
        assert_false(interest_to_epoll(INTEREST_WRITABLE) & EPOLLIN);
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
