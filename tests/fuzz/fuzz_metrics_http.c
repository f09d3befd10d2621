/* libFuzzer target over the metrics endpoint's request parser: any input gives a head length
 * within the input and the limit, 0 (need more) or -EMSGSIZE, a known status, and the same
 * answer (status, and target of a GET) when parsed again from exactly the head it reported. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "metrics_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct mhttp_request req, again;
        int n = mhttp_parse((const char *)data, size, &req);

        if (n == -EMSGSIZE) {
                if (size < MHTTP_MAX_REQUEST)
                        abort();
                return 0;
        }
        if (n < 0 || (size_t)n > size || n > MHTTP_MAX_REQUEST)
                abort();
        if (n == 0)
                return 0;
        if (req.status != 200 && req.status != 400 && req.status != 404 && req.status != 405 &&
            req.status != 505)
                abort();
        if (mhttp_parse((const char *)data, (size_t)n, &again) != n || again.status != req.status)
                abort();
        if (req.status == 200 && (again.target != req.target || req.target > MHTTP_STATUS_JSON))
                abort();
        return 0;
}
