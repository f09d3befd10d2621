#!/usr/bin/env python3
"""Upstream choice on connect failure.

refused_then_next: routes whose first upstreams refuse (a TCP port / unix path bound but not
listening, an abstract name nobody holds) and whose last one is an echo server: every
connection must work and be logged with upstream=<the echo server>.
all_refused: a route whose upstreams all refuse: the client is closed (EOF or RST) within 5 s
without a byte, the access log says end=connect_failed upstream=-, and the warning says how many
servers were tried and which one failed last, with its error.
connect_timeout_then_next: a black-hole TCP upstream (connect hangs) before an echo server, with
connect_timeout = 0.5: every connection works within a few seconds.
"""

import os
import re
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402

N_CONNS = 6


def use_route(d, name, listen, echo, n=N_CONNS, within=5.0):
    for i in range(n):
        t0 = time.monotonic()
        c = ev.connect(listen)
        try:
            ev.echo_roundtrip(c, b"hello %d through %s" % (i, name.encode()), timeout=within)
        finally:
            c.close()
        check(time.monotonic() - t0 < within, "%s: connection %d took %.1fs"
              % (name, i, time.monotonic() - t0))
    acc = d.wait_access(n, route=name)
    check(len(acc) == n, "%s: %d access lines, want %d" % (name, len(acc), n))
    for a in acc:
        check(a["upstream"] == echo.addr.conf,
              "%s: logged upstream=%s, want %s" % (name, a["upstream"], echo.addr.conf))
        check(a["end"] in ("client_closed", "upstream_closed"), "%s: end=%s" % (name, a["end"]))
    check(echo.count() == n, "%s: echo server saw %d connections, want %d"
          % (name, echo.count(), n))


@ev.test
def refused_then_next(ctx):
    refusers = {k: ctx.refusing(k) for k in ("tcp4", "tcp6", "unix")}
    nobody = ctx.addr("abstract", "nobody")  # never bound: connect() is refused
    echo_tcp = ctx.server("tcp4", ev.echo_handler, name="echo-tcp4")
    echo_unix = ctx.server("unix", ev.echo_handler, name="echo-unix")
    l1, l2 = ctx.addr("tcp4"), ctx.addr("unix")
    routes = [
        {"name": "next_tcp", "listen": [l1],
         "upstreams": [refusers["tcp4"].addr, refusers["tcp6"].addr, echo_tcp.addr]},
        {"name": "next_unix", "listen": [l2],
         "upstreams": [refusers["unix"].addr, nobody, echo_unix.addr]},
    ]
    d = ctx.daemon(ev.make_config(routes)).start()
    use_route(d, "next_tcp", l1, echo_tcp)
    use_route(d, "next_unix", l2, echo_unix)
    d.stop()


@ev.test
def all_refused(ctx):
    r1 = ctx.refusing("tcp4")
    r2 = ctx.refusing("unix")
    listen = ctx.addr("tcp4")
    routes = [{"name": "dead", "listen": [listen], "upstreams": [r1.addr, r2.addr]}]
    d = ctx.daemon(ev.make_config(routes)).start()
    for i in range(3):
        c = ev.connect(listen)
        try:
            t0 = time.monotonic()
            how, got = ev.wait_closed(c, 5)
            check(got == 0, "all refused: client received %d bytes" % got)
            print("  connection %d closed by the proxy (%s) after %.2fs"
                  % (i, how, time.monotonic() - t0))
        finally:
            c.close()
    acc = d.wait_access(3, route="dead")
    check(len(acc) == 3, "%d access lines, want 3" % len(acc))
    for a in acc:
        check(a["end"] == "connect_failed", "end=%s, want connect_failed" % a["end"])
        check(a["upstream"] == "-", "upstream=%s, want -" % a["upstream"])
        check(a["bytes_in"] == 0 and a["bytes_out"] == 0, "bytes counted: %s" % a)
    last = "(%s|%s)" % (re.escape(r1.addr.conf), re.escape(r2.addr.conf))
    _, m = d.wait_line(r"route dead: client \S+: no upstream reachable \((\d+) tried, last %s\): "
                       r"Connection refused" % last, 5)
    check(m.group(1) == "2", "tried %s servers, want 2: %s" % (m.group(1), m.group(0)))
    d.stop()


@ev.test
def connect_timeout_then_next(ctx):
    bh = ev.BlackHoleAddr()
    ctx.defer(bh.close)
    if not bh.works:
        print("  note: this kernel answers SYNs to a full accept queue; black hole not possible")
        return
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    listen = ctx.addr("tcp4")
    routes = [{"name": "slow", "listen": [listen], "upstreams": [bh.addr, echo.addr],
               "connect_timeout": 0.5}]
    d = ctx.daemon(ev.make_config(routes)).start()
    use_route(d, "slow", listen, echo, n=4, within=4.0)
    d.stop()


if __name__ == "__main__":
    ev.main(__doc__)
