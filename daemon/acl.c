/* Access control: first matching deny entry refuses, then the allow list (if any) must match.
 * Lists are short and checked once per connection (twice with a PROXY header), so a linear
 * scan over the parsed CIDRs is all it takes. */
#include <netinet/in.h>

#include "acl.h"

static bool any_match(const struct cfg_cidr *list, size_t n, const struct sockaddr *sa)
{
        for (size_t i = 0; i < n; i++) {
                if (cfg_cidr_match(&list[i], sa))
                        return true;
        }
        return false;
}

bool acl_allows(const struct cfg_route *r, const struct sockaddr *sa)
{
        if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
                return true;
        if (any_match(r->deny, r->n_deny, sa))
                return false;
        return r->n_allow == 0 || any_match(r->allow, r->n_allow, sa);
}
