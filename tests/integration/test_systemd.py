#!/usr/bin/env python3
"""systemd integration without a running systemd.

notify_sequence: with a test NOTIFY_SOCKET (a datagram socket this test reads), the daemon says
READY=1 (with STATUS=) once listening; around a good reload RELOADING=1 + MONOTONIC_USEC then
READY=1; around a bad one RELOADING=1 then READY=1 with STATUS= naming the failure; at SIGTERM
STOPPING=1; and nothing else out of order.
watchdog: with WATCHDOG_USEC=400000 the daemon sends WATCHDOG=1 about every 200 ms.
socket_activation: systemd-socket-activate passes two named sockets; routes take them by
"systemd:NAME" next to an ordinary listener; all three forward; they survive a reload; a
passed socket no route names stops the start with a clear error.
"""

import os
import re
import shutil
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402


class Notify:
    def __init__(self, ctx):
        self.path = os.path.join(ctx.tmpdir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        ctx.defer(self.sock.close)

    def next(self, timeout=10.0, skip=("STATUS=", "WATCHDOG=1")):
        """The next message that is not a plain STATUS= update (or watchdog ping)."""
        dl = ev.deadline(timeout)
        while ev.left(dl) > 0.01:
            self.sock.settimeout(ev.left(dl))
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            if any(msg.startswith(p) for p in skip):
                continue
            return msg
        raise ev.TestFailure("no sd_notify message within %.1fs" % timeout)

    def expect(self, prefix, timeout=10.0):
        msg = self.next(timeout)
        check(msg.startswith(prefix), "expected %r, got %r" % (prefix, msg))
        return msg


def hup_and_wait(d):
    start = len(d.lines)
    os.kill(d.pid, signal.SIGHUP)
    return d.wait_line(r"reloaded |reload failed", 10, start=start)[1].string


@ev.test
def notify_sequence(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    listen = ctx.addr("tcp4")
    text = ev.make_config([{"name": "r", "listen": [listen], "upstreams": [echo.addr]}])
    n = Notify(ctx)
    d = ctx.daemon(text).start(env={"NOTIFY_SOCKET": n.path})
    msg = n.expect("READY=1")
    check("STATUS=" in msg, "READY=1 without STATUS=: %r" % msg)
    d.rewrite(text + "# again\n")
    hup_and_wait(d)
    msg = n.expect("RELOADING=1")
    check(re.search(r"MONOTONIC_USEC=\d+", msg), "RELOADING=1 without MONOTONIC_USEC: %r" % msg)
    n.expect("READY=1")
    d.rewrite(text.replace("routes", "routs"))
    hup_and_wait(d)
    n.expect("RELOADING=1")
    msg = n.expect("READY=1")
    check("reload failed" in msg and "evproxyd.conf:" in msg, "failure not in STATUS=: %r" % msg)
    c = ev.connect(listen)
    ev.echo_roundtrip(c, b"still serving")
    c.close()
    d.terminate()
    n.expect("STOPPING=1")
    d.wait_exit()


@ev.test
def watchdog(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    listen = ctx.addr("tcp4")
    n = Notify(ctx)
    d = ctx.daemon(ev.make_config([{"name": "r", "listen": [listen],
                                    "upstreams": [echo.addr]}]))
    d.start(env={"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "400000"})
    t0 = time.monotonic()
    pings = 0
    dl = ev.deadline(3.0)
    while ev.left(dl) > 0.01 and pings < 8:
        msg = n.next(timeout=ev.left(dl), skip=("STATUS=", "READY=1"))
        if msg.startswith("WATCHDOG=1"):
            pings += 1
    took = time.monotonic() - t0
    print("  %d watchdog pings in %.2fs" % (pings, took))
    check(pings >= 8, "only %d WATCHDOG=1 in %.1fs (want one per 200 ms)" % (pings, took))
    d.stop()


def socket_activate():
    return shutil.which("systemd-socket-activate")


@ev.test
def socket_activation(ctx):
    sa = socket_activate()
    if not sa:
        ev.skip("systemd-socket-activate not installed (Debian package systemd)")
        return
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    web, api, plain = ctx.addr("tcp4"), ctx.addr("tcp4"), ctx.addr("tcp4")
    text = ev.make_config([
        {"name": "web", "listen": ["systemd:web"], "upstreams": [echo.addr]},
        {"name": "api", "listen": ["systemd:api", plain], "upstreams": [echo.addr]}])
    # systemd-socket-activate takes one --fdname with colon-separated names.
    prefix = [sa, "-l", web.conf, "-l", api.conf, "--fdname=web:api"]
    # systemd-socket-activate starts the program on the first connection, as systemd does.
    d = ctx.daemon(text).start(prefix=prefix, wait_ready=False)
    d.wait_line(r"Listening on .* as 4", 10)
    first = ev.connect(web)
    d.wait_line(r"ready:", 10)
    ev.echo_roundtrip(first, b"the connection that started it")
    first.close()
    for addr in (web, api, plain):
        c = ev.connect(addr)
        ev.echo_roundtrip(c, b"via %s" % addr.conf.encode())
        c.close()
    d.rewrite(text + "# reload keeps passed sockets\n")
    check("reloaded" in hup_and_wait(d), "reload failed")
    for addr in (web, api):
        c = ev.connect(addr)
        ev.echo_roundtrip(c, b"after reload")
        c.close()
    check(len(d.wait_access(2, route="web")) >= 2, "web route not used")
    d.stop()

    # A passed socket that no route listens on is an error at start.
    extra = ctx.addr("tcp4")
    bad = ctx.daemon(ev.make_config([{"name": "web", "listen": ["systemd:web"],
                                      "upstreams": [echo.addr]}]), name="stray")
    bad.start(prefix=[sa, "-l", web.conf, "-l", extra.conf, "--fdname=web:stray"],
              wait_ready=False)
    bad.wait_line(r"Listening on .* as 4", 10)
    poke = ev.connect(web)
    rc = bad.proc.wait(10)
    poke.close()
    check(rc != 0, "started with a stray passed socket")
    check("stray" in bad.log_text(), "error does not name the stray socket: %s" % bad.log_text())


if __name__ == "__main__":
    ev.main(__doc__)
