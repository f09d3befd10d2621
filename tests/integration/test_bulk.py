#!/usr/bin/env python3
"""Bulk transfer: random data both ways at once over every listener kind -> upstream kind pair
(tcp4, tcp6, unix path, abstract: 16 pairs), checked by sha256 on both ends and against the
access log's byte counts. One daemon per forwarding mode (--mode splice|copy; CTest runs both).

Sizing (2-core machine, whole suite < 3 min): every one of the 16 pairs moves the full 64 MiB
each way at the same time (128 MiB per pair, 2 GiB per mode). To keep the run short, all 16
pairs run in ONE daemon (16 routes, 2 workers), 4 connections at a time; splice and copy are
two CTest tests. --mib N changes the per-pair size (for quick local runs).
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import MiB, check  # noqa: E402

PARALLEL = 4


def pair_size(ctx, lk, uk):
    if ctx.args.mib:
        return ctx.args.mib * MiB
    return 64 * MiB


def client_exchange_halfclose(listen, up_stream):
    """Like client_exchange but the client shuts its write side as soon as it is done."""
    s = ev.connect(listen)
    try:
        def send_then_shut():
            k = ev.send_stream(s, up_stream)
            s.shutdown(ev.socket.SHUT_WR)
            return k
        sender = ev.Task(send_then_shut, name="client-send")
        n, sha, _ = ev.recv_all(s, io_timeout=20, total_timeout=150)
        sent = sender.join(150)
        check(sent == up_stream.length, "client sent %d of %d" % (sent, up_stream.length))
        return n, sha
    finally:
        s.close()


@ev.test
def bulk_all_pairs(ctx):
    mode = ctx.args.mode or "splice"
    check(mode in ("splice", "copy"), "mode must be splice or copy")
    pairs = []
    routes = []
    for i, lk in enumerate(ev.KINDS):
        for j, uk in enumerate(ev.KINDS):
            n = pair_size(ctx, lk, uk)
            seed = 100 + 10 * i + j
            up = ev.Stream(seed, n)  # client -> upstream
            down = ev.Stream(seed + 1000, n)  # upstream -> client
            srv = ctx.server(uk, ev.exchange_handler(lambda rec, d=down: d),
                             name="up-%s-%s" % (lk, uk))
            listen = ctx.addr(lk)
            name = "p_%s_%s" % (lk, uk)
            routes.append({"name": name, "listen": [listen], "upstreams": [srv.addr]})
            pairs.append((name, listen, srv, up, down))
    d = ctx.daemon(ev.make_config(routes, forwarding=mode, workers=2)).start()

    t0 = time.monotonic()
    results = {}
    pending = list(pairs)
    running = []
    for _ in range(len(pairs) * 2 + 2):
        while pending and len(running) < PARALLEL:
            p = pending.pop(0)
            running.append((p, ev.Task(client_exchange_halfclose, p[1], p[3], name=p[0])))
        if not running:
            break
        p, t = running.pop(0)
        results[p[0]] = t.join(180)
    check(len(results) == len(pairs), "not all pairs ran")
    elapsed = time.monotonic() - t0
    total = sum(2 * p[3].length for p in pairs)
    print("  %s: %d pairs, %.0f MiB total in %.1fs (%.0f MiB/s)"
          % (mode, len(pairs), total / MiB, elapsed, total / MiB / elapsed))

    errors = []
    for name, listen, srv, up, down in pairs:
        rec = srv.wait_conns(1, 5)[0]
        check(rec.done.wait(20), "%s: upstream handler did not finish" % name)
        n, sha = results[name]
        if rec.error:
            errors.append("%s: upstream handler error %s" % (name, rec.error))
            continue
        if (n, sha) != (down.length, down.sha256()):
            errors.append("%s: client got %d bytes (want %d), sha %s"
                          % (name, n, down.length, "ok" if sha == down.sha256() else "BAD"))
        if (rec.received, rec.sha256) != (up.length, up.sha256()):
            errors.append("%s: upstream got %d bytes (want %d), sha %s"
                          % (name, rec.received, up.length,
                             "ok" if rec.sha256 == up.sha256() else "BAD"))
        if srv.count() != 1:
            errors.append("%s: upstream saw %d connections" % (name, srv.count()))
    check(not errors, "; ".join(errors))

    for name, listen, srv, up, down in pairs:
        acc = d.wait_access(1, route=name, timeout=5)
        check(len(acc) == 1, "%s: %d access lines" % (name, len(acc)))
        a = acc[0]
        check(a["bytes_in"] == up.length and a["bytes_out"] == down.length,
              "%s: access log bytes_in=%d bytes_out=%d, want %d/%d"
              % (name, a["bytes_in"], a["bytes_out"], up.length, down.length))
        check(a["end"] in ("client_closed", "upstream_closed"),
              "%s: end=%s, want client_closed or upstream_closed" % (name, a["end"]))
        check(a["upstream"] == srv.addr.conf,
              "%s: upstream=%s, want %s" % (name, a["upstream"], srv.addr.conf))
    d.stop()


if __name__ == "__main__":
    ev.main(__doc__)
