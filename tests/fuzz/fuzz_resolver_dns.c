/* libFuzzer target over the resolver's DNS answer TTL reader (daemon/resolver_dns.c): any input
 * gives -EBADMSG or a count no larger than the answer count, a found TTL fits 31 bits, nothing
 * found leaves the TTL alone; and an answer c-ares' own SRV parser accepts is never refused (its
 * SRV records found). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include <ares.h>

#include "resolver_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *data, size_t size, uint16_t type)
{
        uint32_t ttl = 0xdeadbeef;
        int n = resolver__dns_answer_ttl(data, size, type, &ttl);

        if (n == -EBADMSG)
                return;
        if (n < 0 || size < 12 || n > (data[6] << 8 | data[7]))
                abort();
        if (n == 0 && ttl != 0xdeadbeef)
                abort();
        if (n > 0 && ttl > INT32_MAX)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct ares_srv_reply *srv = NULL;
        uint32_t ttl;

        check(data, size, 33);
        check(data, size, 1);
        if (size <= INT32_MAX && ares_parse_srv_reply(data, (int)size, &srv) == ARES_SUCCESS) {
                int n = resolver__dns_answer_ttl(data, size, 33, &ttl);
                if (n < 0 || (srv && n == 0))
                        abort();
                ares_free_data(srv);
        }
        return 0;
}
