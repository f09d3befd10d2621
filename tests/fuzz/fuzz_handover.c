/* libFuzzer target over the handover record parser (daemon/handover_wire.c). The input's first
 * two bytes give the fd count and the rest is a record body behind a header made valid for it
 * (right magic, length and checksum), so the fuzzer reaches the semantic checks instead of
 * stopping at the checksum; the raw input is parsed too. A record that parses must encode again
 * into one that parses to the same counts, and every fd index must be below the fd count. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handover_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct ho_state *st, size_t n_fds)
{
        struct ho_state again;
        unsigned char *buf;
        size_t len, n;
        int *fds;

        for (size_t i = 0; i < st->n_cs; i++)
                if (st->cs[i].cfd < 0 || (size_t)st->cs[i].cfd >= n_fds ||
                    (st->cs[i].ufd >= 0 && (size_t)st->cs[i].ufd >= n_fds))
                        abort();
        if (ho_encode(st, NULL, &buf, &len, &fds, &n) != 0 || n != n_fds)
                abort();
        if (ho_decode(buf, len, n, &again) != 0 || again.n_cs != st->n_cs ||
            again.n_ls != st->n_ls || ho_state_pending(&again) != ho_state_pending(st))
                abort();
        ho_state_free(&again);
        free(buf);
        free(fds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct ho_state st;
        size_t n_fds, body;
        unsigned char *buf;

        if (ho_decode(data, size, 4, &st) == 0) {
                check(&st, 4);
                ho_state_free(&st);
        }
        if (size < 10)
                return 0;
        n_fds = (size_t)data[0] | (size_t)(data[1] & 0x3) << 8;
        uint32_t n_ls = data[2] % 4, n_cs = data[3] % 8;
        body = size - 4;
        buf = malloc(HO_HEADER_SIZE + body);
        if (!buf)
                return 0;
        struct ho_header h = {.version = HO_VERSION,
                              .n_fds = (uint32_t)n_fds,
                              .n_ls = n_ls,
                              .n_cs = n_cs,
                              .body_len = body}; /* sum: ho_resign() below */
        memcpy(h.magic, HO_MAGIC, 8);
        memcpy(buf, &h, sizeof(h));
        memcpy(buf + HO_HEADER_SIZE, data + 4, body);
        ho_resign(buf, HO_HEADER_SIZE + body);
        if (ho_decode(buf, HO_HEADER_SIZE + body, n_fds, &st) == 0) {
                check(&st, n_fds);
                ho_state_free(&st);
        }
        free(buf);
        return 0;
}
