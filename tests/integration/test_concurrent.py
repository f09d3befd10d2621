#!/usr/bin/env python3
"""200 concurrent connections with interleaved traffic and no cross-talk (splice and copy).

All 200 connections are opened first and must all reach the echo upstream at the same time.
Then one non-blocking client loop drives them together: each connection sends its own seeded
256 KiB stream in random-sized pieces (1 B .. 16 KiB) and checks every byte that comes back
against its own stream at the right offset, then half-closes and expects EOF after exactly
256 KiB. The access log must hold 200 lines with 256 KiB each way.
"""

import os
import random
import selectors
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import KiB, check  # noqa: E402

N = 200
SIZE = 256 * KiB


class Conn:
    def __init__(self, i, sock):
        self.i = i
        self.sock = sock
        self.stream = ev.Stream(5000 + i, SIZE)
        self.data = self.stream.bytes(0, SIZE)
        self.rng = random.Random(i)
        self.sent = 0
        self.recvd = 0
        self.shut = False
        self.eof = False


def drive(conns, timeout):
    sel = selectors.DefaultSelector()
    for c in conns:
        c.sock.setblocking(False)
        sel.register(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    dl = ev.deadline(timeout)
    open_ = len(conns)
    last_progress = time.monotonic()
    for _ in range(10 ** 7):
        if open_ == 0:
            return
        check(time.monotonic() < dl, "concurrent: %d connections unfinished after %.0fs"
              % (open_, timeout))
        check(time.monotonic() - last_progress < 10, "concurrent: no progress for 10s")
        for key, mask in sel.select(0.5):
            c = key.data
            if mask & selectors.EVENT_WRITE and c.sent < SIZE:
                n = min(c.rng.randint(1, 16 * KiB), SIZE - c.sent)
                try:
                    k = c.sock.send(c.data[c.sent:c.sent + n])
                except BlockingIOError:
                    k = 0
                c.sent += k
                if k:
                    last_progress = time.monotonic()
                if c.sent == SIZE and not c.shut:
                    c.sock.shutdown(socket.SHUT_WR)
                    c.shut = True
                    sel.modify(c.sock, selectors.EVENT_READ, c)
            if mask & selectors.EVENT_READ:
                try:
                    d = c.sock.recv(c.rng.randint(1, 32 * KiB))
                except BlockingIOError:
                    continue
                if not d:
                    check(c.recvd == SIZE, "conn %d: EOF after %d of %d echoed bytes"
                          % (c.i, c.recvd, SIZE))
                    check(c.shut, "conn %d: EOF before it shut down its write side" % c.i)
                    c.eof = True
                    sel.unregister(c.sock)
                    open_ -= 1
                    continue
                check(c.recvd + len(d) <= SIZE, "conn %d: more bytes back than sent" % c.i)
                if d != c.data[c.recvd:c.recvd + len(d)]:
                    raise ev.TestFailure("conn %d: wrong bytes at offset %d (cross-talk or "
                                         "corruption)" % (c.i, c.recvd))
                c.recvd += len(d)
                last_progress = time.monotonic()


def run(ctx, mode):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    listen = ctx.addr("tcp4")
    routes = [{"name": "many", "listen": [listen], "upstreams": [echo.addr]}]
    d = ctx.daemon(ev.make_config(routes, forwarding=mode)).start()
    conns = []
    try:
        for i in range(N):
            conns.append(Conn(i, ev.connect(listen)))
        echo.wait_conns(N, 10)  # all 200 are through to the upstream at once
        t0 = time.monotonic()
        drive(conns, 60)
        print("  %s: %d connections x %d KiB each way in %.1fs"
              % (mode, N, SIZE // KiB, time.monotonic() - t0))
    finally:
        for c in conns:
            c.sock.close()
    acc = d.wait_access(N, route="many", timeout=10)
    check(len(acc) == N, "%d access lines, want %d" % (len(acc), N))
    bad = [a for a in acc if (a["bytes_in"], a["bytes_out"]) != (SIZE, SIZE)]
    check(not bad, "access lines with wrong byte counts: %s" % bad[:3])
    d.stop()


@ev.test
def concurrent_splice(ctx):
    run(ctx, "splice")


@ev.test
def concurrent_copy(ctx):
    run(ctx, "copy")


if __name__ == "__main__":
    ev.main(__doc__)
