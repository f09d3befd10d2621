/* Human-readable answers: a few "key: value" lines for status, aligned tables (columns as wide
 * as their widest cell) for routes and servers, one sentence for a state change, a reload or a
 * check. Scripts use --json instead; nothing here is meant to be parsed. */
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define MAX_COLS 10

struct table {
        size_t n_cols, n_rows, cap;
        size_t width[MAX_COLS];
        char **cells; /* n_rows * n_cols, row-major */
};

static void table_add(struct table *t, const char *const *row)
{
        if (t->n_rows == t->cap) {
                size_t cap = t->cap ? t->cap * 2 : 16;
                char **p = realloc(t->cells, cap * t->n_cols * sizeof(*p));

                if (!p)
                        return; /* out of memory: the row is left out */
                t->cells = p;
                t->cap = cap;
        }
        for (size_t i = 0; i < t->n_cols; i++) {
                char *s = strdup(row[i] ? row[i] : "-");
                size_t w = s ? strlen(s) : 1;

                t->cells[t->n_rows * t->n_cols + i] = s;
                if (w > t->width[i])
                        t->width[i] = w;
        }
        t->n_rows++;
}

static void table_print(FILE *out, struct table *t)
{
        for (size_t r = 0; r < t->n_rows; r++) {
                for (size_t i = 0; i < t->n_cols; i++) {
                        const char *s = t->cells[r * t->n_cols + i];
                        bool last = i + 1 == t->n_cols;

                        fprintf(out, "%-*s%s", last ? 0 : (int)t->width[i], s ? s : "?",
                                last ? "\n" : "  ");
                        free(t->cells[r * t->n_cols + i]);
                }
        }
        free(t->cells);
}

static const char *str(json_t *obj, const char *key)
{
        const char *s = json_string_value(json_object_get(obj, key));

        return s ? s : "-";
}

static const char *num(json_t *obj, const char *key, char *buf, size_t size)
{
        snprintf(buf, size, "%lld", (long long)json_integer_value(json_object_get(obj, key)));
        return buf;
}

static void print_uptime(FILE *out, double s)
{
        unsigned long long t = (unsigned long long)s;

        if (t >= 86400)
                fprintf(out, "%llud", t / 86400);
        if (t >= 3600)
                fprintf(out, "%lluh", t / 3600 % 24);
        if (t >= 60)
                fprintf(out, "%llum", t / 60 % 60);
        fprintf(out, "%llus", t % 60);
}

static void print_status(FILE *out, json_t *resp)
{
        json_t *rl = json_object_get(resp, "last_reload"),
               *routes = json_object_get(resp, "routes");
        struct table t = {.n_cols = 10};
        char b[10][32];
        json_t *r;
        size_t i;

        fprintf(out, "evproxyd %s (pid %lld), %s, up ", str(resp, "version"),
                (long long)json_integer_value(json_object_get(resp, "pid")), str(resp, "phase"));
        print_uptime(out, json_number_value(json_object_get(resp, "uptime_s")));
        fprintf(out, "\nconfig:       %s\n", str(resp, "config"));
        if (json_is_object(rl))
                fprintf(out, "last reload:  %s %s%s\n", str(rl, "time"),
                        json_is_true(json_object_get(rl, "ok")) ? "ok" : "FAILED: ",
                        json_is_true(json_object_get(rl, "ok")) ? "" : str(rl, "error"));
        else
                fprintf(out, "last reload:  none since the start\n");
        fprintf(out, "workers:      %lld\nconnections:  %lld\n\n",
                (long long)json_integer_value(json_object_get(resp, "workers")),
                (long long)json_integer_value(json_object_get(resp, "connections")));
        table_add(&t, (const char *const[]){"ROUTE", "SERVERS", "ACTIVE", "QUEUED", "ACCEPTED",
                                            "REFUSED", "NO_SERVER", "FAILURES", "BYTES_IN",
                                            "BYTES_OUT"});
        json_array_foreach(routes, i, r)
        {
                /* REFUSED: closed before forwarding by a rule (access list, route limit, bad
                 * PROXY header, per-client limit or rate); NO_SERVER: no server could take it. */
                long long refused = json_integer_value(json_object_get(r, "refused_acl")) +
                                    json_integer_value(json_object_get(r, "refused_limit")) +
                                    json_integer_value(json_object_get(r, "bad_proxy_header")) +
                                    json_integer_value(json_object_get(r, "refused_client_limit")) +
                                    json_integer_value(json_object_get(r, "rate_limited"));

                snprintf(b[4], sizeof(b[4]), "%lld", refused);
                table_add(&t, (const char *const[]){str(r, "name"),
                                                    num(r, "servers", b[0], sizeof(b[0])),
                                                    num(r, "active", b[1], sizeof(b[1])),
                                                    num(r, "queued", b[7], sizeof(b[7])),
                                                    num(r, "accepted", b[2], sizeof(b[2])), b[4],
                                                    num(r, "no_server", b[8], sizeof(b[8])),
                                                    num(r, "connect_failures", b[3], sizeof(b[3])),
                                                    num(r, "bytes_in", b[5], sizeof(b[5])),
                                                    num(r, "bytes_out", b[6], sizeof(b[6]))});
        }
        table_print(out, &t);
}

static void print_servers(FILE *out, json_t *resp)
{
        struct table t = {.n_cols = 9};
        char b[3][32];
        json_t *s;
        size_t i;

        table_add(&t, (const char *const[]){"ROUTE", "SERVER", "NAME", "STATE", "HEALTH", "ACTIVE",
                                            "CONNECTS", "FAILURES", "LAST_ERROR"});
        json_array_foreach(json_object_get(resp, "servers"), i, s)
        {
                json_t *e = json_object_get(s, "last_error");
                char err[300];

                snprintf(err, sizeof(err), "%s (%s)", json_string_value(e),
                         str(s, "last_error_time"));
                /* NAME: the upstream name the address came from; "-" for a literal. */
                table_add(&t,
                          (const char *const[]){str(s, "route"), str(s, "server"), str(s, "name"),
                                                str(s, "state"), str(s, "health"),
                                                num(s, "active", b[0], sizeof(b[0])),
                                                num(s, "connects", b[1], sizeof(b[1])),
                                                num(s, "connect_failures", b[2], sizeof(b[2])),
                                                json_is_string(e) ? err : "-"});
        }
        table_print(out, &t);
}

static void print_conns(FILE *out, json_t *resp)
{
        struct table t = {.n_cols = 9};
        char b[5][32];
        json_t *c;
        size_t i;

        table_add(&t, (const char *const[]){"ID", "ROUTE", "CLIENT", "UPSTREAM", "STATE", "AGE_S",
                                            "IDLE_S", "BYTES_IN", "BYTES_OUT"});
        json_array_foreach(json_object_get(resp, "connections"), i, c)
        {
                snprintf(b[1], sizeof(b[1]), "%.1f",
                         json_number_value(json_object_get(c, "age_s")));
                snprintf(b[2], sizeof(b[2]), "%.1f",
                         json_number_value(json_object_get(c, "idle_s")));
                table_add(&t, (const char *const[]){num(c, "id", b[0], sizeof(b[0])),
                                                    str(c, "route"), str(c, "client"),
                                                    str(c, "upstream"), str(c, "state"), b[1], b[2],
                                                    num(c, "bytes_in", b[3], sizeof(b[3])),
                                                    num(c, "bytes_out", b[4], sizeof(b[4]))});
        }
        table_print(out, &t);
        if (json_is_true(json_object_get(resp, "partial")))
                fprintf(out, "(partial: the daemon ran short of memory listing them)\n");
}

void ctl_print(FILE *out, const struct admin_request *req, json_t *resp)
{
        switch (req->cmd) {
        case ADMIN_CMD_STATUS:
                print_status(out, resp);
                break;
        case ADMIN_CMD_SERVERS:
                print_servers(out, resp);
                break;
        case ADMIN_CMD_DRAIN:
        case ADMIN_CMD_MAINT:
        case ADMIN_CMD_READY:
                fprintf(out, "route %s server %s: %s (was %s), %lld connections open",
                        str(resp, "route"), str(resp, "server"), str(resp, "state"),
                        str(resp, "previous"),
                        (long long)json_integer_value(json_object_get(resp, "active")));
                if (json_object_get(resp, "killed"))
                        fprintf(out, ", %lld reset",
                                (long long)json_integer_value(json_object_get(resp, "killed")));
                fputc('\n', out);
                break;
        case ADMIN_CMD_RELOAD:
                fprintf(out, "reloaded %s: %lld routes, applied by every worker\n",
                        str(resp, "config"),
                        (long long)json_integer_value(json_object_get(resp, "routes")));
                break;
        case ADMIN_CMD_CHECK:
                fprintf(out, "%s: the configuration is valid\n", str(resp, "config"));
                break;
        case ADMIN_CMD_CONNS:
                print_conns(out, resp);
                break;
        case ADMIN_CMD_KILL:
                fprintf(out, "connection %lld reset\n",
                        (long long)json_integer_value(json_object_get(resp, "killed")));
                break;
        }
}
