#!/usr/bin/env python3
"""Half-close each way, in splice and copy modes, over three listener -> upstream pairs.

client_shut: the client sends 4 MiB and shuts its write side down; the upstream reads to EOF
(it must see EOF only after all 4 MiB) and only then replies 8 MiB; the client must still get
the whole reply. A proxy that closes on the client's EOF, or forwards the FIN before the data,
fails.
upstream_shut: the upstream sends 4 MiB and shuts its write side down at once; the client reads
to EOF (the FIN must be propagated), waits, then sends 4 MiB and shuts down; the upstream must
receive all of it. A proxy that closes on the upstream's EOF fails.
"""

import os
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import MiB, check  # noqa: E402

PAIRS = [("tcp4", "tcp4"), ("unix", "tcp6"), ("abstract", "unix"), ("tcp6", "abstract")]


def setup(ctx, mode):
    routes = []
    cases = []
    for i, (lk, uk) in enumerate(PAIRS):
        x = ev.Stream(10 + i, 4 * MiB)  # client -> upstream (client_shut)
        r = ev.Stream(20 + i, 8 * MiB)  # upstream reply after EOF
        s = ev.Stream(30 + i, 4 * MiB)  # upstream first (upstream_shut)
        y = ev.Stream(40 + i, 4 * MiB)  # client after EOF (upstream_shut)
        srv_a = ctx.server(uk, ev.reply_after_eof_handler(r), name="reply-after-eof-%s" % uk)
        srv_b = ctx.server(uk, ev.send_first_handler(s), name="send-first-%s" % uk)
        la, lb = ctx.addr(lk), ctx.addr(lk)
        na, nb = "cs_%s_%s" % (lk, uk), "us_%s_%s" % (lk, uk)
        routes.append({"name": na, "listen": [la], "upstreams": [srv_a.addr]})
        routes.append({"name": nb, "listen": [lb], "upstreams": [srv_b.addr]})
        cases.append((na, la, srv_a, x, r, nb, lb, srv_b, s, y))
    d = ctx.daemon(ev.make_config(routes, forwarding=mode)).start()
    return d, cases


def check_upstream_got(name, srv, stream, what):
    """The route's upstream finished without error, having read exactly `stream`."""
    rec = srv.wait_conns(1)[0]
    check(rec.done.wait(10), "%s: upstream handler did not finish" % name)
    check(rec.error is None, "%s: upstream error %s" % (name, rec.error))
    check(rec.received == stream.length and rec.sha256 == stream.sha256(),
          "%s: %s %d of %d bytes (sha %s)" % (name, what, rec.received, stream.length,
                                              "ok" if rec.sha256 == stream.sha256() else "BAD"))


def check_access(d, name, sent, received):
    """The route's access line: bytes_in/out are the client's streams, end is an EOF."""
    a = d.wait_access(1, route=name)[0]
    check((a["bytes_in"], a["bytes_out"]) == (sent.length, received.length),
          "%s: access bytes_in=%d bytes_out=%d, want %d/%d"
          % (name, a["bytes_in"], a["bytes_out"], sent.length, received.length))
    check(a["end"] in ("client_closed", "upstream_closed"), "%s: end=%s" % (name, a["end"]))


def client_shut(d, name, listen, srv, x, r):
    c = ev.connect(listen)
    try:
        ev.send_stream(c, x)
        c.shutdown(socket.SHUT_WR)
        n, sha, _ = ev.recv_all(c)
    finally:
        c.close()
    check_upstream_got(name, srv, x, "upstream saw EOF after")
    check(n == r.length and sha == r.sha256(),
          "%s: after its half-close the client got %d of %d reply bytes (sha %s)"
          % (name, n, r.length, "ok" if sha == r.sha256() else "BAD"))
    check_access(d, name, x, r)


def upstream_shut(d, name, listen, srv, s, y):
    c = ev.connect(listen)
    try:
        n, sha, _ = ev.recv_all(c)  # upstream's FIN must arrive as EOF here
        check(n == s.length and sha == s.sha256(),
              "%s: client got %d of %d bytes before EOF" % (name, n, s.length))
        time.sleep(0.3)
        ev.send_stream(c, y)  # the upstream still reads
        c.shutdown(socket.SHUT_WR)
        how, extra = ev.wait_closed(c, 10)
        check(extra == 0, "%s: %d unexpected bytes after EOF" % (name, extra))
    finally:
        c.close()
    check_upstream_got(name, srv, y, "after its half-close the upstream got")
    check_access(d, name, y, s)


def run(ctx, mode):
    d, cases = setup(ctx, mode)
    for na, la, srv_a, x, r, nb, lb, srv_b, s, y in cases:
        client_shut(d, na, la, srv_a, x, r)
        upstream_shut(d, nb, lb, srv_b, s, y)
    d.stop()


@ev.test
def halfclose_splice(ctx):
    run(ctx, "splice")


@ev.test
def halfclose_copy(ctx):
    run(ctx, "copy")


if __name__ == "__main__":
    ev.main(__doc__)
