/* A route's published server set (see route.h): built at generation time from the literal
 * upstreams and what the previous generation's route of the same name had (server state is
 * kept by address), swapped under a small lock so that a reader's reference is never taken on
 * a set being freed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"
#include "server_set.h"

static const struct route *find_route(const struct route *prev, size_t n_prev, const char *name)
{
        for (size_t i = 0; prev && i < n_prev; i++) {
                if (prev[i].cfg && prev[i].set && strcmp(prev[i].cfg->name, name) == 0)
                        return &prev[i];
        }
        return NULL;
}

int route_servers_init(struct route *r, const struct route *prev, size_t n_prev)
{
        const struct route *old = find_route(prev, n_prev, r->cfg->name);
        struct server_set *was = old ? route_set_get(old) : NULL;
        int ret;

        ret = server_set_build(r->cfg, NULL, was, &r->set);
        server_set_unref(was);
        if (ret < 0) {
                r->set = NULL;
                return ret;
        }
        if (pthread_mutex_init(&r->set_lock, NULL) != 0) {
                route_servers_free(r);
                return -ENOMEM;
        }
        r->set_lock_ready = true;
        return 0;
}

void route_servers_free(struct route *r)
{
        server_set_unref(r->set);
        r->set = NULL;
        if (r->set_lock_ready)
                pthread_mutex_destroy(&r->set_lock);
        r->set_lock_ready = false;
}

struct server_set *route_set_get(const struct route *r)
{
        pthread_mutex_t *lock = (pthread_mutex_t *)&r->set_lock; /* readers too take it */
        struct server_set *s;

        pthread_mutex_lock(lock);
        s = server_set_ref(r->set);
        pthread_mutex_unlock(lock);
        return s;
}

void route_set_publish(struct route *r, struct server_set *s)
{
        struct server_set *old;

        pthread_mutex_lock(&r->set_lock);
        old = r->set;
        r->set = s;
        pthread_mutex_unlock(&r->set_lock);
        server_set_unref(old);
}
