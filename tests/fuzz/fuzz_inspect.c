/* libFuzzer target over the first-bytes inspector (daemon/inspect.c): any input gives an
 * answer without reading past it (ASan), with a cap of its own size or less; a decided answer
 * never changes when more bytes follow, and a TLS answer carries a clean, lower-case SNI. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inspect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_sni(const struct inspect_result *r)
{
        size_t n = strnlen(r->sni, sizeof(r->sni));

        if (n > INSPECT_SNI_MAX || (n > 0 && r->sni[n - 1] == '.'))
                abort();
        for (size_t i = 0; i < n; i++)
                if (r->sni[i] >= 'A' && r->sni[i] <= 'Z')
                        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct inspect_result r, half;
        /* An exact-size copy, so a read one past the end is a heap overflow ASan reports. */
        uint8_t *copy = malloc(size ? size : 1);
        size_t cap = size < 64 ? 16384 : size;
        enum inspect_kind k;

        if (!copy)
                return 0;
        memcpy(copy, data, size);
        k = inspect_parse(copy, size, cap, &r);
        if (k == INSPECT_TLS)
                check_sni(&r);
        if (k == INSPECT_NEED_MORE && r.need <= size)
                abort();
        if (k != INSPECT_NEED_MORE && size > 0) {
                /* Fewer bytes: the same answer or "need more" (the answer is a prefix's). */
                enum inspect_kind k2 = inspect_parse(copy, size / 2, cap, &half);

                if (k2 != k && k2 != INSPECT_NEED_MORE && k != INSPECT_BAD)
                        abort();
        }
        free(copy);
        return 0;
}
