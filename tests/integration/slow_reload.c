/* evproxyd for test_admin_reload.py: worker_reload() (reload.c -> worker.c) is wrapped
 * (-Wl,--wrap=worker_reload) so that each worker is told of a new generation only
 * EVTEST_RELOAD_DELAY_MS later, from a helper thread. Workers then apply a reload long after
 * it was loaded, and a client of `evproxyctl reload` that were answered before every worker
 * applied it would see the old route; the real daemon applies it in microseconds. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "gen.h"
#include "log.h"
#include "worker.h"

#define EVTEST_RELOAD_DELAY_MS 300

void __real_worker_reload(struct worker *w, struct gen *g);
void __wrap_worker_reload(struct worker *w, struct gen *g);

struct late {
        struct worker *w;
        struct gen *g;
};

static void *late_reload(void *arg)
{
        struct late *l = arg;
        struct timespec ts = {0, EVTEST_RELOAD_DELAY_MS * 1000000L};

        nanosleep(&ts, NULL);
        __real_worker_reload(l->w, l->g); /* posts to the worker: safe from any thread */
        gen_unref(l->g);
        free(l);
        return NULL;
}

void __wrap_worker_reload(struct worker *w, struct gen *g)
{
        struct late *l = malloc(sizeof(*l));
        pthread_t t;

        if (!l) {
                __real_worker_reload(w, g);
                return;
        }
        l->w = w;
        l->g = gen_ref(g);
        if (pthread_create(&t, NULL, late_reload, l) != 0) {
                gen_unref(g);
                free(l);
                __real_worker_reload(w, g);
                return;
        }
        pthread_detach(t);
        log_debug("test: worker %u hears of the reload in %d ms", w->id, EVTEST_RELOAD_DELAY_MS);
}
