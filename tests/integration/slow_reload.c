/* evproxyd for test_admin_reload.py: worker_reload_post() (reload.c -> worker.c) is wrapped
 * (-Wl,--wrap=worker_reload_post) so that each worker is told of a new generation only
 * EVTEST_RELOAD_DELAY_MS later, from a helper thread. Workers then apply a reload long after
 * it was loaded, and a client of `evproxyctl reload` that were answered before every worker
 * applied it would see the old route; the real daemon applies it in microseconds. */
#include <pthread.h>
#include <time.h>

#include "log.h"
#include "worker.h"

#define EVTEST_RELOAD_DELAY_MS 300

void __real_worker_reload_post(struct worker_reload *rt);
void __wrap_worker_reload_post(struct worker_reload *rt);

static void *late_reload(void *arg)
{
        struct timespec ts = {0, EVTEST_RELOAD_DELAY_MS * 1000000L};

        nanosleep(&ts, NULL);
        __real_worker_reload_post(arg); /* posts to the worker: safe from any thread */
        return NULL;
}

void __wrap_worker_reload_post(struct worker_reload *rt)
{
        pthread_t t;

        if (pthread_create(&t, NULL, late_reload, rt) != 0) {
                __real_worker_reload_post(rt);
                return;
        }
        pthread_detach(t);
        log_debug("test: a worker hears of the reload in %d ms", EVTEST_RELOAD_DELAY_MS);
}
