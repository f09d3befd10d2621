/* libFuzzer target over the admin socket's request parser (daemon/admin_proto.c): any input
 * either parses, and then formats back to a line that parses to the same request, or fails
 * with -EINVAL and a non-empty message; nothing else, and never a crash or a leak. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct admin_request req, again;
        char err[256], *line;
        int r;

        err[0] = '\0';
        r = admin_request_parse((const char *)data, size, &req, err, sizeof(err));
        if (r == -ENOMEM)
                return 0;
        if (r < 0) {
                if (r != -EINVAL || !err[0] || !memchr(err, '\0', sizeof(err)))
                        abort();
                return 0;
        }
        line = admin_request_format(&req);
        if (!line)
                return 0;
        if (admin_request_parse(line, strlen(line) - 1, &again, err, sizeof(err)) != 0 ||
            memcmp(&req, &again, sizeof(req)) != 0)
                abort();
        free(line);
        return 0;
}
