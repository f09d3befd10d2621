/* Config tests, part 2: one table row per invalid input, each checked for the exact line,
 * setting and message (the file is always the evproxy.conf written into the temp dir). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_config.h"

/* A route whose settings start on line 3; EXTRA lands on line 6, listen on 4, upstreams on 5. */
#define ROUTE(listen, upstreams, extra)                                                            \
        "routes = (\n  {\n    name = \"web\";\n    listen = [ " listen                             \
        " ];\n    upstreams = [ " upstreams " ];\n    " extra "\n  }\n);\n"
#define WITH(extra) ROUTE("\"127.0.0.1:8080\"", "\"127.0.0.1:8081\"", extra)
#define LISTEN(a)   ROUTE(a, "\"127.0.0.1:8081\"", "")
#define UPSTREAM(a) ROUTE("\"127.0.0.1:8080\"", a, "")
#define GLOBAL(g)   g "\n" ONE_ROUTE

struct bad {
        const char *text;
        int line;
        const char *setting;
        const char *message;
};

static const struct bad global_cases[] = {
    {"workers = ;\n" ONE_ROUTE, 1, "", "syntax error"},
    {"workers = 1;\nworkers = 2;\n" ONE_ROUTE, 2, "", "duplicate setting name"},
    {"routes = ( { name = \"a\"; }\n", 2, "", "syntax error"},
    {GLOBAL("wrokers = 2;"), 1, "wrokers", "unknown setting"},
    {GLOBAL("workers = -1;"), 1, "workers", "-1 is out of range (0..1024)"},
    {GLOBAL("workers = 1025;"), 1, "workers", "1025 is out of range (0..1024)"},
    {GLOBAL("workers = 1.5;"), 1, "workers", "expected an integer, found a decimal number"},
    {GLOBAL("workers = \"4\";"), 1, "workers", "expected an integer, found a string"},
    {GLOBAL("max_connections = 0;"), 1, "max_connections", "0 is out of range (1..1000000)"},
    {GLOBAL("max_connections = 10000000000L;"), 1, "max_connections",
     "10000000000 is out of range (1..1000000)"},
    {GLOBAL("max_connections = [ 1 ];"), 1, "max_connections",
     "expected an integer, found a list [ ... ]"},
    {GLOBAL("drain_timeout = -1;"), 1, "drain_timeout", "-1 seconds is out of range (0..86400)"},
    {GLOBAL("drain_timeout = 86400.5;"), 1, "drain_timeout",
     "86400.5 seconds is out of range (0..86400)"},
    {GLOBAL("drain_timeout = 1e999;"), 1, "drain_timeout",
     "inf seconds is out of range (0..86400)"},
    {GLOBAL("drain_timeout = true;"), 1, "drain_timeout",
     "expected a number of seconds, found true or false"},
    {GLOBAL("log_level = \"verbose\";"), 1, "log_level",
     "\"verbose\": unknown value; expected \"debug\", \"info\", \"notice\", \"warning\" or "
     "\"error\""},
    {GLOBAL("log_level = 7;"), 1, "log_level", "expected a string, found an integer"},
    {GLOBAL("access_log = \"yes\";"), 1, "access_log", "expected true or false, found a string"},
    {GLOBAL("user = \"\";"), 1, "user", "not a valid user name"},
    {GLOBAL("user = \"ro ot\";"), 1, "user", "not a valid user name"},
    {GLOBAL("user = \"-root\";"), 1, "user", "not a valid user name"},
    {GLOBAL("user = 0;"), 1, "user", "expected a string, found an integer"},
    {GLOBAL("forwarding = \"zero-copy\";"), 1, "forwarding",
     "\"zero-copy\": unknown value; expected \"splice\" or \"copy\""},
    {GLOBAL("buffer_size = 1024;"), 1, "buffer_size", "1024 is out of range (4096..16777216)"},
    {GLOBAL("buffer_size = 16777217;"), 1, "buffer_size",
     "16777217 is out of range (4096..16777216)"},
    {GLOBAL("pipe_memory = 1048575;"), 1, "pipe_memory",
     "1048575 is out of range (1048576..1099511627776)"},
    {GLOBAL("pipe_memory = \"2T\";"), 1, "pipe_memory",
     "\"2T\": expected a number of bytes, optionally followed by K, M or G (e.g. \"256M\")"},
    {GLOBAL("pipe_memory = \"M\";"), 1, "pipe_memory",
     "\"M\": expected a number of bytes, optionally followed by K, M or G (e.g. \"256M\")"},
    {GLOBAL("pipe_memory = \"1025G\";"), 1, "pipe_memory",
     "\"1025G\" is out of range (1048576..1099511627776 bytes)"},
    {GLOBAL("pipe_memory = \"99999999999999999999\";"), 1, "pipe_memory",
     "\"99999999999999999999\" is out of range (1048576..1099511627776 bytes)"},
    {GLOBAL("pipe_memory = 1.5;"), 1, "pipe_memory",
     "expected a number of bytes (an integer, or a string like \"256M\"), found a decimal "
     "number"},
    {GLOBAL("metrics = \"127.0.0.1:9901\";"), 1, "metrics",
     "expected a group { ... }, found a string"},
    {GLOBAL("metrics = { };"), 1, "metrics.listen", "missing (this setting is required)"},
    {GLOBAL("metrics = { listen = \"127.0.0.1:9901\"; port = 1; };"), 1, "metrics.port",
     "unknown setting"},
    {GLOBAL("metrics = { listen = \"systemd:m\"; };"), 1, "metrics.listen",
     "\"systemd:m\": the metrics endpoint cannot use a systemd: socket"},
    {GLOBAL("metrics = { listen = \"127.0.0.1\"; };"), 1, "metrics.listen",
     "\"127.0.0.1\": missing port (expected \"host:port\")"},
    {"metrics = { listen = \"127.0.0.1:8080\"; };\n" LISTEN("\"127.0.0.1:8080\""), 1,
     "metrics.listen", "\"127.0.0.1:8080\": also used by routes[0].listen[0] (line 5)"},
    {"", 0, "routes", "no routes: at least one is required"},
    {"# only a comment\nworkers = 1;\n", 0, "routes", "no routes: at least one is required"},
    {"routes = ();\n", 1, "routes", "no routes: the list is empty"},
    {"routes = [];\n", 1, "routes", "no routes: the list is empty"},
    {"routes = { };\n", 1, "routes", "expected a list of routes ( { ... }, ... )"},
    {"routes = \"web\";\n", 1, "routes", "expected a list of routes ( { ... }, ... )"},
    {"routes = ( \"web\" );\n", 1, "routes[0]",
     "expected a route { name = ...; listen = ...; ... }"},
};

static const struct bad route_cases[] = {
    {"routes = (\n  {\n    listen = [ \"127.0.0.1:8080\" ];\n    upstreams = [ "
     "\"127.0.0.1:8081\" ];\n  }\n);\n",
     2, "routes[0].name", "missing (this setting is required)"},
    {"routes = (\n  {\n    name = \"web\";\n    upstreams = [ \"127.0.0.1:8081\" ];\n  }\n);\n", 2,
     "routes[0].listen", "missing (this setting is required)"},
    {"routes = (\n  {\n    name = \"web\";\n    listen = [ \"127.0.0.1:8080\" ];\n  }\n);\n", 2,
     "routes[0].upstreams", "missing (this setting is required)"},
    {WITH("colour = \"red\";"), 6, "routes[0].colour", "unknown setting"},
    {ROUTE("\"127.0.0.1:8080\"", "\"127.0.0.1:8081\"", "name2 = 1;"), 6, "routes[0].name2",
     "unknown setting"},
    {"routes = ( { name = \"\"; listen = [ \"127.0.0.1:1\" ]; upstreams = [ \"127.0.0.1:2\" "
     "]; } );\n",
     1, "routes[0].name", "the route name is empty"},
    {"routes = ( { name = \"web site\"; listen = [ \"127.0.0.1:1\" ]; upstreams = [ "
     "\"127.0.0.1:2\" ]; } );\n",
     1, "routes[0].name", "\"web site\": a route name may only use A-Z a-z 0-9 _ . -"},
    {"routes = ( { name = "
     "\"a123456789b123456789c123456789d123456789e123456789f123456789g123\"; listen = [ "
     "\"127.0.0.1:1\" ]; upstreams = [ \"127.0.0.1:2\" ]; } );\n",
     1, "routes[0].name",
     "\"a123456789b123456789c123456789d123456789e123456789f123456789g123\": route name too "
     "long (at most 63 characters)"},
    {"routes = ( { name = 5; listen = [ \"127.0.0.1:1\" ]; upstreams = [ \"127.0.0.1:2\" ]; } "
     ");\n",
     1, "routes[0].name", "expected a string, found an integer"},
    {ROUTE("", "\"127.0.0.1:8081\"", ""), 4, "routes[0].listen", "the list is empty"},
    {ROUTE("\"127.0.0.1:8080\"", "", ""), 5, "routes[0].upstreams", "the list is empty"},
    {"routes = ( { name = \"web\";\n listen = \"127.0.0.1:8080\";\n upstreams = [ "
     "\"127.0.0.1:8081\" ]; } );\n",
     2, "routes[0].listen", "expected a list of strings [ \"...\", ... ], found a string"},
    {LISTEN("\"127.0.0.1:8080\", 8081"), 4, "", "mismatched element type in array"},
    {"routes = ( { name = \"web\"; upstreams = [ \"127.0.0.1:1\" ];\n listen = ( "
     "\"127.0.0.1:8080\",\n 8081 ); } );\n",
     3, "routes[0].listen[1]", "expected a string, found an integer"},
    {WITH("balance = \"fastest\";"), 6, "routes[0].balance",
     "\"fastest\": unknown value; expected \"round-robin\", \"least-conn\", \"random\" or "
     "\"hash\""},
    {WITH("queue_timeout = -1;"), 6, "routes[0].queue_timeout",
     "-1 seconds is out of range (0..3600)"},
    {WITH("queue_size = 0;"), 6, "routes[0].queue_size", "0 is out of range (1..1000000)"},
    {WITH("connect_timeout = 0;"), 6, "routes[0].connect_timeout",
     "0 seconds is out of range (0.001..3600)"},
    {WITH("connect_timeout = 3601;"), 6, "routes[0].connect_timeout",
     "3601 seconds is out of range (0.001..3600)"},
    {WITH("connect_timeout = \"5s\";"), 6, "routes[0].connect_timeout",
     "expected a number of seconds, found a string"},
    {WITH("idle_timeout = -5;"), 6, "routes[0].idle_timeout",
     "-5 seconds is out of range (0..604800)"},
    {WITH("idle_timeout = 1000000;"), 6, "routes[0].idle_timeout",
     "1e+06 seconds is out of range (0..604800)"},
    {WITH("max_connections = -1;"), 6, "routes[0].max_connections",
     "-1 is out of range (0..1000000)"},
    {WITH("max_connections = 2000000;"), 6, "routes[0].max_connections",
     "2000000 is out of range (0..1000000)"},
    {WITH("allow = [ \"10.0.0.0/33\" ];"), 6, "routes[0].allow[0]",
     "\"10.0.0.0/33\": prefix length out of range (0..32)"},
    {WITH("allow = [ \"::1/128\", \"::1/129\" ];"), 6, "routes[0].allow[1]",
     "\"::1/129\": prefix length out of range (0..128)"},
    {WITH("deny = [ \"example.com/8\" ];"), 6, "routes[0].deny[0]",
     "\"example.com/8\": not an IP address (expected e.g. \"10.0.0.0/8\" or \"::1/128\")"},
    {WITH("deny = [ \"10.0.0.0/\" ];"), 6, "routes[0].deny[0]",
     "\"10.0.0.0/\": missing prefix length after '/'"},
    {WITH("deny = [ \"10.0.0.0/-8\" ];"), 6, "routes[0].deny[0]",
     "\"10.0.0.0/-8\": prefix length is not a number"},
    {WITH("deny = [ \"/8\" ];"), 6, "routes[0].deny[0]", "\"/8\": not an IP address"},
    {WITH("allow = \"10.0.0.0/8\";"), 6, "routes[0].allow",
     "expected a list of strings [ \"...\", ... ], found a string"},
    {WITH("allow = [ 10 ];"), 6, "routes[0].allow[0]", "expected a string, found an integer"},
    {WITH("proxy_protocol = \"v3\";"), 6, "routes[0].proxy_protocol",
     "\"v3\": unknown value; expected \"off\", \"v1\" or \"v2\""},
    {WITH("proxy_protocol = false;"), 6, "routes[0].proxy_protocol",
     "expected a string, found true or false"},
    {WITH("accept_proxy_protocol = 1;"), 6, "routes[0].accept_proxy_protocol",
     "expected true or false, found an integer"},
    {WITH("proxy_protocol_timeout = 0;"), 6, "routes[0].proxy_protocol_timeout",
     "0 seconds is out of range (0.001..3600)"},
    {WITH("unix_mode = 0660;"), 6, "routes[0].unix_mode",
     "expected an octal mode as a string, e.g. \"0660\""},
    {WITH("unix_mode = \"0980\";"), 6, "routes[0].unix_mode",
     "expected an octal mode as a string, e.g. \"0660\""},
    {WITH("unix_mode = \"07777\";"), 6, "routes[0].unix_mode",
     "expected an octal mode as a string, e.g. \"0660\""},
    {WITH("unix_mode = \"4755\";"), 6, "routes[0].unix_mode",
     "only permission bits (at most \"0777\") may be set"},
    {WITH("health = 3;"), 6, "routes[0].health", "expected a group { ... }, found an integer"},
    {WITH("health = { retries = 3; };"), 6, "routes[0].health.retries", "unknown setting"},
    {WITH("health = { fails = -1; };"), 6, "routes[0].health.fails",
     "-1 is out of range (0..1000)"},
    {WITH("health = { fails = 1001; };"), 6, "routes[0].health.fails",
     "1001 is out of range (0..1000)"},
    {WITH("health = { backoff = 0; };"), 6, "routes[0].health.backoff",
     "0 seconds is out of range (0.001..86400)"},
    {WITH("health = { backoff = 100;\n backoff_max = 50; };"), 7, "routes[0].health.backoff_max",
     "50 seconds is less than backoff (100)"},
    {WITH("health = { backoff_max = 90000; };"), 6, "routes[0].health.backoff_max",
     "90000 seconds is out of range (0.001..86400)"},
    {WITH("health_check = { interval = 0; };"), 6, "routes[0].health_check.interval",
     "0 seconds is out of range (0.001..3600)"},
    {WITH("health_check = { timeout = 1; };"), 6, "routes[0].health_check.timeout",
     "unknown setting"},
    {WITH("health_check = [ 5 ];"), 6, "routes[0].health_check",
     "expected a group { ... }, found a list [ ... ]"},
};

#define P107                                                                                       \
        "/run/"                                                                                    \
        "aaaaaaaaabbbbbbbbbbccccccccccddddddddddeeeeeeeeeeffffffffffgggggggggghhhhhhhhhhiiiiiiiii" \
        "ijjjjjjjjjj123"

#define GROUPS(g)                                                                                  \
        "routes = (\n  {\n    name = \"web\";\n    listen = [ \"127.0.0.1:8080\" ];\n"             \
        "    upstreams = ( " g " );\n  }\n);\n"

static const struct bad addr_cases[] = {
    {GROUPS("{ address = \"127.0.0.1:1\"; weight = 0; }"), 5, "routes[0].upstreams[0].weight",
     "0 is out of range (1..1000)"},
    {GROUPS("{ address = \"127.0.0.1:1\"; weight = 1001; }"), 5, "routes[0].upstreams[0].weight",
     "1001 is out of range (1..1000)"},
    {GROUPS("\"127.0.0.1:2\", { weight = 2; }"), 5, "routes[0].upstreams[1].address",
     "missing (this setting is required)"},
    {GROUPS("{ address = \"127.0.0.1:1\"; wieght = 2; }"), 5, "routes[0].upstreams[0].wieght",
     "unknown setting"},
    {GROUPS("{ address = \"127.0.0.1:99999\"; }"), 5, "routes[0].upstreams[0].address",
     "\"127.0.0.1:99999\": port out of range"},
    {GROUPS("\"127.0.0.1:2\", 5"), 5, "routes[0].upstreams[1]",
     "expected an address \"...\" or a group { address = \"...\"; weight = N; max_connections = "
     "N; }"},
    {UPSTREAM("\"127.0.0.1:8081\", \"127.0.0.1:99999\""), 5, "routes[0].upstreams[1]",
     "\"127.0.0.1:99999\": port out of range"},
    {LISTEN("\"127.0.0.1:0\""), 4, "routes[0].listen[0]", "\"127.0.0.1:0\": port out of range"},
    {LISTEN("\"127.0.0.1:\""), 4, "routes[0].listen[0]", "\"127.0.0.1:\": missing port after ':'"},
    {LISTEN("\"127.0.0.1\""), 4, "routes[0].listen[0]",
     "\"127.0.0.1\": missing port (expected \"host:port\")"},
    {LISTEN("\"127.0.0.1:http\""), 4, "routes[0].listen[0]",
     "\"127.0.0.1:http\": port is not a number"},
    {LISTEN("\"127.0.0.1:+80\""), 4, "routes[0].listen[0]",
     "\"127.0.0.1:+80\": port is not a number"},
    {LISTEN("\"::1:8080\""), 4, "routes[0].listen[0]",
     "\"::1:8080\": IPv6 addresses must be in brackets, e.g. \"[::1]:8080\""},
    {UPSTREAM("\"::1\""), 5, "routes[0].upstreams[0]",
     "\"::1\": IPv6 addresses must be in brackets, e.g. \"[::1]:8080\""},
    {LISTEN("\"[::1]8080\""), 4, "routes[0].listen[0]",
     "\"[::1]8080\": missing port (expected \"[v6]:port\")"},
    {LISTEN("\"[::1:8080\""), 4, "routes[0].listen[0]",
     "\"[::1:8080\": missing ']' after the IPv6 address"},
    {LISTEN("\"[zz]:80\""), 4, "routes[0].listen[0]", "\"[zz]:80\": not an IPv6 address"},
    {LISTEN("\"[127.0.0.1]:80\""), 4, "routes[0].listen[0]",
     "\"[127.0.0.1]:80\": not an IPv6 address"},
    {LISTEN("\"[fe80::1%eth0]:80\""), 4, "routes[0].listen[0]",
     "\"[fe80::1%eth0]:80\": IPv6 scope ids (%) are not supported"},
    {UPSTREAM("\"exa mple.com:80\""), 5, "routes[0].upstreams[0]",
     "\"exa mple.com:80\": host names have only letters, digits, '-', '_' and '.'"},
    {UPSTREAM("\"256.0.0.1:80\""), 5, "routes[0].upstreams[0]",
     "\"256.0.0.1:80\": not an IPv4 address (host names are not resolved; only "
     "\"localhost\" is known)"},
    {LISTEN("\":80\""), 4, "routes[0].listen[0]",
     "\":80\": missing host before ':' (use \"*:port\" for all)"},
    {LISTEN("\"\""), 4, "routes[0].listen[0]", "\"\": empty address"},
    {LISTEN("\"unix:relative.sock\""), 4, "routes[0].listen[0]",
     "\"unix:relative.sock\": unix socket path must be absolute"},
    {LISTEN("\"unix:\""), 4, "routes[0].listen[0]", "\"unix:\": empty unix socket path"},
    {UPSTREAM("\"unix:@\""), 5, "routes[0].upstreams[0]", "\"unix:@\": empty abstract socket name"},
    {LISTEN("\"unix:" P107 "3\""), 4, "routes[0].listen[0]",
     "\"unix:" P107 "3\": unix socket path too long (at most 107 bytes)"},
    {LISTEN("\"unix:@" P107 "3\""), 4, "routes[0].listen[0]",
     "\"unix:@" P107 "3\": abstract socket name too long (at most 107 bytes)"},
    {LISTEN("\"unix:" P107 P107 "\""), 4, "routes[0].listen[0]",
     "\"unix:" P107 "/run/aaaaaaaaabbbbbbbbbbccccccccccddddddddddeeee...\": address too long "
     "(at most 127 characters)"},
    {UPSTREAM("\"systemd:web\""), 5, "routes[0].upstreams[0]",
     "\"systemd:web\": systemd: sockets can only be used to listen"},
    {LISTEN("\"systemd:\""), 4, "routes[0].listen[0]", "\"systemd:\": empty systemd socket name"},
    {LISTEN("\"systemd:we b\""), 4, "routes[0].listen[0]",
     "\"systemd:we b\": systemd socket name may only use A-Z a-z 0-9 _ . - :"},
    {UPSTREAM("\"*:80\""), 5, "routes[0].upstreams[0]",
     "\"*:80\": an upstream cannot be a wildcard address"},
    {UPSTREAM("\"0.0.0.0:80\""), 5, "routes[0].upstreams[0]",
     "\"0.0.0.0:80\": an upstream cannot be an unspecified address"},
    {UPSTREAM("\"[::]:80\""), 5, "routes[0].upstreams[0]",
     "\"[::]:80\": an upstream cannot be an unspecified address"},
    {LISTEN("\"bad\\n\\\"quote\""), 4, "routes[0].listen[0]",
     "\"bad\\x0a\\\"quote\": missing port (expected \"host:port\")"},
};

/* Two routes; the second starts on line 3. */
#define TWO(l1, l2)                                                                                \
        "routes = (\n  { name = \"a\"; listen = [ " l1 " ]; upstreams = [ \"127.0.0.1:1\" ]; },\n" \
        "  { name = \"b\";\n    listen = [ " l2                                                    \
        " ];\n    upstreams = [ \"127.0.0.1:1\" ]; }\n);\n"

static const struct bad cross_cases[] = {
    {ROUTE("\"unix:@front\", \"127.0.0.1:8080\"", "\"unix:@back\", \"localhost:8080\"", ""), 5,
     "routes[0].upstreams[1]",
     "\"localhost:8080\": is this daemon's own listener routes[0].listen[1] (line 4); "
     "connections would loop"},
    {"routes = (\n  { name = \"a\"; listen = [ \"unix:/run/a.sock\" ];\n    upstreams = [ "
     "\"127.0.0.1:9\" ]; },\n  { name = \"b\"; listen = [ \"127.0.0.1:8\" ];\n    upstreams = [ "
     "\"unix:/run/a.sock\" ]; }\n);\n",
     5, "routes[1].upstreams[0]",
     "\"unix:/run/a.sock\": is this daemon's own listener routes[0].listen[0] (line 2); "
     "connections would loop"},
    {LISTEN("\"127.0.0.1:8080\", \"127.0.0.1:8080\""), 4, "routes[0].listen[1]",
     "\"127.0.0.1:8080\": already used by routes[0].listen[0] (line 4)"},
    {LISTEN("\"127.0.0.1:8080\", \"localhost:8080\""), 4, "routes[0].listen[1]",
     "\"localhost:8080\": already used by routes[0].listen[0] (line 4)"},
    {TWO("\"127.0.0.1:8080\"", "\"[::1]:9\", \"127.0.0.1:8080\""), 4, "routes[1].listen[1]",
     "\"127.0.0.1:8080\": already used by routes[0].listen[0] (line 2)"},
    {TWO("\"[::1]:80\"", "\"[0:0::1]:80\""), 4, "routes[1].listen[0]",
     "\"[0:0::1]:80\": already used by routes[0].listen[0] (line 2)"},
    {TWO("\"unix:/run/a.sock\"", "\"unix:/run/a.sock\""), 4, "routes[1].listen[0]",
     "\"unix:/run/a.sock\": already used by routes[0].listen[0] (line 2)"},
    {TWO("\"unix:@a\"", "\"unix:@b\", \"unix:@a\""), 4, "routes[1].listen[1]",
     "\"unix:@a\": already used by routes[0].listen[0] (line 2)"},
    {TWO("\"systemd:web\"", "\"systemd:web\""), 4, "routes[1].listen[0]",
     "\"systemd:web\": already used by routes[0].listen[0] (line 2)"},
    {TWO("\"*:8080\"", "\"0.0.0.0:8080\""), 4, "routes[1].listen[0]",
     "\"0.0.0.0:8080\": overlaps \"*:8080\" in routes[0].listen[0] (line 2)"},
    {TWO("\"[::]:8080\"", "\"*:8080\""), 4, "routes[1].listen[0]",
     "\"*:8080\": overlaps \"[::]:8080\" in routes[0].listen[0] (line 2)"},
    {"routes = (\n  { name = \"a\"; listen = [ \"127.0.0.1:1\" ]; upstreams = [ "
     "\"127.0.0.1:9\" ]; },\n  { name = \"b\"; listen = [ \"127.0.0.1:2\" ]; upstreams = [ "
     "\"127.0.0.1:9\" ]; },\n  { name = \"a\"; listen = [ \"127.0.0.1:3\" ]; upstreams = [ "
     "\"127.0.0.1:9\" ]; }\n);\n",
     4, "routes[2].name", "\"a\": route name already used by routes[0] (line 2)"},
};

static bool run_table(const struct bad *cases, size_t n)
{
        size_t i, failures = 0;

        for (i = 0; i < n; i++) {
                if (!test_error_is(cases[i].text, cases[i].line, cases[i].setting,
                                   cases[i].message)) {
                        print_error("^^^ case %zu failed\n", i);
                        failures++;
                }
        }
        return failures == 0;
}

#define TABLE_TEST(name, table)                                                                    \
        static void name(void **state)                                                             \
        {                                                                                          \
                assert_true(run_table(table, sizeof(table) / sizeof(table[0])));                   \
        }

TABLE_TEST(test_global_errors, global_cases)
TABLE_TEST(test_route_errors, route_cases)
TABLE_TEST(test_address_errors, addr_cases)
TABLE_TEST(test_cross_route_errors, cross_cases)

/* Limits on list sizes: a file cannot make us allocate without bound. */
static void test_list_limits(void **state)
{
        size_t cap = 1 << 20, i;
        char *text = malloc(cap);
        size_t pos;

        assert_non_null(text);
        pos = (size_t)snprintf(text, cap,
                               "routes = ( { name = \"a\"; upstreams = [ "
                               "\"127.0.0.1:1\" ]; listen = [ ");
        for (i = 0; i < 257; i++)
                pos += (size_t)snprintf(text + pos, cap - pos, "%s\"127.0.0.1:%zu\"", i ? ", " : "",
                                        i + 1);
        snprintf(text + pos, cap - pos, " ]; } );\n");
        assert_true(
            test_error_is(text, 1, "routes[0].listen", "too many entries (257, at most 256)"));
        free(text);
}

const struct CMUnitTest error_tests[] = {
    cmocka_unit_test(test_global_errors),  cmocka_unit_test(test_route_errors),
    cmocka_unit_test(test_address_errors), cmocka_unit_test(test_cross_route_errors),
    cmocka_unit_test(test_list_limits),
};
const size_t n_error_tests = sizeof(error_tests) / sizeof(error_tests[0]);
