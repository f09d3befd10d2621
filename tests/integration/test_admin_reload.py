#!/usr/bin/env python3
"""`evproxyctl reload` returns only once every worker applied the new configuration.

Run with the evproxyd_slow_reload build (slow_reload.c), whose workers hear of each reload
300 ms after it was loaded, so an answer given before they applied it is caught, not just
unlikely.

reload_waits_for_workers: with 4 workers, a route alternately pointed at A and B by 6 reloads;
  each `evproxyctl reload` takes at least the 300 ms, and the connections made right after it
  returns (one per worker and more) all follow the new route.
sighup_then_ctl_reload: a SIGHUP reload under way when `evproxyctl reload` asks for another:
  the answer comes from the reload that read the file after the request (the newest route).
"""

import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402
import admin_util as au  # noqa: E402

DELAY = 0.3  # slow_reload.c's EVTEST_RELOAD_DELAY_MS


@ev.test
def reload_waits_for_workers(ctx):
    a, b = (ctx.server("tcp4", ev.echo_handler, name=n) for n in "ab")
    listen = ctx.addr("tcp4")
    route = {"name": "web", "listen": [listen], "upstreams": [a.addr]}
    d, sock = au.start(ctx, [route], workers=4)
    for i in range(6):
        to, away = (b, a) if i % 2 == 0 else (a, b)
        d.rewrite(au.config(ctx, [dict(route, upstreams=[to.addr])], workers=4))
        t0 = time.monotonic()
        rc, out, err = au.ctl(ctx, sock, "reload")
        took = time.monotonic() - t0
        check(rc == 0, "reload %d: %s" % (i, err))
        check(took >= DELAY, "reload %d answered after %.3fs, before the workers" % (i, took))
        au.check_goes_to(listen, to, [away], 8)
    d.stop()


@ev.test
def sighup_then_ctl_reload(ctx):
    a, b, c = (ctx.server("tcp4", ev.echo_handler, name=n) for n in "abc")
    listen = ctx.addr("tcp4")
    route = {"name": "web", "listen": [listen], "upstreams": [a.addr]}
    d, sock = au.start(ctx, [route], workers=2)
    d.rewrite(au.config(ctx, [dict(route, upstreams=[b.addr])], workers=2))
    start = len(d.lines)
    os.kill(d.pid, signal.SIGHUP)
    d.wait_line(r"reloaded ", 5, start=start)  # loaded; the workers hear of it 300 ms later
    d.rewrite(au.config(ctx, [dict(route, upstreams=[c.addr])], workers=2))
    rc, out, err = au.ctl(ctx, sock, "reload")
    check(rc == 0, "reload: %s" % err)
    check(d.count_lines(r"reloaded ") == 2, "the asked-for reload did not run")
    au.check_goes_to(listen, c, [a, b], 6)
    d.stop()


if __name__ == "__main__":
    ev.main(__doc__)
