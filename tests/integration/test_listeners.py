#!/usr/bin/env python3
"""Listener address handling.

dual_stack: a `*:PORT` listener accepts over both 127.0.0.1 and ::1.
unix_lifecycle: a stale socket file left at a unix listener path (from a dead process) is
replaced; the path gets the route's unix_mode (0600 here); it is removed when the daemon exits.
named_unix_clients: a unix client that bound a name is logged under that name, whether it is
short enough to be kept in the connection itself (a short abstract name) or not (a long path,
kept in a heap copy); an unnamed one is logged as the listener it came in on.
"""

import os
import socket
import stat
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402


@ev.test
def dual_stack(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    port = ev.free_port()
    routes = [{"name": "any", "listen": ["*:%d" % port], "upstreams": [echo.addr]}]
    d = ctx.daemon(ev.make_config(routes)).start()
    for kind in ("tcp4", "tcp6"):
        c = ev.connect(ev.Addr(kind, port))
        try:
            ev.echo_roundtrip(c, b"via " + kind.encode())
        finally:
            c.close()
    acc = d.wait_access(2, route="any")
    check(all(a["end"] == "client_closed" for a in acc), "ends: %s" % acc)
    d.stop()


@ev.test
def unix_lifecycle(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    listen = ctx.addr("unix")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(listen.value)
    stale.close()  # leaves the file behind, nobody listening
    check(os.path.exists(listen.value), "could not make a stale socket file")
    routes = [{"name": "u", "listen": [listen], "upstreams": [echo.addr], "unix_mode": "0600"}]
    d = ctx.daemon(ev.make_config(routes)).start()
    st = os.stat(listen.value)
    check(stat.S_ISSOCK(st.st_mode), "%s is not a socket" % listen.value)
    check(stat.S_IMODE(st.st_mode) == 0o600, "unix_mode 0600 gave mode %o"
          % stat.S_IMODE(st.st_mode))
    c = ev.connect(listen)
    try:
        ev.echo_roundtrip(c, b"through a replaced stale socket")
    finally:
        c.close()
    d.wait_access(1, route="u")
    d.stop()
    check(not os.path.exists(listen.value), "unix listener path left behind at exit")


@ev.test
def named_unix_clients(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    listen = ctx.addr("unix")
    d = ctx.daemon(ev.make_config([{"name": "named", "listen": [listen],
                                    "upstreams": [echo.addr]}])).start()
    long_path = os.path.join(ctx.tmpdir, "client-with-a-name-longer-than-an-inet6-address.sock")
    short_abstract = "\0evc%d" % os.getpid()
    names = {long_path: "unix:" + long_path, short_abstract: "unix:@" + short_abstract[1:],
             None: listen.conf}
    for i, (bind_to, _) in enumerate(names.items()):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(ev.IO_TIMEOUT)
        try:
            if bind_to is not None:
                c.bind(bind_to)
            c.connect(listen.sockaddr)
            ev.echo_roundtrip(c, b"named %d" % i)
        finally:
            c.close()
        d.wait_access(i + 1, route="named")
    clients = [a["client"] for a in d.access(route="named")]
    print("  logged clients: %s" % clients)
    check(clients == list(names.values()), "clients %s, want %s" % (clients, list(names.values())))
    d.stop()


if __name__ == "__main__":
    ev.main(__doc__)
