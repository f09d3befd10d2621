/* libFuzzer target for upstream strings (config/src/resolver.c, cfg_upstream_parse): any bytes
 * give 0 or -EINVAL, never a crash; what parses as a name obeys what the daemon relies on (a
 * host of 1..253 characters without '/', ' ' or ':', a port for a name, none for SRV). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "evproxy/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct cfg_upstream u;
        char text[512], msg[200];
        size_t n;
        int r;

        if (size >= sizeof(text))
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        memset(&u, 0xa5, sizeof(u));
        r = cfg_upstream_parse(text, &u, msg, sizeof(msg));
        if (r < 0) {
                if (r != -EINVAL || !memchr(msg, '\0', sizeof(msg)) || u.kind != CFG_UPSTREAM_ADDR)
                        abort();
                return 0;
        }
        if (r != 0 || strcmp(u.addr.text, text) != 0)
                abort();
        if (u.kind == CFG_UPSTREAM_ADDR)
                return 0;
        n = strnlen(u.host, sizeof(u.host));
        if (n == 0 || n > 254 || n == sizeof(u.host) || strpbrk(u.host, "/ :@[]*"))
                abort();
        if ((u.kind == CFG_UPSTREAM_NAME) != (u.port != 0))
                abort();
        return 0;
}
