#!/usr/bin/env python3
"""Per-client limits (issue 16), run in a network namespace of the test's own (netns.py).

per_address: route max_connections_per_client = 20; 500 connections from 127.0.0.1: exactly 20
held (they echo), 480 closed at once with end=client_limit and counted in
evproxy_route_refused_client_limit_total; 127.0.0.2 still gets through; after the held ones
close, 127.0.0.1 gets through again (the entry was released).
ipv6_prefix: top-level max_connections_per_client = 20 and client_prefix6 = 64; 200 addresses
of one /64 added to lo, two connections from each: 20 held, 380 refused; a client of another
/64 gets through.
table_full: client_table_size = 64, client_prefix6 = 128, max_connections_per_client = 1 and
200 clients (one /128 each) holding one connection: the table cannot hold them all, so the
ones without a slot pass unlimited (fail open): all 200 are held, evproxy_client_table_full_total
counts them, capacity is 64, and the warning is logged once; when every client has gone the
entries are freed.
behind_proxy: accept_proxy_protocol = true and max_connections_per_client = 2: every connection
comes from 127.0.0.1, the PROXY header names the client; three claiming 198.51.100.7: two
held, the third end=client_limit (after its header); one claiming 198.51.100.8 passes.
rate: client_rate = { per_second = 50; burst = 10; } and connections attempted every 4 ms for
5 s: the ones let through are within 10 % of burst + 50/s x elapsed; the rest end=rate_limited.
"""

import os
import select
import socket
import sys
import time
import urllib.request

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
import netns  # noqa: E402
from evtest import check  # noqa: E402


def metric(port, name, route=None):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    want = name + ('{route="%s"}' % route if route else "")
    for line in text.splitlines():
        if line.startswith(want + " "):
            return int(line.split()[1])
    raise ev.TestFailure("no sample %s in /metrics" % want)


def open_from(src, dst, family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(ev.IO_TIMEOUT)
    try:
        s.bind((src, 0))
        s.connect(dst)
    except BaseException:
        s.close()
        raise
    return s


def split_closed(socks, timeout=10.0):
    """(open, closed): a socket the daemon closed reads EOF or a reset."""
    closed, live = [], []
    for s in socks:
        r, _, _ = select.select([s], [], [], 0)
        if not r:
            live.append(s)
            continue
        try:
            s.setblocking(False)
            data = s.recv(16)
        except (ConnectionResetError, BlockingIOError):
            data = b""
        check(data == b"", "a refused connection got bytes: %r" % data)
        closed.append(s)
    return live, closed


def check_held(live, what):
    for i, s in enumerate(live):
        s.setblocking(True)
        ev.echo_roundtrip(s, b"%s held %d" % (what.encode(), i))


def close_all(socks):
    for s in socks:
        s.close()


@ev.test
def per_address(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    listen, mport = ctx.addr("tcp4"), ev.free_port()
    routes = [{"name": "cl", "listen": [listen], "upstreams": [echo.addr],
               "max_connections_per_client": 20}]
    d = ctx.daemon(ev.make_config(routes, metrics={"listen": "127.0.0.1:%d" % mport})).start()
    socks = []
    try:
        for _ in range(500):
            socks.append(open_from("127.0.0.1", listen.sockaddr))
        d.wait_access(480, route="cl", end="client_limit", timeout=30)
        echo.wait_conns(20)
        live, closed = split_closed(socks)
        check(len(live) == 20 and len(closed) == 480,
              "%d held, %d closed (want 20, 480)" % (len(live), len(closed)))
        check_held(live, "127.0.0.1")
        check(echo.count() == 20, "the upstream saw %d connections, want 20" % echo.count())
        check(metric(mport, "evproxy_route_refused_client_limit_total", "cl") == 480,
              "refused counter is not 480")
        other = [open_from("127.0.0.2", listen.sockaddr) for _ in range(5)]
        check_held(other, "127.0.0.2")
        socks += other
        close_all(live)
        d.wait_access(20, route="cl", end="client_closed", timeout=10)
        again = open_from("127.0.0.1", listen.sockaddr)
        socks.append(again)
        check_held([again], "127.0.0.1 again")
        print("  500 from 127.0.0.1: 20 held, 480 refused; 127.0.0.2 unaffected")
    finally:
        close_all(socks)
    d.stop()


def add_prefix_addresses(prefix, n):
    cmds = "".join("address add %s%x/64 dev lo nodad\n" % (prefix, i + 1) for i in range(n))
    p = netns.subprocess.run(["ip", "-6", "-batch", "-"], input=cmds.encode(), timeout=30,
                             stdout=netns.subprocess.PIPE, stderr=netns.subprocess.STDOUT)
    check(p.returncode == 0, "ip -batch: %s" % p.stdout.decode(errors="replace"))
    return ["%s%x" % (prefix, i + 1) for i in range(n)]


@ev.test
def ipv6_prefix(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    srcs = add_prefix_addresses("2001:db8:1::", 200)
    other = add_prefix_addresses("2001:db8:2::", 1)[0]
    here = add_prefix_addresses("2001:db8:ff::", 1)[0]
    port = ev.free_port()
    routes = [{"name": "v6", "listen": ["[%s]:%d" % (here, port)], "upstreams": [echo.addr]}]
    d = ctx.daemon(ev.make_config(routes, max_connections_per_client=20,
                                  client_prefix6=64)).start()
    dst = (here, port)
    socks = []
    try:
        for rnd in range(2):
            for a in srcs:
                socks.append(open_from(a, dst, socket.AF_INET6))
        d.wait_access(380, route="v6", end="client_limit", timeout=30)
        echo.wait_conns(20)
        live, closed = split_closed(socks)
        check(len(live) == 20 and len(closed) == 380,
              "%d held, %d closed (want 20, 380)" % (len(live), len(closed)))
        check_held(live, "2001:db8:1::/64")
        out = open_from(other, dst, socket.AF_INET6)
        socks.append(out)
        check_held([out], "2001:db8:2::/64")
        print("  400 from 200 addresses of one /64: 20 held, 380 refused; another /64 passes")
    finally:
        close_all(socks)
    d.stop()


@ev.test
def table_full(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    srcs = add_prefix_addresses("2001:db8:3::", 200)
    here = add_prefix_addresses("2001:db8:fe::", 1)[0]
    port, mport = ev.free_port(), ev.free_port()
    routes = [{"name": "tf", "listen": ["[%s]:%d" % (here, port)], "upstreams": [echo.addr]}]
    d = ctx.daemon(ev.make_config(routes, max_connections_per_client=1, client_prefix6=128,
                                  client_table_size=64,
                                  metrics={"listen": "127.0.0.1:%d" % mport})).start()
    socks = []
    try:
        for a in srcs:
            socks.append(open_from(a, (here, port), socket.AF_INET6))
        echo.wait_conns(200, timeout=20)
        live, closed = split_closed(socks)
        check(len(live) == 200, "%d of 200 held" % len(live))
        full = metric(mport, "evproxy_client_table_full_total")
        entries = metric(mport, "evproxy_client_table_entries")
        print("  200 clients, 64 slots: %d entries, %d let through unlimited" % (entries, full))
        check(metric(mport, "evproxy_client_table_capacity") == 64, "capacity is not 64")
        check(0 < entries <= 64, "%d entries" % entries)
        check(full + entries == 200, "full %d + entries %d != 200" % (full, entries))
        check(d.count_lines(r"per-client table is full") == 1, "want one warning line")
        close_all(socks)
        socks = []
        d.wait_access(200, route="tf", end="client_closed", timeout=20)
        check(metric(mport, "evproxy_client_table_entries") == 0, "entries left after close")
    finally:
        close_all(socks)
    d.stop()


def with_header(listen, src):
    s = open_from("127.0.0.1", listen.sockaddr)
    s.sendall(b"PROXY TCP4 %s 192.0.2.1 4321 80\r\n" % src.encode())
    return s


@ev.test
def behind_proxy(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    listen = ctx.addr("tcp4")
    routes = [{"name": "pp", "listen": [listen], "upstreams": [echo.addr],
               "accept_proxy_protocol": True, "max_connections_per_client": 2}]
    d = ctx.daemon(ev.make_config(routes)).start()
    socks = []
    try:
        held = [with_header(listen, "198.51.100.7") for _ in range(2)]
        socks += held
        check_held(held, "198.51.100.7")
        third = with_header(listen, "198.51.100.7")
        socks.append(third)
        how, got = ev.wait_closed(third, 5.0)
        check(got == 0, "the refused connection got bytes")
        acc = d.wait_access(1, route="pp", end="client_limit")
        check(acc[0]["client"].startswith("198.51.100.7"), "logged as %s" % acc[0]["client"])
        other = with_header(listen, "198.51.100.8")
        socks.append(other)
        check_held([other], "198.51.100.8")
        check(echo.count() == 3, "the upstream saw %d connections, want 3" % echo.count())
    finally:
        close_all(socks)
    d.stop()


@ev.test
def rate(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    listen = ctx.addr("tcp4")
    routes = [{"name": "rt", "listen": [listen], "upstreams": [echo.addr],
               "client_rate": {"per_second": 50, "burst": 10}}]
    d = ctx.daemon(ev.make_config(routes)).start()
    attempts = 0
    t0 = time.monotonic()
    nxt = t0
    for _ in range(2000):
        now = time.monotonic()
        if now - t0 >= 5.0:
            break
        if now < nxt:
            time.sleep(nxt - now)
        nxt += 0.004
        s = open_from("127.0.0.1", listen.sockaddr)
        s.close()
        attempts += 1
    elapsed = time.monotonic() - t0
    d.wait_access(attempts, route="rt", timeout=30)
    limited = len(d.access(route="rt", end="rate_limited"))
    passed = attempts - limited
    want = 10 + 50 * elapsed
    print("  %d attempts in %.2fs: %d passed (expected %.0f), %d rate_limited"
          % (attempts, elapsed, passed, want, limited))
    check(attempts > 2 * want, "too few attempts (%d) to test the limit" % attempts)
    check(abs(passed - want) <= 0.1 * want, "passed %d, want %.0f +- 10 %%" % (passed, want))
    d.stop()


if __name__ == "__main__":
    netns.reexec_in_netns(ev)
    ev.main(__doc__)
