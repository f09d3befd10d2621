#!/usr/bin/env python3
"""Access control (allow / deny CIDR lists), checked right after accept.

v4: allow 127.0.0.0/8 but deny 127.0.0.2: a client bound to 127.0.0.2 is closed at once
  without a byte (access end=denied), 127.0.0.1 and 127.0.0.3 get through.
v6: allow ::1/128 lets ::1 in; a route allowing only 127.0.0.0/8 closes ::1.
v4_mapped: on a dual-stack "*:port" listener IPv4 clients arrive as ::ffff:a.b.c.d and are
  matched as IPv4 (deny 127.0.0.5).
unix: unix-socket clients are governed by the socket file's mode, never by the lists.
"""

import os
import socket
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402


def from_addr(listen, source, timeout=5):
    fam = socket.AF_INET6 if ":" in source else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    host = "::1" if fam == socket.AF_INET6 else "127.0.0.1"
    s.connect((host, listen.value))
    return s


def expect_ok(listen, source, tag):
    s = from_addr(listen, source)
    try:
        ev.echo_roundtrip(s, b"hello from %s (%s)" % (source.encode(), tag.encode()))
    finally:
        s.close()


def expect_denied(listen, source):
    s = from_addr(listen, source)
    try:
        try:
            s.sendall(b"let me in")
        except OSError:
            pass
        how, got = ev.wait_closed(s, 3)
        check(got == 0, "denied client %s received %d bytes" % (source, got))
    finally:
        s.close()


def denied_lines(d, route):
    return [a for a in d.access(route=route, end="denied")]


@ev.test
def v4(ctx):
    echo = ctx.server("tcp4", ev.echo_handler)
    listen = ctx.addr("tcp4")
    d = ctx.daemon(ev.make_config([{"name": "v4", "listen": [listen], "upstreams": [echo.addr],
                                    "allow": ["127.0.0.0/8"], "deny": ["127.0.0.2"]}])).start()
    expect_ok(listen, "127.0.0.1", "allowed")
    expect_denied(listen, "127.0.0.2")
    expect_ok(listen, "127.0.0.3", "allowed")
    acc = d.wait_access(1, route="v4", end="denied")
    check(len(acc) == 1 and acc[0]["client"].startswith("127.0.0.2:"), "denied lines: %s" % acc)
    check(acc[0]["upstream"] == "-" and acc[0]["bytes_in"] == 0, "denied line: %s" % acc[0])
    check(echo.count() == 2, "upstream saw %d connections, want 2" % echo.count())
    d.stop()


@ev.test
def v6(ctx):
    echo = ctx.server("tcp4", ev.echo_handler)
    l_ok, l_no = ctx.addr("tcp6"), ctx.addr("tcp6")
    routes = [
        {"name": "v6ok", "listen": [l_ok], "upstreams": [echo.addr], "allow": ["::1/128"]},
        {"name": "v6no", "listen": [l_no], "upstreams": [echo.addr], "allow": ["127.0.0.0/8"],
         "deny": ["2001:db8::/32"]},
    ]
    d = ctx.daemon(ev.make_config(routes)).start()
    expect_ok(l_ok, "::1", "v6 allowed")
    expect_denied(l_no, "::1")
    d.wait_access(1, route="v6no", end="denied")
    check(not denied_lines(d, "v6ok"), "::1 denied on the route allowing it")
    d.stop()


@ev.test
def v4_mapped(ctx):
    echo = ctx.server("tcp4", ev.echo_handler)
    port = ev.free_port()
    listen = ev.Addr("tcp4", port)
    d = ctx.daemon(ev.make_config([{"name": "dual", "listen": ["*:%d" % port],
                                    "upstreams": [echo.addr], "deny": ["127.0.0.5/32"]}])).start()
    expect_ok(listen, "127.0.0.1", "v4 via dual stack")
    expect_ok(ev.Addr("tcp6", port), "::1", "v6 via dual stack")
    expect_denied(listen, "127.0.0.5")
    acc = d.wait_access(1, route="dual", end="denied")
    check(acc[0]["client"].startswith("127.0.0.5:"), "denied client logged as %s" % acc[0])
    d.stop()


@ev.test
def unix_not_filtered(ctx):
    echo = ctx.server("tcp4", ev.echo_handler)
    listen = ctx.addr("unix")
    d = ctx.daemon(ev.make_config([{"name": "ux", "listen": [listen], "upstreams": [echo.addr],
                                    "allow": ["10.0.0.0/8"], "deny": ["0.0.0.0/0", "::/0"]}])
                   ).start()
    c = ev.connect(listen)
    ev.echo_roundtrip(c, b"unix clients pass")
    c.close()
    d.wait_access(1, route="ux")
    check(not denied_lines(d, "ux"), "unix client denied")
    d.stop()


if __name__ == "__main__":
    ev.main(__doc__)
