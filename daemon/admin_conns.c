/* Admin commands that need the workers' connections: conns (list), kill ID, maint --kill (reset
 * every connection of a server). A query posts one task to every worker; each task walks its
 * worker's connections on that thread (snapshots into plain memory, or resets), and the last
 * one to finish posts the query back to the main thread, which answers the waiting client:
 *   main: post to N workers --> each worker: walk, pending-- --> last: post done --> main: answer
 * A client that goes away meanwhile only detaches itself; the query is freed when done, or at
 * admin_server_stop() if a worker exited without running its task. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"
#include "conn.h"
#include "daemon.h"
#include "log.h"
#include "worker.h"

enum conns_op { OP_LIST, OP_KILL_ID, OP_KILL_SERVER };

struct conns_part {
        struct evio_driver_task task;
        struct conns_query *q;
        struct worker *w;
        struct conn_snap *snaps; /* OP_LIST */
        size_t n, cap;
        unsigned killed;
        bool failed; /* out of memory: the list is short */
};

struct conns_query {
        TAILQ_ENTRY(conns_query) link;
        struct admin_server *a;
        struct admin_conn *waiter; /* NULL once it went away */
        enum conns_op op;
        char route[ADMIN_NAME_MAX + 1];
        bool has_server;
        struct cfg_addr server;
        uint64_t id;
        json_t *answer; /* OP_KILL_SERVER: the maint answer, completed with "killed" */
        atomic_uint pending;
        struct evio_driver_task done;
        unsigned n_parts;
        struct conns_part parts[];
};

static bool part_matches(const struct conns_query *q, const struct conn_snap *s)
{
        if (q->route[0] && strcmp(s->route, q->route) != 0)
                return false;
        return !q->has_server || (s->upstream && cfg_addr_equal(s->upstream, &q->server));
}

/* Worker thread: one connection. */
static bool part_visit(struct conn *c, void *arg)
{
        struct conns_part *p = arg;
        const struct conns_query *q = p->q;
        struct conn_snap s;

        conn_snapshot(c, &s);
        if (q->op == OP_KILL_ID) {
                if (s.id != q->id)
                        return true;
                conn_kill(c);
                p->killed++;
                return false;
        }
        if (!part_matches(q, &s))
                return true;
        if (q->op == OP_KILL_SERVER) {
                conn_kill(c);
                p->killed++;
                return true;
        }
        if (p->n == p->cap) {
                size_t cap = p->cap ? p->cap * 2 : 64;
                struct conn_snap *more = realloc(p->snaps, cap * sizeof(*more));

                if (!more) {
                        p->failed = true;
                        return false;
                }
                p->snaps = more;
                p->cap = cap;
        }
        s.upstream = NULL; /* read on the main thread, when c may be gone */
        p->snaps[p->n++] = s;
        return true;
}

/* Worker thread: the task. */
static void part_run(struct evio_driver_task *t)
{
        struct conns_part *p = container_of(t, struct conns_part, task);
        struct conns_query *q = p->q;

        conn_foreach(&p->w->env, part_visit, p);
        if (atomic_fetch_sub(&q->pending, 1) == 1)
                evio_handle_post(evio_driver_handle(q->a->d->drv), &q->done);
}

static void query_free(struct conns_query *q)
{
        for (unsigned i = 0; i < q->n_parts; i++)
                free(q->parts[i].snaps);
        json_decref(q->answer);
        free(q);
}

struct snap_ref {
        const struct conn_snap *s;
        unsigned worker;
};

static int snap_cmp(const void *a, const void *b)
{
        const struct snap_ref *x = a, *y = b;

        return x->s->id < y->s->id ? -1 : x->s->id > y->s->id;
}

static json_t *snap_json(const struct snap_ref *r)
{
        const struct conn_snap *s = r->s;

        return json_pack("{s:I, s:s, s:s, s:s, s:s, s:i, s:f, s:f, s:I, s:I}", "id",
                         (json_int_t)s->id, "route", s->route, "client", s->client, "upstream",
                         s->upstream_text, "state", s->state, "worker", (int)r->worker, "age_s",
                         (double)s->age_ms / 1000.0, "idle_s", (double)s->idle_ms / 1000.0,
                         "bytes_in", (json_int_t)s->bytes_in, "bytes_out",
                         (json_int_t)s->bytes_out);
}

/* Every worker's connections, oldest first (ids grow with time). */
static json_t *list_answer(struct conns_query *q)
{
        struct snap_ref *refs;
        json_t *list = json_array();
        size_t n = 0, k = 0;
        bool failed = false;

        for (unsigned i = 0; i < q->n_parts; i++) {
                n += q->parts[i].n;
                failed |= q->parts[i].failed;
        }
        refs = malloc((n ? n : 1) * sizeof(*refs));
        for (unsigned i = 0; refs && i < q->n_parts; i++)
                for (size_t j = 0; j < q->parts[i].n; j++)
                        refs[k++] = (struct snap_ref){&q->parts[i].snaps[j], i};
        if (refs)
                qsort(refs, n, sizeof(*refs), snap_cmp);
        for (k = 0; refs && list && k < n; k++) {
                if (json_array_append_new(list, snap_json(&refs[k])) != 0) {
                        json_decref(list);
                        list = NULL;
                }
        }
        free(refs);
        if (!refs || !list) {
                json_decref(list);
                return NULL;
        }
        return json_pack("{s:b, s:o, s:b}", "ok", 1, "connections", list, "partial", failed);
}

/* Main thread: every worker answered. */
static void query_done(struct evio_driver_task *t)
{
        struct conns_query *q = container_of(t, struct conns_query, done);
        struct admin_server *a = q->a;
        unsigned killed = 0;
        json_t *resp;

        TAILQ_REMOVE(&a->queries, q, link);
        for (unsigned i = 0; i < q->n_parts; i++)
                killed += q->parts[i].killed;
        if (q->op == OP_LIST)
                resp = list_answer(q);
        else if (q->op == OP_KILL_ID && killed == 0)
                resp = admin_error("no connection %llu", (unsigned long long)q->id);
        else if (q->op == OP_KILL_ID)
                resp = json_pack("{s:b, s:I}", "ok", 1, "killed", (json_int_t)q->id);
        else if (json_object_set_new(q->answer, "killed", json_integer(killed)) == 0)
                resp = json_incref(q->answer);
        else
                resp = NULL;
        if (killed > 0)
                log_notice("admin: %u connections reset (end=killed)", killed);
        if (q->waiter)
                admin_conn_answer(q->waiter, resp);
        else
                json_decref(resp);
        query_free(q);
}

struct conns_query *admin_conns_start(struct admin_server *a, struct admin_conn *waiter,
                                      const struct admin_request *req, json_t *answer, char *why,
                                      size_t why_len)
{
        struct daemon *d = a->d;
        struct conns_query *q;
        char msg[200];

        q = calloc(1, sizeof(*q) + d->n_workers * sizeof(q->parts[0]));
        if (!q) {
                json_decref(answer);
                snprintf(why, why_len, "out of memory");
                return NULL;
        }
        q->a = a;
        q->waiter = waiter;
        q->op = req->cmd == ADMIN_CMD_KILL    ? OP_KILL_ID
                : req->cmd == ADMIN_CMD_MAINT ? OP_KILL_SERVER
                                              : OP_LIST;
        memcpy(q->route, req->route, sizeof(q->route));
        q->id = req->id;
        if (req->server[0]) {
                if (cfg_addr_parse(req->server, false, &q->server, msg, sizeof(msg)) < 0) {
                        snprintf(why, why_len, "server \"%s\": %s", req->server, msg);
                        json_decref(answer);
                        free(q);
                        return NULL;
                }
                q->has_server = true;
        }
        q->answer = answer;
        q->done.fn = query_done;
        q->n_parts = d->n_workers;
        atomic_init(&q->pending, d->n_workers);
        TAILQ_INSERT_TAIL(&a->queries, q, link);
        for (unsigned i = 0; i < d->n_workers; i++) {
                q->parts[i].task.fn = part_run;
                q->parts[i].q = q;
                q->parts[i].w = d->workers[i];
                worker_post(d->workers[i], &q->parts[i].task);
        }
        return q;
}

void admin_conns_forget(struct conns_query *q)
{
        q->waiter = NULL;
}

void admin_conns_stop(struct admin_server *a)
{
        struct conns_query *q;

        /* Workers are gone (joined): no task of these queries can run any more. */
        while ((q = TAILQ_FIRST(&a->queries))) {
                TAILQ_REMOVE(&a->queries, q, link);
                query_free(q); // NOLINT(clang-analyzer-unix.Malloc)
        }
}
