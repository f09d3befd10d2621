/* Admin requests to and from JSON (jansson). The parser is the admin socket's first line of
 * defence, so it accepts exactly one object whose keys are the command's own, each of its type
 * and within its length, and says in words what is wrong with anything else. It is fuzzed
 * (tests/fuzz/fuzz_admin.c) and unit-tested (tests/daemon/test_admin_proto.c). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "admin_proto.h"

/* Which arguments a command takes. */
#define ARG_ROUTE  1u /* required */
#define ARG_SERVER 2u /* required */
#define ARG_KILL   4u
#define ARG_ID     8u /* required */
#define OPT_ROUTE  16u
#define OPT_SERVER 32u

static const struct {
        const char *name;
        unsigned args;
} cmds[] = {
    [ADMIN_CMD_STATUS] = {"status", 0},
    [ADMIN_CMD_SERVERS] = {"servers", OPT_ROUTE},
    [ADMIN_CMD_DRAIN] = {"drain", ARG_ROUTE | ARG_SERVER},
    [ADMIN_CMD_MAINT] = {"maint", ARG_ROUTE | ARG_SERVER | ARG_KILL},
    [ADMIN_CMD_READY] = {"ready", ARG_ROUTE | ARG_SERVER},
    [ADMIN_CMD_RELOAD] = {"reload", 0},
    [ADMIN_CMD_CHECK] = {"check", 0},
    [ADMIN_CMD_CONNS] = {"conns", OPT_ROUTE | OPT_SERVER},
    [ADMIN_CMD_KILL] = {"kill", ARG_ID},
};
#define N_CMDS (sizeof(cmds) / sizeof(cmds[0]))

static const char *const state_names[] = {"ready", "drain", "maint"};

const char *admin_cmd_name(enum admin_cmd cmd)
{
        return (unsigned)cmd < N_CMDS ? cmds[cmd].name : "?";
}

const char *admin_state_name(enum admin_state s)
{
        return (unsigned)s < 3 ? state_names[s] : "?";
}

int admin_state_parse(const char *name, enum admin_state *out)
{
        for (unsigned i = 0; i < 3; i++) {
                if (strcmp(name, state_names[i]) == 0) {
                        *out = (enum admin_state)i;
                        return 0;
                }
        }
        return -EINVAL;
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t len, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(err, len, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

/* A printable excerpt of untrusted text for a message: at most 40 bytes, controls and
 * quotes as '?'. */
static void excerpt(const char *s, char *out, size_t size)
{
        size_t i;

        for (i = 0; i < 40 && i + 1 < size && s[i]; i++)
                out[i] = (unsigned char)s[i] < 0x20 || s[i] == '"' || s[i] == 0x7f ? '?' : s[i];
        out[i] = '\0';
}

static int find_cmd(json_t *v, enum admin_cmd *out, char *err, size_t len)
{
        char ex[48];

        if (!v)
                return fail(err, len, "\"cmd\" is missing");
        if (!json_is_string(v))
                return fail(err, len, "\"cmd\" must be a string");
        for (unsigned i = 0; i < N_CMDS; i++) {
                if (strcmp(json_string_value(v), cmds[i].name) == 0) {
                        *out = (enum admin_cmd)i;
                        return 0;
                }
        }
        excerpt(json_string_value(v), ex, sizeof(ex));
        return fail(err, len, "unknown command \"%s\"", ex);
}

/* A string argument: present if required, printable, not empty, at most max bytes. */
static int get_text(json_t *obj, const char *key, bool required, size_t max, char *out, char *err,
                    size_t len)
{
        json_t *v = json_object_get(obj, key);
        const char *s;
        size_t n;

        out[0] = '\0';
        if (!v)
                return required ? fail(err, len, "\"%s\" is missing", key) : 0;
        if (!json_is_string(v))
                return fail(err, len, "\"%s\" must be a string", key);
        s = json_string_value(v);
        n = json_string_length(v);
        if (n == 0 || n > max)
                return fail(err, len, "\"%s\" must have 1 to %zu bytes", key, max);
        for (size_t i = 0; i < n; i++) {
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                        return fail(err, len, "\"%s\" has a control character", key);
        }
        memcpy(out, s, n + 1);
        return 0;
}

static int check_keys(json_t *obj, unsigned args, char *err, size_t len)
{
        const char *key;
        json_t *v;
        char ex[48];

        json_object_foreach(obj, key, v)
        {
                bool ok = strcmp(key, "cmd") == 0 ||
                          (strcmp(key, "route") == 0 && (args & (ARG_ROUTE | OPT_ROUTE))) ||
                          (strcmp(key, "server") == 0 && (args & (ARG_SERVER | OPT_SERVER))) ||
                          (strcmp(key, "kill") == 0 && (args & ARG_KILL)) ||
                          (strcmp(key, "id") == 0 && (args & ARG_ID));

                if (!ok) {
                        excerpt(key, ex, sizeof(ex));
                        return fail(err, len, "unexpected key \"%s\"", ex);
                }
        }
        return 0;
}

static int get_args(json_t *obj, struct admin_request *req, char *err, size_t len)
{
        unsigned args = cmds[req->cmd].args;
        json_t *v;
        int r;

        r = check_keys(obj, args, err, len);
        if (r == 0 && (args & (ARG_ROUTE | OPT_ROUTE)))
                r = get_text(obj, "route", args & ARG_ROUTE, ADMIN_NAME_MAX, req->route, err, len);
        if (r == 0 && (args & (ARG_SERVER | OPT_SERVER)))
                r = get_text(obj, "server", args & ARG_SERVER, ADMIN_SERVER_MAX, req->server, err,
                             len);
        if (r < 0)
                return r;
        if ((v = json_object_get(obj, "kill"))) {
                if (!json_is_boolean(v))
                        return fail(err, len, "\"kill\" must be true or false");
                req->kill = json_is_true(v);
        }
        if (args & ARG_ID) {
                v = json_object_get(obj, "id");
                if (!v)
                        return fail(err, len, "\"id\" is missing");
                if (!json_is_integer(v) || json_integer_value(v) <= 0)
                        return fail(err, len, "\"id\" must be a positive integer");
                req->id = (uint64_t)json_integer_value(v);
        }
        return 0;
}

int admin_request_parse(const char *line, size_t len, struct admin_request *out, char *err,
                        size_t err_len)
{
        json_error_t jerr;
        json_t *obj;
        int r;

        memset(out, 0, sizeof(*out));
        if (len >= ADMIN_MAX_REQUEST)
                return fail(err, err_len, "request too large (at most %d bytes)",
                            ADMIN_MAX_REQUEST - 1);
        obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!obj)
                return fail(err, err_len, "not JSON: %s (column %d)", jerr.text, jerr.column);
        if (!json_is_object(obj)) {
                json_decref(obj);
                return fail(err, err_len, "expected a JSON object {\"cmd\": ...}");
        }
        r = find_cmd(json_object_get(obj, "cmd"), &out->cmd, err, err_len);
        if (r == 0)
                r = get_args(obj, out, err, err_len);
        json_decref(obj);
        return r;
}

char *admin_request_format(const struct admin_request *req)
{
        unsigned args = cmds[req->cmd].args;
        json_t *obj = json_object();
        char *text = NULL, *line;
        size_t n;
        int r;

        if (!obj)
                return NULL;
        r = json_object_set_new(obj, "cmd", json_string(admin_cmd_name(req->cmd)));
        if (r == 0 && req->route[0] && (args & (ARG_ROUTE | OPT_ROUTE)))
                r = json_object_set_new(obj, "route", json_string(req->route));
        if (r == 0 && req->server[0] && (args & (ARG_SERVER | OPT_SERVER)))
                r = json_object_set_new(obj, "server", json_string(req->server));
        if (r == 0 && req->kill && (args & ARG_KILL))
                r = json_object_set_new(obj, "kill", json_true());
        if (r == 0 && (args & ARG_ID))
                r = json_object_set_new(obj, "id", json_integer((json_int_t)req->id));
        if (r == 0)
                text = json_dumps(obj, JSON_COMPACT);
        json_decref(obj);
        if (!text)
                return NULL;
        n = strlen(text);
        line = realloc(text, n + 2);
        if (!line) {
                free(text);
                return NULL;
        }
        memcpy(line + n, "\n", 2);
        return line;
}
