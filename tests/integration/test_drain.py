#!/usr/bin/env python3
"""SIGTERM: stop accepting, drain, exit 0.

drain_finishes: drain_timeout = 10 and one held connection. After SIGTERM a new connection is
not served (refused, or closed within 2 s without reaching the upstream); the held one still
works; once it closes, the daemon exits 0 within 3 s (long before the drain deadline).
drain_deadline: drain_timeout = 1 and one held idle connection. After SIGTERM the daemon closes
it after about 1 s (EOF/RST within 5 s), logs end=shutdown and exits 0.
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402


def setup(ctx, drain):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    listen = ctx.addr("tcp4")
    routes = [{"name": "r", "listen": [listen], "upstreams": [echo.addr]}]
    d = ctx.daemon(ev.make_config(routes, drain_timeout=drain)).start()
    c = ev.connect(listen)
    ev.echo_roundtrip(c, b"before")
    return d, echo, listen, c


@ev.test
def drain_finishes(ctx):
    d, echo, listen, c = setup(ctx, 10)
    try:
        d.terminate()
        time.sleep(0.5)
        try:
            n = ev.connect(listen, timeout=2)
            try:
                how, got = ev.wait_closed(n, 2)
                check(got == 0, "new connection during drain got %d bytes" % got)
            finally:
                n.close()
        except ConnectionRefusedError:
            pass
        check(echo.count() == 1, "a connection made after SIGTERM reached the upstream")
        ev.echo_roundtrip(c, b"during drain")
    finally:
        c.close()
    t0 = time.monotonic()
    d.wait_exit(3)
    print("  exited %.2fs after the last connection closed" % (time.monotonic() - t0))
    a = d.access(route="r")
    check(any(x["end"] == "client_closed" and x["bytes_in"] == 18 for x in a),
          "held connection not logged as client_closed with 18 bytes: %s" % a)


@ev.test
def drain_deadline(ctx):
    d, echo, listen, c = setup(ctx, 1)
    try:
        t0 = d.terminate()
        how, got = ev.wait_closed(c, 5)
        dt = time.monotonic() - t0
        print("  held connection closed (%s) %.2fs after SIGTERM" % (how, dt))
        check(dt >= 0.8, "held connection closed %.2fs after SIGTERM, before the 1 s drain "
              "deadline" % dt)
    finally:
        c.close()
    d.wait_exit(4)
    a = d.access(route="r")
    check(len(a) == 1 and a[0]["end"] == "shutdown", "want one end=shutdown line: %s" % a)


if __name__ == "__main__":
    ev.main(__doc__)
