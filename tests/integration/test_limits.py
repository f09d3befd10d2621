#!/usr/bin/env python3
"""Connection limits (per route and global).

route_limit: route max_connections = 5. Five held connections all work; a sixth is closed by the
proxy at once (EOF/RST within 2 s, never reaches the upstream) and logged end=limit; the five
still work; after one of them closes (its access line is out), a new connection works.
global_limit: global max_connections = 5 over two routes (3 + 2 held). A sixth on either route
is closed and logged end=limit; after one closes, a new one on the other route works.
(workers = 2, so a limit that is counted per worker fails here.)
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402


def open_working(listen, tag):
    c = ev.connect(listen)
    ev.echo_roundtrip(c, b"conn " + tag.encode())
    return c


def expect_rejected(listen, what):
    c = ev.connect(listen)
    try:
        t0 = time.monotonic()
        try:
            c.sendall(b"should not pass")
        except OSError:
            pass
        how, got = ev.wait_closed(c, 2.0)
        check(got == 0, "%s: over-limit connection got %d bytes back" % (what, got))
        return how, time.monotonic() - t0
    finally:
        c.close()


def new_one_works(listen, what, within=2.0):
    """After a slot was freed, a new connection must work (retried for `within` seconds, for a
    daemon that logs the close before it frees the slot)."""
    dl = ev.deadline(within)
    last = None
    for attempt in range(50):
        try:
            c = open_working(listen, "%s-after-%d" % (what, attempt))
            return c, attempt
        except (OSError, ev.TestFailure) as e:
            last = e
        if time.monotonic() >= dl:
            break
        time.sleep(0.1)
    raise ev.TestFailure("%s: no new connection worked within %.1fs after a slot was freed "
                         "(%s)" % (what, within, last))


@ev.test
def route_limit(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    listen = ctx.addr("tcp4")
    routes = [{"name": "lim", "listen": [listen], "upstreams": [echo.addr],
               "max_connections": 5}]
    d = ctx.daemon(ev.make_config(routes, workers=2)).start()
    held = [open_working(listen, "h%d" % i) for i in range(5)]
    check(echo.count() == 5, "echo saw %d connections" % echo.count())
    how, dt = expect_rejected(listen, "route limit")
    print("  6th connection closed (%s) after %.2fs" % (how, dt))
    d.wait_access(1, route="lim", end="limit")
    check(echo.count() == 5, "over-limit connection reached the upstream")
    for i, c in enumerate(held):
        ev.echo_roundtrip(c, b"still alive %d" % i)
    held.pop(0).close()
    d.wait_access(1, route="lim", end="client_closed")
    c, attempts = new_one_works(listen, "route limit")
    held.append(c)
    check(len(d.access(route="lim", end="limit")) == 1 + attempts,
          "limit lines do not match rejected connections")
    # and we are at the limit again
    expect_rejected(listen, "route limit (again)")
    d.wait_access(2 + attempts, route="lim", end="limit")
    for c in held:
        c.close()
    d.wait_access(6, route="lim", end="client_closed")
    d.stop()


@ev.test
def global_limit(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    la, lb = ctx.addr("tcp4"), ctx.addr("unix")
    routes = [{"name": "a", "listen": [la], "upstreams": [echo.addr]},
              {"name": "b", "listen": [lb], "upstreams": [echo.addr]}]
    d = ctx.daemon(ev.make_config(routes, workers=2, max_connections=5)).start()
    held_a = [open_working(la, "a%d" % i) for i in range(3)]
    held_b = [open_working(lb, "b%d" % i) for i in range(2)]
    expect_rejected(la, "global limit on a")
    expect_rejected(lb, "global limit on b")
    d.wait_access(1, route="a", end="limit")
    d.wait_access(1, route="b", end="limit")
    check(echo.count() == 5, "echo saw %d connections, want 5" % echo.count())
    for c in held_a + held_b:
        ev.echo_roundtrip(c, b"still alive")
    held_b.pop().close()
    d.wait_access(1, route="b", end="client_closed")
    c, _ = new_one_works(la, "global limit")
    held_a.append(c)
    expect_rejected(lb, "global limit on b (again)")
    for c in held_a + held_b:
        c.close()
    d.wait_access(4, route="a", end="client_closed")
    d.stop()


if __name__ == "__main__":
    ev.main(__doc__)
