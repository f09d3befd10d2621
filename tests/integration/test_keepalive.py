#!/usr/bin/env python3
"""TCP keepalive and user timeout (issue 16), in a network namespace of the test's own
(netns.py), where an nftables rule added after the connection is established drops every packet
of one side, as a peer that vanished.

upstream_keepalive: upstream_keepalive = { idle = 1; interval = 1; count = 2; }; the upstream's
packets are dropped once a connection is up: the daemon ends it within 2-6 s with
end=peer_timeout, logs that the upstream peer timed out, and the client sees the close.
client_keepalive: the same on the client side; the upstream sees the close.
user_timeout: upstream_user_timeout = 2 without keepalive; the client sends data that the
upstream never acknowledges: closed within 2-7 s, end=peer_timeout.
no_keepalive: without the keys the same dropped upstream is not noticed within 5 s (the test
of the test: the close above comes from the settings).
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
import netns  # noqa: E402
from evtest import check  # noqa: E402

KA = {"idle": 1, "interval": 1, "count": 2}


def drop_port(ctx, port):
    """Drop every TCP packet from or to port (both directions pass the output hook on lo)."""
    netns.run("nft", "add table inet evtest")
    netns.run("nft", "add chain inet evtest out { type filter hook output priority 0; }")
    netns.run("nft", "add rule inet evtest out tcp dport %d drop" % port)
    netns.run("nft", "add rule inet evtest out tcp sport %d drop" % port)
    ctx.defer(lambda: netns.run("nft", "delete table inet evtest"))
    return time.monotonic()


def setup(ctx, **route_keys):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    listen = ctx.addr("tcp4")
    route = {"name": "ka", "listen": [listen], "upstreams": [echo.addr]}
    route.update(route_keys)
    d = ctx.daemon(ev.make_config([route])).start()
    c = ev.connect(listen)
    ev.echo_roundtrip(c, b"established")
    rec = echo.wait_conns(1)[0]
    return echo, listen, d, c, rec


def closed_within(sock, t0, lo, hi, what):
    how, _ = ev.wait_closed(sock, hi + 2.0)
    dt = time.monotonic() - t0
    print("  %s: closed (%s) %.1fs after the drop" % (what, how, dt))
    check(lo <= dt <= hi, "%s: closed after %.1fs, want %g..%g s" % (what, dt, lo, hi))


def upstream_closed_within(rec, t0, lo, hi):
    """The echo server's connection ended (its handler thread owns the socket and reads it:
    a second reader here would race it, and find the socket closed under it)."""
    check(rec.done.wait(hi + 2.0), "upstream: still open %.1fs after the drop" % (hi + 2.0))
    dt = time.monotonic() - t0
    print("  upstream: closed (%s) %.1fs after the drop"
          % ("reset" if rec.error == "ConnectionResetError" else rec.error or "eof", dt))
    check(lo <= dt <= hi, "upstream: closed after %.1fs, want %g..%g s" % (dt, lo, hi))


@ev.test
def upstream_keepalive(ctx):
    echo, listen, d, c, rec = setup(ctx, upstream_keepalive=KA)
    t0 = drop_port(ctx, echo.addr.value)
    closed_within(c, t0, 2.0, 6.0, "client")
    d.wait_access(1, route="ka", end="peer_timeout", timeout=3)
    d.wait_line(r"the upstream peer timed out", 3)
    c.close()
    d.stop()


@ev.test
def client_keepalive(ctx):
    echo, listen, d, c, rec = setup(ctx, client_keepalive=KA)
    t0 = drop_port(ctx, listen.value)
    upstream_closed_within(rec, t0, 2.0, 6.0)
    d.wait_access(1, route="ka", end="peer_timeout", timeout=3)
    d.wait_line(r"the client peer timed out", 3)
    c.close()
    d.stop()


@ev.test
def user_timeout(ctx):
    echo, listen, d, c, rec = setup(ctx, upstream_user_timeout=2)
    t0 = drop_port(ctx, echo.addr.value)
    c.sendall(b"x" * 1000)  # the daemon sends it on; nothing comes back
    closed_within(c, t0, 2.0, 7.0, "client")
    d.wait_access(1, route="ka", end="peer_timeout", timeout=3)
    c.close()
    d.stop()


@ev.test
def no_keepalive(ctx):
    echo, listen, d, c, rec = setup(ctx)
    drop_port(ctx, echo.addr.value)
    try:
        ev.wait_closed(c, 5.0)
        raise ev.TestFailure("closed without keepalive: the test cannot tell")
    except ev.TestFailure as e:
        check("did not close" in str(e), str(e))
    check(not d.access(route="ka"), "a connection ended: %s" % d.access(route="ka"))
    c.close()
    d.stop()


if __name__ == "__main__":
    netns.reexec_in_netns(ev)
    ev.main(__doc__)
