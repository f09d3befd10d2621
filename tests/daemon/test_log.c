/* The journal output's detection (log_journal.h): $JOURNAL_STREAM is "DEV:INO" in decimal and
 * must name exactly the file stderr is; anything else (malformed, other numbers, overflow)
 * keeps today's stderr output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <sys/stat.h>

#include "log_journal.h"

static void test_stream_matches(void **state)
{
        struct stat st;

        memset(&st, 0, sizeof(st));
        st.st_dev = 2049;
        st.st_ino = 123456789;
        assert_true(log_journal_stream_matches("2049:123456789", &st));
        assert_false(log_journal_stream_matches(NULL, &st));
        static const char *const no[] = {
            "",
            "2049",
            "2049:",
            ":123456789",
            "2049:1234",
            "2048:123456789",
            "2049:123456789x",
            "2049:123456789:1",
            " 2049:123456789",
            "2049: 123456789",
            "+2049:123456789",
            "2049:-123456789",
            "-2049:123456789",
            "2049::123456789",
            "18446744073709551616:123456789", /* 2^64: strtoull says ERANGE */
            "2049:0x75bcd15",
        };
        for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
                if (log_journal_stream_matches(no[i], &st))
                        fail_msg("\"%s\" matched", no[i]);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_stream_matches),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
