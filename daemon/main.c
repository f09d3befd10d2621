/* evproxyd command line: evproxyd [-c FILE] [-H SOCKET] [-t] [-V] [-h]. Runs in the foreground;
 * logs go to stderr with "<N>" priority prefixes. -t loads and validates the configuration and
 * exits 0, or 1 after printing "file:line: setting: message" (like nginx -t). */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include <evproxy/config.h>

#include "daemon.h"
#include "dns.h"
#include "handover.h"
#include "log.h"

#define DEFAULT_CONFIG "/etc/evproxy/evproxy.conf"

static void usage(FILE *f)
{
        fprintf(f, "Usage: evproxyd [-c FILE] [-H SOCKET] [-t] [-V] [-h]\n"
                   "Forward TCP and unix-socket connections to upstream servers.\n\n"
                   "  -c FILE  configuration file (default " DEFAULT_CONFIG ")\n"
                   "  -H SOCKET take over from the evproxyd listening on SOCKET, if any,\n"
                   "           then listen there for the next one (restart without a drop)\n"
                   "  -t       check the configuration and exit\n"
                   "  -V       print the version and exit\n"
                   "  -h       print this help and exit\n");
}

static int check_config(const char *path)
{
        struct cfg_error err = {0};
        char msg[sizeof(err) + 64];
        struct cfg *cfg = NULL;
        int r;

        r = cfg_load(path, &cfg, &err);
        if (r < 0) {
                cfg_error_format(&err, msg, sizeof(msg));
                log_error("%s", msg);
                log_error("configuration file %s test failed", path);
                return 1;
        }
        dns_check_names(cfg); /* warns only: names may resolve later */
        cfg_free(cfg);
        log_notice("configuration file %s test is successful", path);
        return 0;
}

/* Connections cost file descriptors: use all the hard limit allows. */
static void raise_nofile_limit(void)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
                log_warning_errno(-errno, "getrlimit(RLIMIT_NOFILE)");
                return;
        }
        if (rl.rlim_cur == rl.rlim_max)
                return;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
                log_warning_errno(-errno, "raising the open-file limit");
}

int main(int argc, char **argv)
{
        const char *path = DEFAULT_CONFIG;
        bool test = false;
        int opt;

        while ((opt = getopt(argc, argv, "c:H:tVh")) != -1) {
                switch (opt) {
                case 'c':
                        path = optarg;
                        break;
                case 'H':
                        handover_configure(optarg);
                        break;
                case 't':
                        test = true;
                        break;
                case 'V':
                        printf("evproxyd %s\n", EVPROXY_VERSION);
                        return 0;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "evproxyd: unexpected argument '%s'\n", argv[optind]);
                usage(stderr);
                return 2;
        }
        if (test)
                return check_config(path);
        signal(SIGPIPE, SIG_IGN);
        raise_nofile_limit();
        return daemon_run(path);
}
