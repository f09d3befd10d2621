#!/usr/bin/env python3
"""SIGTERM: stop accepting, drain, exit 0.

drain_finishes: drain_timeout = 10 and one held connection. After SIGTERM a new connection is
not served (refused, or closed within 2 s without reaching the upstream); the held one still
works; once it closes, the daemon exits 0 within 3 s (long before the drain deadline).
transfer_completes: a 64 MiB exchange each way is in flight when SIGTERM arrives; both
directions finish intact (sha256) within the drain timeout and the daemon exits 0.
second_sigterm: a second SIGTERM during drain closes the held connection at once (end=shutdown)
and the daemon exits 0 long before drain_timeout.
drain_deadline: drain_timeout = 1 and one held idle connection. After SIGTERM the daemon closes
it after about 1 s (EOF/RST within 5 s), logs end=shutdown and exits 0.
"""

import os
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402


def setup(ctx, drain):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    listen = ctx.addr("tcp4")
    routes = [{"name": "r", "listen": [listen], "upstreams": [echo.addr]}]
    d = ctx.daemon(ev.make_config(routes, drain_timeout=drain)).start()
    c = ev.connect(listen)
    ev.echo_roundtrip(c, b"before")
    return d, echo, listen, c


@ev.test
def drain_finishes(ctx):
    d, echo, listen, c = setup(ctx, 10)
    try:
        d.terminate()
        time.sleep(0.5)
        try:
            n = ev.connect(listen, timeout=2)
            try:
                how, got = ev.wait_closed(n, 2)
                check(got == 0, "new connection during drain got %d bytes" % got)
            finally:
                n.close()
        except ConnectionRefusedError:
            pass
        check(echo.count() == 1, "a connection made after SIGTERM reached the upstream")
        ev.echo_roundtrip(c, b"during drain")
    finally:
        c.close()
    t0 = time.monotonic()
    d.wait_exit(3)
    print("  exited %.2fs after the last connection closed" % (time.monotonic() - t0))
    a = d.access(route="r")
    check(any(x["end"] == "client_closed" and x["bytes_in"] == 18 for x in a),
          "held connection not logged as client_closed with 18 bytes: %s" % a)


@ev.test
def drain_deadline(ctx):
    d, echo, listen, c = setup(ctx, 1)
    try:
        t0 = d.terminate()
        how, got = ev.wait_closed(c, 5)
        dt = time.monotonic() - t0
        print("  held connection closed (%s) %.2fs after SIGTERM" % (how, dt))
        check(dt >= 0.8, "held connection closed %.2fs after SIGTERM, before the 1 s drain "
              "deadline" % dt)
    finally:
        c.close()
    d.wait_exit(4)
    a = d.access(route="r")
    check(len(a) == 1 and a[0]["end"] == "shutdown", "want one end=shutdown line: %s" % a)


@ev.test
def transfer_completes(ctx):
    mib = 64
    down = ev.Stream(21, mib << 20)
    up = ev.Stream(22, mib << 20)
    ex = ctx.server("tcp4", ev.exchange_handler(lambda rec: down), name="exchange")
    listen = ctx.addr("tcp4")
    d = ctx.daemon(ev.make_config([{"name": "bulk", "listen": [listen], "upstreams": [ex.addr]}],
                                  drain_timeout=60)).start()
    s = ev.connect(listen)
    got = {}
    rt = ev.Task(lambda: got.update(down=ev.recv_all(s, total_timeout=120)), name="recv")
    sender = ev.Task(lambda: (ev.send_stream(s, up), s.shutdown(socket.SHUT_WR)), name="send")
    rec = ex.wait_conns(1)[0]
    dl = ev.deadline(10)
    while rec.progress[0] < (4 << 20) and ev.left(dl) > 0:  # well under way, far from done
        time.sleep(0.005)
    d.terminate()
    at_term = rec.progress[0]
    sender.join(120)
    rt.join(120)
    s.close()
    rec.done.wait(30)
    print("  SIGTERM after %d KiB of the %d KiB upload" % (at_term >> 10, up.length >> 10))
    check(at_term < up.length, "the transfer was over before SIGTERM: proves nothing")
    check(got.get("down") and got["down"][0] == down.length and got["down"][1] == down.sha256(),
          "download cut or corrupted by the drain")
    check(rec.received == up.length and rec.sha256 == up.sha256(),
          "upload cut or corrupted by the drain: %d bytes" % rec.received)
    d.wait_exit(10)
    a = d.access(route="bulk")
    check(len(a) == 1 and a[0]["end"] in ("client_closed", "upstream_closed"),
          "transfer not logged as a normal end: %s" % a)


@ev.test
def second_sigterm(ctx):
    d, echo, listen, c = setup(ctx, 60)
    try:
        d.terminate()
        time.sleep(0.3)
        ev.echo_roundtrip(c, b"still draining")
        t0 = time.monotonic()
        os.kill(d.pid, signal.SIGTERM)
        how, got = ev.wait_closed(c, 5)
        check(time.monotonic() - t0 < 3, "second SIGTERM did not end the drain at once")
    finally:
        c.close()
    d.wait_exit(5)
    a = d.access(route="r")
    check(len(a) == 1 and a[0]["end"] == "shutdown", "want one end=shutdown line: %s" % a)


if __name__ == "__main__":
    ev.main(__doc__)
