/* A connection handed over for a route the new configuration no longer has keeps its upstream:
 * it is resumed under a "ghost" generation of its own, loaded from a configuration with just
 * that route (its upstreams: the servers those connections are on; forwarding, buffer size and
 * access log as in the current configuration; the route's own settings at their defaults). The
 * ghost listens nowhere, and goes with its last connection. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "gen.h"
#include "handover_int.h"
#include "log.h"

/* s as a libconfig string, quotes and backslashes escaped. */
static void put_quoted(FILE *f, const char *s)
{
        fputc('"', f);
        for (; *s; s++) {
                if (*s == '"' || *s == '\\')
                        fputc('\\', f);
                fputc(*s, f);
        }
        fputc('"', f);
}

static bool seen_before(const struct ho_state *st, size_t i, const char *route)
{
        for (size_t j = 0; j < i; j++)
                if (strcmp(st->cs[j].route, route) == 0 &&
                    strcmp(st->cs[j].upstream, st->cs[i].upstream) == 0)
                        return true;
        return false;
}

static char *ghost_text(const struct daemon *d, const char *route, const struct ho_state *st)
{
        const struct cfg *cur = d->gen->cfg;
        char *text = NULL;
        size_t len = 0, n = 0;
        FILE *f = open_memstream(&text, &len);

        if (!f)
                return NULL;
        fprintf(f, "workers = 1; access_log = %s; forwarding = \"%s\"; buffer_size = %zu;\n",
                cur->access_log ? "true" : "false",
                cur->forwarding == CFG_FORWARD_COPY ? "copy" : "splice", cur->buffer_size);
        fprintf(f, "routes = ( { name = ");
        put_quoted(f, route);
        fprintf(f, "; listen = [ \"unix:@evproxy-ghost-%d\" ]; upstreams = [ ", (int)getpid());
        for (size_t i = 0; i < st->n_cs; i++) {
                if (strcmp(st->cs[i].route, route) != 0 || !st->cs[i].upstream[0] ||
                    seen_before(st, i, route))
                        continue;
                fprintf(f, "%s", n++ ? ", " : "");
                put_quoted(f, st->cs[i].upstream);
        }
        fprintf(f, " ]; } );\n");
        if (fclose(f) != 0 || n == 0) {
                free(text);
                return NULL;
        }
        return text;
}

struct gen *ho_ghost_gen(const struct daemon *d, const char *route, const struct ho_state *st)
{
        struct cfg_error err = {0};
        char *text = ghost_text(d, route, st);
        struct cfg *cfg = NULL;
        struct gen *g = NULL;
        int r = text ? 0 : -EINVAL;

        if (r == 0)
                r = cfg_load_string(text, "handover", &cfg, &err);
        free(text);
        if (r == 0)
                r = gen_new(cfg, d->gen, &g); /* owns cfg from here */
        if (r == 0 && (r = gen_add_listener(g, 0, &g->cfg->routes[0].listen[0], NULL)) < 0) {
                gen_unref(g);
                g = NULL;
        }
        if (r < 0) {
                log_error("handover: route %s is gone and its connections could not be kept "
                          "(%s)",
                          route, err.message[0] ? err.message : strerror(-r));
                return NULL;
        }
        log_notice("handover: route %s is not in the configuration: its connections keep their "
                   "upstream until they end",
                   route);
        return g;
}
