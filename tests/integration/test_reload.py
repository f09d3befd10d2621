#!/usr/bin/env python3
"""SIGHUP reload.

no_refused_during_reloads: a client makes new connections non-stop (each an echo round trip)
through a kept listener while 50 reloads happen, alternating two valid configurations; not one
connection is refused, reset or short.
transfer_survives_reload: a 64 MiB exchange each way started before reloads (one of which moves
the route to another upstream, one removes the listener) finishes with both hashes intact.
broken_file_changes_nothing: a reload with a syntax error and one with a bad value log
file:line and keep everything as it was: same listeners, same upstream, daemon still up.
route_removed_finishes_open: a route removed on reload stops accepting (its listener closes)
while its open connection keeps working and is logged when it ends; an added route works.
restart_only_settings_warned: a reload that changes workers, buffer_size and the metrics address
succeeds for everything else and warns that those three wait for a restart.
limit_exact_across_reload: with max_connections = 2 on a route, two held connections, a reload,
and the limit still counts them (a third is refused), then frees on close.
"""

import os
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402


def reload_and_wait(d, timeout=10.0):
    """SIGHUP, then wait until this reload's outcome is logged; returns the line."""
    start = len(d.lines)
    os.kill(d.pid, signal.SIGHUP)
    _, m = d.wait_line(r"reloaded |reload failed", timeout, start=start)
    return m.string


def config(routes, **kw):
    return ev.make_config(routes, **kw)


@ev.test
def no_refused_during_reloads(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    listen = ctx.addr("tcp4")
    other = ctx.addr("unix")
    a = config([{"name": "r", "listen": [listen], "upstreams": [echo.addr]}])
    b = config([{"name": "r", "listen": [listen], "upstreams": [echo.addr], "idle_timeout": 60},
                {"name": "extra", "listen": [other], "upstreams": [echo.addr]}])
    d = ctx.daemon(a).start()
    stop = threading.Event()
    stats = {"ok": 0, "errors": []}
    lock = threading.Lock()

    def client():
        i = 0
        dl = ev.deadline(120)
        while not stop.is_set() and ev.left(dl) > 0:
            payload = b"conn %d " % i * 8
            try:
                s = ev.connect(listen, timeout=5)
                try:
                    ev.echo_roundtrip(s, payload)
                finally:
                    s.close()
                with lock:
                    stats["ok"] += 1
            except Exception as e:  # refused, reset, short: all count against the reload
                with lock:
                    stats["errors"].append("%d: %r" % (i, e))
            i += 1

    clients = [threading.Thread(target=client, daemon=True) for _ in range(4)]
    for t in clients:
        t.start()
    try:
        for i in range(50):
            d.rewrite(b if i % 2 == 0 else a)
            line = reload_and_wait(d)
            check("reloaded" in line, "reload %d failed: %s" % (i, line))
            time.sleep(0.02)  # let connections land between reloads as well as during them
    finally:
        stop.set()
        for t in clients:
            t.join(30)
    print("  %d connections during 50 reloads, %d errors" % (stats["ok"], len(stats["errors"])))
    check(not stats["errors"], "connections failed during reloads: %s" % stats["errors"][:5])
    check(stats["ok"] >= 200, "too few connections made to prove anything: %d" % stats["ok"])
    check(d.count_lines(r"reloaded ") == 50, "not 50 reloads logged")
    d.stop()


@ev.test
def transfer_survives_reload(ctx):
    mib = 64
    down = ev.Stream(11, mib << 20)
    up = ev.Stream(12, mib << 20)
    ex = ctx.server("tcp4", ev.exchange_handler(lambda rec: down), name="exchange")
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    listen = ctx.addr("tcp4")
    listen2 = ctx.addr("tcp4")
    d = ctx.daemon(config([{"name": "bulk", "listen": [listen], "upstreams": [ex.addr]}])).start()
    s = ev.connect(listen)
    result = {}

    def receiver():
        result["down"] = ev.recv_all(s, total_timeout=120)

    rt = threading.Thread(target=receiver, daemon=True)
    rt.start()
    sender = ev.Task(lambda: (ev.send_stream(s, up), s.shutdown(socket.SHUT_WR)), name="send")
    time.sleep(0.2)
    # Same listener, another upstream; then the listener moves to a new address.
    d.rewrite(config([{"name": "bulk", "listen": [listen], "upstreams": [echo.addr]}]))
    check("reloaded" in reload_and_wait(d), "reload 1 failed")
    d.rewrite(config([{"name": "bulk", "listen": [listen2], "upstreams": [echo.addr]}]))
    check("reloaded" in reload_and_wait(d), "reload 2 failed")
    sender.join(120)
    rt.join(120)
    s.close()
    got = result.get("down")
    check(got is not None, "download did not finish")
    check(got[0] == down.length and got[1] == down.sha256(),
          "download corrupted across reloads: %d bytes" % got[0])
    rec = ex.wait_conns(1)[0]
    rec.done.wait(30)
    check(rec.received == up.length and rec.sha256 == up.sha256(),
          "upload corrupted across reloads: %d bytes" % rec.received)
    # The new listener serves the new upstream; the old one is closed.
    n = ev.connect(listen2)
    ev.echo_roundtrip(n, b"after reloads")
    n.close()
    try:
        ev.connect(listen, timeout=2).close()
        check(False, "removed listener still accepts")
    except OSError:
        pass
    d.wait_access(2, route="bulk")
    d.stop()


@ev.test
def broken_file_changes_nothing(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    listen = ctx.addr("tcp4")
    good = config([{"name": "r", "listen": [listen], "upstreams": [echo.addr]}])
    d = ctx.daemon(good).start()
    held = ev.connect(listen)
    ev.echo_roundtrip(held, b"before")
    d.rewrite(good.replace("routes = (", "routes = ( oops"))
    line = reload_and_wait(d)
    check("reload failed" in line, "a syntax error was accepted: %s" % line)
    check("evproxyd.conf:" in line, "no file:line in %s" % line)
    d.rewrite(good.replace('"%s" ]' % echo.addr.conf, '"127.0.0.1:99999" ]'))
    line = reload_and_wait(d)
    check("reload failed" in line and "port out of range" in line, "bad port accepted: %s" % line)
    check("routes[0].upstreams[0]" in line, "setting not named: %s" % line)
    ev.echo_roundtrip(held, b"held still works")
    n = ev.connect(listen)
    ev.echo_roundtrip(n, b"new still works")
    n.close()
    held.close()
    d.wait_access(2, route="r")
    check(all(a["upstream"] == echo.addr.conf for a in d.access(route="r")),
          "upstream changed after failed reloads")
    d.stop()


@ev.test
def route_removed_finishes_open(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    keep_l = ctx.addr("tcp4")
    gone_l = ctx.addr("unix")
    new_l = ctx.addr("abstract")
    d = ctx.daemon(config([
        {"name": "keep", "listen": [keep_l], "upstreams": [echo.addr]},
        {"name": "gone", "listen": [gone_l], "upstreams": [echo.addr]}])).start()
    held = ev.connect(gone_l)
    ev.echo_roundtrip(held, b"on the route to be removed")
    d.rewrite(config([
        {"name": "keep", "listen": [keep_l], "upstreams": [echo.addr]},
        {"name": "new", "listen": [new_l], "upstreams": [echo.addr]}]))
    check("reloaded" in reload_and_wait(d), "reload failed")
    # Removed listener: closed (its socket file is gone too), after workers applied it.
    dl = ev.deadline(5)
    while os.path.exists(gone_l.value) and ev.left(dl) > 0:
        time.sleep(0.05)
    check(not os.path.exists(gone_l.value), "removed unix listener's file still there")
    try:
        ev.connect(gone_l, timeout=2).close()
        check(False, "removed route still accepts")
    except OSError:
        pass
    ev.echo_roundtrip(held, b"still flowing after its route was removed")
    for addr in (keep_l, new_l):
        c = ev.connect(addr)
        ev.echo_roundtrip(c, b"hello")
        c.close()
    held.close()
    a = d.wait_access(1, route="gone")
    check(a[0]["end"] == "client_closed", "held connection ended %s" % a[0]["end"])
    d.wait_access(1, route="new")
    d.stop()


@ev.test
def limit_exact_across_reload(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    listen = ctx.addr("tcp4")
    text = config([{"name": "lim", "listen": [listen], "upstreams": [echo.addr],
                    "max_connections": 2}])
    d = ctx.daemon(text).start()
    held = [ev.connect(listen) for _ in range(2)]
    for i, c in enumerate(held):
        ev.echo_roundtrip(c, b"held %d" % i)
    d.rewrite(text.replace("idle_timeout", "idle_timeout") + "# touched\n")
    check("reloaded" in reload_and_wait(d), "reload failed")
    extra = ev.connect(listen)
    how, got = ev.wait_closed(extra, 3)
    extra.close()
    check(got == 0, "third connection served across a reload (limit lost)")
    d.wait_access(1, route="lim", end="limit")
    held[0].close()
    d.wait_access(1, route="lim", end="client_closed")
    again = ev.connect(listen)
    ev.echo_roundtrip(again, b"freed")
    again.close()
    held[1].close()
    d.stop()


@ev.test
def restart_only_settings_warned(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    listen, added = ctx.addr("tcp4"), ctx.addr("tcp4")
    routes = [{"name": "r", "listen": [listen], "upstreams": [echo.addr]}]
    ho_a, ho_b = os.path.join(ctx.tmpdir, "ho-a.sock"), os.path.join(ctx.tmpdir, "ho-b.sock")
    d = ctx.daemon(config(routes, workers=2, buffer_size=65536, client_table_size=1024,
                          handover={"socket": ho_a})).start()
    routes[0]["listen"] = [listen, added]
    d.rewrite(config(routes, workers=3, buffer_size=131072, client_table_size=4096,
                     handover={"socket": ho_b}, metrics={"listen": ctx.addr("tcp4").conf}))
    check("reloaded" in reload_and_wait(d), "reload failed")
    for what in ("workers", "buffer_size", "metrics", "client_table_size", "handover.socket"):
        check(d.count_lines(r'<4>reload: "%s" changes take effect at the next restart' % what)
              == 1, "no warning that %s waits for a restart" % what)
    c = ev.connect(added)  # the rest of the file did apply
    ev.echo_roundtrip(c, b"new listener")
    c.close()
    d.stop()


if __name__ == "__main__":
    ev.main(__doc__)
