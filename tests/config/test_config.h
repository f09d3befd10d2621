/* Shared helpers of the config tests: a private temp directory per run, files written into it,
 * and loaders that assert success or the exact error (file, line, setting, message). */
#ifndef EVPROXY_TEST_CONFIG_H
#define EVPROXY_TEST_CONFIG_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "evproxy/config.h"

/* One route on one line, for tests about global settings. */
#define ONE_ROUTE                                                                                  \
        "routes = ( { name = \"web\"; listen = [ \"127.0.0.1:8080\" ]; upstreams = [ "             \
        "\"127.0.0.1:8081\" ]; } );\n"

void test_path(const char *name, char *buf, size_t len);
void test_write(const char *name, const char *text);
/* Writes text to evproxy.conf in the temp directory and loads it; the test fails if invalid. */
struct cfg *test_load_ok(const char *text);
/* Does loading text from evproxy.conf fail with exactly this? Prints the difference if not. */
bool test_error_is(const char *text, int line, const char *setting, const char *message);

int test_dir_setup(void **state);
int test_dir_teardown(void **state);

extern const struct CMUnitTest error_tests[];
extern const size_t n_error_tests;
extern const struct CMUnitTest addr_tests[];
extern const size_t n_addr_tests;
extern const struct CMUnitTest diff_tests[];
extern const size_t n_diff_tests;
extern const struct CMUnitTest admin_tests[];
extern const size_t n_admin_tests;
extern const struct CMUnitTest name_tests[];
extern const size_t n_name_tests;
extern const struct CMUnitTest policy_tests[];
extern const size_t n_policy_tests;
extern const struct CMUnitTest handover_tests[];
extern const size_t n_handover_tests;
extern const struct CMUnitTest match_tests[];
extern const size_t n_match_tests;

#endif
