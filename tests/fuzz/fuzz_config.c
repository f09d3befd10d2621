/* libFuzzer target for the config loader: arbitrary bytes through cfg_load_string(), which
 * must return 0 or an error (never crash, never leak), and whose error must format. Inputs
 * with @include are skipped: they would read arbitrary files (/dev/zero, ...) from the host. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "evproxy/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct cfg_error err;
        struct cfg *c = NULL;
        char *text, msg[5000];

        if (size > 65536)
                return 0;
        text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        if (strstr(text, "@include")) {
                free(text);
                return 0;
        }
        if (cfg_load_string(text, "fuzz.conf", &c, &err) == 0) {
                struct cfg_diff d;

                if (cfg_diff_listeners(c, c, &d) == 0) {
                        if (d.n_added || d.n_removed)
                                abort(); /* a config diffed with itself keeps everything */
                        cfg_diff_free(&d);
                }
                cfg_free(c);
        } else {
                if (c)
                        abort();
                cfg_error_format(&err, msg, sizeof(msg));
        }
        free(text);
        return 0;
}
