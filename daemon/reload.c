/* SIGHUP: configuration reload. Issue 6 fills this in: load and validate the new file, keep the
 * old configuration on error, diff listeners (cfg_diff_listeners), open added ones, post the new
 * listener set and routes to every worker, let removed ones close, leave connections alone. */
#include <errno.h>

#include "daemon.h"
#include "log.h"

int daemon_reload(struct daemon *d)
{
        log_notice("SIGHUP: configuration reload is not supported yet; still running on %s",
                   d->cfg->path ? d->cfg->path : "the loaded configuration");
        return -EOPNOTSUPP;
}
