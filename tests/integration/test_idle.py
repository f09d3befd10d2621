#!/usr/bin/env python3
"""Idle timeout (route idle_timeout = 1), run for splice and copy.

Connection A does one echo round trip and then stays silent: the proxy must close it between
0.8 s and 2.6 s after the last byte, and log end=idle_timeout.
Connection B, at the same time, does an echo round trip every 0.3 s for 2.4 s: it must never be
closed; it then closes itself and is logged with end=client_closed.
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402

PING = b"ping!"


def idle_conn(listen):
    c = ev.connect(listen)
    try:
        ev.echo_roundtrip(c, PING)
        t_last = time.monotonic()
        how, got = ev.wait_closed(c, 5)
        return how, got, time.monotonic() - t_last
    finally:
        c.close()


def active_conn(listen):
    c = ev.connect(listen)
    n = 0
    try:
        t_end = time.monotonic() + 2.4
        while time.monotonic() < t_end:
            ev.echo_roundtrip(c, PING, timeout=2)
            n += 1
            time.sleep(0.3)
    finally:
        c.close()
    return n


def run(ctx, mode):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    listen = ctx.addr("tcp4")
    routes = [{"name": "idle", "listen": [listen], "upstreams": [echo.addr], "idle_timeout": 1}]
    d = ctx.daemon(ev.make_config(routes, forwarding=mode)).start()
    ta = ev.Task(idle_conn, listen, name="idle")
    tb = ev.Task(active_conn, listen, name="active")
    how, got, after = ta.join(10)
    pings = tb.join(10)
    print("  idle connection closed (%s) %.2fs after its last byte; active one did %d pings"
          % (how, after, pings))
    check(got == 0, "idle connection received %d stray bytes" % got)
    check(0.8 <= after <= 2.6, "idle connection closed %.2fs after its last byte, want ~1s"
          % after)
    check(pings >= 6, "active connection did only %d round trips" % pings)
    acc = d.wait_access(2, route="idle")
    idle = [a for a in acc if a["bytes_in"] == len(PING)]
    active = [a for a in acc if a["bytes_in"] == len(PING) * pings]
    check(len(idle) == 1 and len(active) == 1, "cannot tell the two connections apart: %s" % acc)
    check(idle[0]["end"] == "idle_timeout", "idle connection end=%s, want idle_timeout"
          % idle[0]["end"])
    check(active[0]["end"] == "client_closed", "active connection end=%s, want client_closed"
          % active[0]["end"])
    check(active[0]["bytes_out"] == len(PING) * pings, "active bytes_out=%d"
          % active[0]["bytes_out"])
    check(active[0]["duration_ms"] >= 2000, "active duration_ms=%d" % active[0]["duration_ms"])
    d.stop()


@ev.test
def idle_splice(ctx):
    run(ctx, "splice")


@ev.test
def idle_copy(ctx):
    run(ctx, "copy")


if __name__ == "__main__":
    ev.main(__doc__)
