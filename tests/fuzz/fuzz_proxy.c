/* libFuzzer target over the PROXY protocol header parser: any input must give a length within
 * the input, 0 (need more) or an error; a parsed header must re-parse from any larger buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct pp_header h;
        int n = pp_parse(data, size, &h);

        if (n > 0) {
                if ((size_t)n > size || (size_t)n > PP_MAX_LEN || h.len != (size_t)n)
                        abort();
                if (!h.local && (h.src.ss_family != h.dst.ss_family))
                        abort();
                /* Same header, fewer bytes after it: same answer. */
                struct pp_header again;
                if (pp_parse(data, (size_t)n, &again) != n)
                        abort();
        }
        return 0;
}
