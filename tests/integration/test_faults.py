#!/usr/bin/env python3
"""Fault matrix: the daemon stays up, other connections are unaffected, delivered data is exact.

Every case runs bystanders: echo connections on their own route (one over TCP, one over a unix
path) that do a round trip of 16 KiB each before and after the fault (and during it where the
fault lasts); at the end each must be logged end=client_closed with exactly its bytes. Cases
already covered elsewhere are not repeated: upstream refuses (test_failover all_refused),
connect timeout then the next server (test_failover), RST while only the download flows
(test_reset), client / upstream half-close alone (test_halfclose), a slow reader that resumes
(test_slow_reader), drain of one transfer / drain deadline / second SIGTERM (test_drain), a stale
unix socket file and removal at exit (test_listeners), reloads under new connections
(test_reload).

upstream_reset_midstream: a 32 MiB exchange runs both ways; once each side has moved 1 MiB the
upstream closes with RST (on AF_UNIX, which has no RST: closes with unread data queued, which
the peer sees as ECONNRESET). The client sees a reset (ECONNRESET or EPIPE; an EOF fails), every
byte either side got is a prefix of what the other sent, end=reset. tcp4->tcp4 and
unix->abstract, splice and copy.
client_reset_midstream: the same with the client closing with RST: the upstream sees a reset.
connect_timeout_all: the only upstream is a black hole (connect hangs), connect_timeout = 1:
three clients are closed without a byte between 0.95 and 5 s after connecting, end=connect_failed,
upstream=-; the bystanders work while they wait.
upstream_stops_reading: the upstream reads 1 MiB, then nothing; the client keeps sending (200 MiB
offered). The client stalls well short of it (< 48 MiB), daemon VmRSS (sampled every 50 ms)
stays under idle + 16 MiB, bystanders keep working; after idle_timeout = 3 the daemon closes it
(end=idle_timeout) and the upstream then reads exactly bytes_in bytes, a prefix of the stream.
both_halfclose: client and upstream send (0 B, 1 B, 64 KiB, 1 MiB) and shut their write sides at
the same moment (a barrier): each receives exactly the other's bytes, then EOF; the access line
counts them. tcp4->tcp4 and unix->unix, splice and copy.
one_byte_writes: 20,000 one-byte send() calls each way at once, TCP_NODELAY everywhere: all bytes
arrive in order (sha256) both ways; splice and copy.
writes_16mib: one sendall() of a 16 MiB buffer each way at once: both arrive intact; tcp4->tcp4
and unix->tcp4, splice and copy.
emfile_storm: evproxyd under `prlimit --nofile=64:64`; more clients than fit connect at once.
The daemon does not crash, logs that accepting paused, does not spin (its utime+stime grows by
less than 0.5 s over 2 s while saturated), every storm client is served, closed or left waiting
(never blamed on the upstream: no end=connect_failed), the bystanders keep working; after the
storm clients leave, new connections work again and the daemon's sockets return to idle.
Once an upstream socket() fails with EMFILE the worker stops its accept batch at once, so some
storm clients are left waiting in the backlog (checked) rather than all accepted and closed.
sighup_storm: 20 connections stream 4 MiB each (paced: >= 3.2 s) through an echo; 20 SIGHUPs
10 ms apart alternate two valid configurations. All 20 echoes are intact, at least one reload is
logged and none failed (SIGHUPs that arrive during a reload coalesce: fewer than 20 reloads is
allowed; here each took < 10 ms and all 20 were logged), a later SIGHUP still reloads.
sigterm_under_load: 20 such streams are in flight when SIGTERM comes: all complete
intact, the bystanders still work during the drain, a new connection is not served, the daemon
exits 0 within drain_timeout, no connection is logged end=shutdown.
unix_listener_unlinked: a route's unix socket file is deleted underneath. The daemon keeps
running; the connection already open on it keeps working; the route's TCP listener and another
route's unix listener work; new connects to the path fail with ENOENT (the listening socket lives
on but nothing can reach it by name; a SIGHUP with the same file keeps the listener as it is and
does not re-create the path). Another process then binds the path: at exit the daemon leaves that
file alone (it is not the one it created), removes its other socket file, exits 0, and logs no
error.
"""

import hashlib
import os
import select
import selectors
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import KiB, MiB, check  # noqa: E402

MODES = ("splice", "copy")
NORMAL_ENDS = ("client_closed", "upstream_closed")


# --------------------------------------------------------------------------- helpers

class Bystanders:
    """Echo connections on their own route that must not notice any fault."""

    ROUND = 16 * KiB

    def __init__(self, d, listens, route="bystand"):
        self.d = d
        self.route = route
        self.socks = [ev.connect(l) for l in listens]
        self.sent = [0] * len(self.socks)
        self.rounds = 0
        self.roundtrip("first")

    def roundtrip(self, tag, timeout=5.0):
        for i, s in enumerate(self.socks):
            st = ev.Stream(900000 + self.rounds * 16 + i, self.ROUND)
            payload = st.bytes(0, self.ROUND)
            t0 = time.monotonic()
            try:
                ev.echo_roundtrip(s, payload, timeout)
            except (OSError, ev.TestFailure) as e:
                raise ev.TestFailure("bystander %d, round trip %r: %r" % (i, tag, e))
            dt = time.monotonic() - t0
            check(dt < timeout, "bystander %d, round trip %r took %.2fs" % (i, tag, dt))
            self.sent[i] += self.ROUND
        self.rounds += 1

    def close(self, check_log=True):
        for s in self.socks:
            s.close()
        if not check_log:
            return
        acc = self.d.wait_access(len(self.socks), route=self.route, timeout=10)
        check(len(acc) == len(self.socks), "bystanders: %d access lines" % len(acc))
        for a in acc:
            check(a["end"] == "client_closed" and a["bytes_in"] == a["bytes_out"],
                  "bystander logged %s" % a)
        check(sorted(a["bytes_in"] for a in acc) == sorted(self.sent),
              "bystander byte counts %s, want %s" % ([a["bytes_in"] for a in acc], self.sent))


def start(ctx, routes, mode=None, prefix=(), **glob):
    """An echo server and a bystander route next to `routes`; returns (daemon, bystanders)."""
    echo = ctx.server("tcp4", ev.echo_handler, name="bystand-echo")
    bl = [ctx.addr("tcp4", "b"), ctx.addr("unix", "b")]
    conf = {"name": "bystand", "listen": bl, "upstreams": [echo.addr]}
    routes = list(routes) + [conf]
    if mode is not None:
        glob["forwarding"] = mode
    d = ctx.daemon(ev.make_config(routes, **glob)).start(prefix=prefix)
    if prefix:
        d.prefix = []  # prlimit execs evproxyd and prints nothing: every line is the daemon's
    by = Bystanders(d, bl)
    by.conf = conf  # for configurations rewritten on reload
    return d, by


def exchange(sock, out, expect, stop=None, shut=True, io_timeout=10.0, total_timeout=90.0,
             chunk=64 * KiB):
    """Send `out` (a Stream, or None) and read at the same time on one thread, checking every
    byte read against `expect` (a Stream). Ends with outcome 'stopped' (stop(sent, got) became
    true), 'eof', 'reset' (ECONNRESET/EPIPE on either call), 'timeout' (no progress for
    io_timeout) or 'total-timeout'. After the last byte of `out`, shut the write side if `shut`.
    Returns a dict: outcome, sent, got, mismatch (offset of the first wrong byte or None)."""
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    chunks = out.chunks(chunk) if out is not None else iter(())
    pending = memoryview(b"")
    r = {"outcome": None, "sent": 0, "got": 0, "mismatch": None, "where": None}
    writing = True
    sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    dl = ev.deadline(total_timeout)
    try:
        while r["outcome"] is None:
            if stop is not None and stop(r["sent"], r["got"]):
                r["outcome"] = "stopped"
                break
            if time.monotonic() >= dl:
                r["outcome"] = "total-timeout"
                break
            events = sel.select(io_timeout)
            if not events:
                r["outcome"] = "timeout"
                break
            mask = events[0][1]
            if writing and mask & selectors.EVENT_WRITE:
                if not pending:
                    nxt = next(chunks, None)
                    if nxt is None:
                        writing = False
                        if shut:
                            sock.shutdown(socket.SHUT_WR)
                        sel.modify(sock, selectors.EVENT_READ)
                        continue
                    pending = nxt
                try:
                    n = sock.send(pending)
                    pending = pending[n:]
                    r["sent"] += n
                except BlockingIOError:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    r["outcome"], r["where"] = "reset", "send"
                    break
            if mask & selectors.EVENT_READ:
                try:
                    data = sock.recv(256 * KiB)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    r["outcome"], r["where"] = "reset", "recv"
                    break
                if not data:
                    r["outcome"] = "eof"
                    break
                if r["mismatch"] is None and data != expect.bytes(r["got"], len(data)):
                    r["mismatch"] = r["got"]
                r["got"] += len(data)
    finally:
        sel.close()
        try:
            sock.settimeout(ev.IO_TIMEOUT)
        except OSError:
            pass
    return r


def rst_close(sock):
    """Close abortively. TCP: RST (SO_LINGER 0). AF_UNIX has no RST: a close with unread data
    in the receive queue is what makes the peer see ECONNRESET (an empty queue looks like EOF),
    so wait until some of the peer's data is queued, unread, before closing."""
    select.select([sock], [], [], 5)
    ev.set_rst_on_close(sock)
    sock.close()


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fd_kinds(pid):
    out = {"socket": 0, "pipe": 0, "other": 0}
    base = "/proc/%d/fd" % pid
    for name in os.listdir(base):
        try:
            t = os.readlink(os.path.join(base, name))
        except OSError:
            continue
        out["socket" if t.startswith("socket:") else "pipe" if t.startswith("pipe:")
            else "other"] += 1
    return out


def no_errors_logged(d):
    bad = [l for _, l in d.lines if l[:3] in ("<0>", "<1>", "<2>", "<3>")]
    check(not bad, "error lines in the log: %s" % bad[:5])


# --------------------------------------------------------------------------- resets

RESET_PAIRS = (("tcp4", "tcp4"), ("unix", "abstract"))
RESET_AT = 1 * MiB
RESET_STREAM = 32 * MiB


def reset_routes(ctx, handler_for, tag):
    routes, cases = [], []
    for i, (lk, uk) in enumerate(RESET_PAIRS):
        up = ev.Stream(500 + i, RESET_STREAM)  # client -> upstream
        down = ev.Stream(600 + i, RESET_STREAM)  # upstream -> client
        srv = ctx.server(uk, handler_for(up, down), name="%s-%s" % (tag, uk))
        listen = ctx.addr(lk)
        name = "%s_%s_%s" % (tag, lk, uk)
        routes.append({"name": name, "listen": [listen], "upstreams": [srv.addr]})
        cases.append((name, listen, srv, up, down))
    return routes, cases


def both_moved(n):
    return lambda sent, got: sent >= n and got >= n


def upstream_resetter(up, down):
    def handler(rec, server):
        rec.info["x"] = exchange(rec.sock, down, up, stop=both_moved(RESET_AT), shut=False)
        rst_close(rec.sock)
    return handler


def upstream_until_reset(up, down):
    def handler(rec, server):
        rec.info["x"] = exchange(rec.sock, down, up, shut=False)
    return handler


def check_reset_case(d, name, cx, ux, who):
    """cx/ux: exchange results of client/upstream; `who` reset; the other must see a reset."""
    a = d.wait_access(1, route=name, timeout=10)[0]
    print("  %s: client %s (sent %d, got %d), upstream %s (sent %d, got %d); %s"
          % (name, cx["outcome"], cx["sent"], cx["got"], ux["outcome"], ux["sent"], ux["got"],
             "bytes_in=%d bytes_out=%d end=%s" % (a["bytes_in"], a["bytes_out"], a["end"])))
    victim = ux if who == "client" else cx
    resetter = cx if who == "client" else ux
    check(resetter["outcome"] == "stopped", "%s: the %s never got to reset: %s"
          % (name, who, resetter))
    check(victim["outcome"] == "reset", "%s: the %s's RST arrived at the other side as %s, want "
          "a reset" % (name, who, victim["outcome"]))
    check(cx["mismatch"] is None and ux["mismatch"] is None,
          "%s: delivered bytes differ from those sent (client at %s, upstream at %s)"
          % (name, cx["mismatch"], ux["mismatch"]))
    check(a["end"] == "reset", "%s: end=%s, want reset" % (name, a["end"]))
    check(ux["got"] <= a["bytes_in"] <= cx["sent"], "%s: bytes_in=%d, upstream got %d, client "
          "sent %d" % (name, a["bytes_in"], ux["got"], cx["sent"]))
    check(cx["got"] <= a["bytes_out"] <= ux["sent"], "%s: bytes_out=%d, client got %d, upstream "
          "sent %d" % (name, a["bytes_out"], cx["got"], ux["sent"]))


@ev.test
def upstream_reset_midstream(ctx):
    for mode in MODES:
        routes, cases = reset_routes(ctx, upstream_resetter, "urst_" + mode)
        d, by = start(ctx, routes, mode)
        for name, listen, srv, up, down in cases:
            c = ev.connect(listen)
            try:
                cx = exchange(c, up, down)
            finally:
                c.close()
            rec = srv.wait_conns(1)[0]
            check(rec.done.wait(10), "%s: upstream handler did not finish" % name)
            check("x" in rec.info, "%s: upstream handler failed: %s" % (name, rec.error))
            check_reset_case(d, name, cx, rec.info["x"], "upstream")
            by.roundtrip(name)
        by.close()
        d.stop()


@ev.test
def client_reset_midstream(ctx):
    for mode in MODES:
        routes, cases = reset_routes(ctx, upstream_until_reset, "crst_" + mode)
        d, by = start(ctx, routes, mode)
        for name, listen, srv, up, down in cases:
            c = ev.connect(listen)
            cx = exchange(c, up, down, stop=both_moved(RESET_AT), shut=False)
            rst_close(c)
            rec = srv.wait_conns(1)[0]
            check(rec.done.wait(15), "%s: upstream neither saw a reset nor an EOF" % name)
            check("x" in rec.info, "%s: upstream handler failed: %s" % (name, rec.error))
            check_reset_case(d, name, cx, rec.info["x"], "client")
            by.roundtrip(name)
        by.close()
        d.stop()


# --------------------------------------------------------------------------- connect timeout

@ev.test
def connect_timeout_all(ctx):
    bh = ev.BlackHoleAddr()
    ctx.defer(bh.close)
    if not bh.works:
        ev.skip("this kernel answers SYNs to a full accept queue; no black hole possible")
        return
    listen = ctx.addr("tcp4")
    routes = [{"name": "hole", "listen": [listen], "upstreams": [bh.addr], "connect_timeout": 1}]
    d, by = start(ctx, routes)

    def client(i):
        t0 = time.monotonic()  # before connect: the daemon's timer cannot start earlier
        c = ev.connect(listen)
        try:
            how, got = ev.wait_closed(c, 8)
            return how, got, time.monotonic() - t0
        finally:
            c.close()
    tasks = [ev.Task(client, i, name="hole%d" % i) for i in range(3)]
    time.sleep(0.3)
    by.roundtrip("while connecting")
    for t in tasks:
        how, got, dt = t.join(15)
        print("  closed (%s) %.2fs after connecting, %d bytes" % (how, dt, got))
        check(got == 0, "a client of the black-hole route got %d bytes" % got)
        check(0.95 <= dt <= 5.0, "closed %.2fs after connecting, want ~1 s (connect_timeout)"
              % dt)
    acc = d.wait_access(3, route="hole")
    for a in acc:
        check(a["end"] == "connect_failed" and a["upstream"] == "-" and a["bytes_in"] == 0,
              "black-hole connection logged %s" % a)
    by.roundtrip("after")
    by.close()
    d.stop()


# --------------------------------------------------------------------------- backpressure

STOP_AT = 1 * MiB
OFFER = 200 * MiB
STALL_MAX = 48 * MiB
RSS_BOUND_KIB = 16 * 1024


def stop_reading_handler(stream, resume):
    """Read STOP_AT bytes, then nothing until `resume` is set; then read to EOF. Every byte is
    checked against `stream`."""

    def handler(rec, server):
        s = rec.sock
        n = 0
        bad = None
        s.settimeout(ev.IO_TIMEOUT)
        while n < STOP_AT:
            data = s.recv(min(64 * KiB, STOP_AT - n))
            if not data:
                break
            if bad is None and data != stream.bytes(n, len(data)):
                bad = n
            n += len(data)
        rec.info["stopped_at"] = n
        check(resume.wait(60), "never told to resume")
        for _ in range(10 ** 6):
            data = s.recv(256 * KiB)
            if not data:
                break
            if bad is None and data != stream.bytes(n, len(data)):
                bad = n
            n += len(data)
        rec.received = n
        rec.info["mismatch"] = bad
    return handler


@ev.test
def upstream_stops_reading(ctx):
    for mode in MODES:
        stream = ev.Stream(4711, OFFER)
        resume = threading.Event()
        srv = ctx.server("tcp4", stop_reading_handler(stream, resume), name="stops-reading")
        listen = ctx.addr("tcp4")
        routes = [{"name": "stuck", "listen": [listen], "upstreams": [srv.addr],
                   "idle_timeout": 3}]
        d, by = start(ctx, routes, mode)
        for i in range(5):
            by.roundtrip("warm-up %d" % i)
        time.sleep(0.3)
        rss = ev.RssSampler(d)
        c = ev.connect(listen)
        progress = [0]

        def send_all():
            try:
                ev.send_stream(c, stream, progress=progress, io_timeout=30, total_timeout=60)
                return "all sent"
            except (BrokenPipeError, ConnectionResetError) as e:
                return type(e).__name__
        sender = ev.Task(send_all, name="sender")
        try:
            rec = srv.wait_conns(1)[0]
            dl = ev.deadline(10)
            while "stopped_at" not in rec.info and ev.left(dl) > 0.01:
                time.sleep(0.02)
            time.sleep(1.0)
            stalled = progress[0]
            by.roundtrip("while stalled")  # same worker pool, other connections go on
            a = d.wait_access(1, route="stuck", timeout=10)[0]
            offered = progress[0]
            how = sender.join(30)
        finally:
            rss.stop()
            c.close()
            resume.set()
        check(rec.done.wait(15), "upstream did not finish reading after the close")
        base, peak = rss.base, rss.peak()
        print("  %s: client stalled at %.1f MiB (%.1f MiB when closed, sender: %s); RSS idle %d "
              "KiB, peak %d KiB (+%d); %s bytes_in=%d, upstream read %d"
              % (mode, stalled / MiB, offered / MiB, how, base, peak, peak - base, a["end"],
                 a["bytes_in"], rec.received))
        check(offered < STALL_MAX, "client pushed %.1f MiB into the proxy while the upstream "
              "read nothing" % (offered / MiB))
        check(peak - base <= RSS_BOUND_KIB, "daemon RSS grew by %d KiB (bound %d KiB)"
              % (peak - base, RSS_BOUND_KIB))
        check(a["end"] == "idle_timeout", "end=%s, want idle_timeout" % a["end"])
        check(a["bytes_out"] == 0, "bytes_out=%d" % a["bytes_out"])
        check(rec.error is None and rec.info.get("mismatch") is None,
              "upstream error %s, first wrong byte at %s" % (rec.error, rec.info.get("mismatch")))
        check(rec.received == a["bytes_in"], "upstream read %d bytes, the daemon logged "
              "bytes_in=%d" % (rec.received, a["bytes_in"]))
        by.roundtrip("after")
        by.close()
        d.stop()


# --------------------------------------------------------------------------- half-close at once

HALF_SIZES = (0, 1, 64 * KiB, 1 * MiB)
HALF_PAIRS = (("tcp4", "tcp4"), ("unix", "unix"))


def barrier_handler(plan):
    """plan(rec) -> (barrier, stream to send): wait at the barrier, then send and shut down
    while reading to EOF."""

    def handler(rec, server):
        barrier, out = plan(rec)
        s = rec.sock
        barrier.wait(10)
        sender = ev.Task(lambda: (s.sendall(out.bytes(0, out.length)),
                                  s.shutdown(socket.SHUT_WR)), name="up-send")
        n, sha, _ = ev.recv_all(s)
        sender.join(20)
        rec.received, rec.sha256 = n, sha
    return handler


@ev.test
def both_halfclose(ctx):
    for mode in MODES:
        plans = {}
        routes, pairs = [], []
        for lk, uk in HALF_PAIRS:
            name = "half_%s_%s" % (lk, uk)
            srv = ctx.server(uk, barrier_handler(lambda rec, n=name: plans[n]), name=name)
            listen = ctx.addr(lk)
            routes.append({"name": name, "listen": [listen], "upstreams": [srv.addr]})
            pairs.append((name, listen, srv))
        d, by = start(ctx, routes, mode)
        for name, listen, srv in pairs:
            for j, size in enumerate(HALF_SIZES):
                up, down = ev.Stream(700 + j, size), ev.Stream(800 + j, size)
                barrier = threading.Barrier(2)
                plans[name] = (barrier, down)
                c = ev.connect(listen)
                try:
                    srv.wait_conns(j + 1)
                    barrier.wait(10)
                    sender = ev.Task(lambda: (c.sendall(up.bytes(0, size)),
                                              c.shutdown(socket.SHUT_WR)), name="client-send")
                    n, sha, _ = ev.recv_all(c)
                    sender.join(20)
                finally:
                    c.close()
                rec = srv.records[j]
                check(rec.done.wait(10), "%s/%d: upstream did not finish" % (name, size))
                check(rec.error is None, "%s/%d: upstream error %s" % (name, size, rec.error))
                check(n == size and sha == down.sha256(), "%s/%d: client got %d bytes (sha %s)"
                      % (name, size, n, "ok" if sha == down.sha256() else "BAD"))
                check(rec.received == size and rec.sha256 == up.sha256(),
                      "%s/%d: upstream got %d bytes" % (name, size, rec.received))
                a = d.wait_access(j + 1, route=name)[j]
                check(a["bytes_in"] == size and a["bytes_out"] == size and
                      a["end"] in NORMAL_ENDS, "%s/%d: logged %s" % (name, size, a))
            by.roundtrip(name)
        print("  %s: %d simultaneous half-closes, sizes %s, all exact"
              % (mode, len(pairs) * len(HALF_SIZES), HALF_SIZES))
        by.close()
        d.stop()


# --------------------------------------------------------------------------- write patterns

def nodelay(s):
    if s.family != socket.AF_UNIX:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def one_byte_sender(sock, stream):
    data = stream.bytes(0, stream.length)
    for i in range(len(data)):
        sock.sendall(data[i:i + 1])
    sock.shutdown(socket.SHUT_WR)
    return len(data)


def big_sender(sock, stream):
    sock.sendall(stream.bytes(0, stream.length))  # one call, the whole buffer
    sock.shutdown(socket.SHUT_WR)
    return stream.length


def sender_handler(send_fn, stream):
    def handler(rec, server):
        nodelay(rec.sock)
        t = ev.Task(send_fn, rec.sock, stream, name="up-send")
        n, sha, _ = ev.recv_all(rec.sock, io_timeout=20)
        rec.sent = t.join(60)
        rec.received, rec.sha256 = n, sha
    return handler


def both_ways(ctx, send_fn, size, pairs, tag):
    for mode in MODES:
        routes, cases = [], []
        for i, (lk, uk) in enumerate(pairs):
            up, down = ev.Stream(1000 + i, size), ev.Stream(1100 + i, size)
            srv = ctx.server(uk, sender_handler(send_fn, down), name="%s-%s" % (tag, uk))
            listen = ctx.addr(lk)
            name = "%s_%s_%s" % (tag, lk, uk)
            routes.append({"name": name, "listen": [listen], "upstreams": [srv.addr]})
            cases.append((name, listen, srv, up, down))
        d, by = start(ctx, routes, mode)
        for name, listen, srv, up, down in cases:
            c = ev.connect(listen)
            nodelay(c)
            t0 = time.monotonic()
            try:
                t = ev.Task(send_fn, c, up, name="client-send")
                n, sha, _ = ev.recv_all(c, io_timeout=20)
                t.join(60)
            finally:
                c.close()
            rec = srv.wait_conns(1)[0]
            check(rec.done.wait(20), "%s: upstream did not finish" % name)
            check(rec.error is None, "%s: upstream error %s" % (name, rec.error))
            print("  %s %s: %d bytes each way in %.2fs" % (mode, name, size,
                                                           time.monotonic() - t0))
            check(n == size and sha == down.sha256(), "%s: client got %d of %d bytes (sha %s)"
                  % (name, n, size, "ok" if sha == down.sha256() else "BAD"))
            check(rec.received == size and rec.sha256 == up.sha256(),
                  "%s: upstream got %d of %d bytes (sha %s)" % (
                      name, rec.received, size, "ok" if rec.sha256 == up.sha256() else "BAD"))
            a = d.wait_access(1, route=name)[0]
            check(a["bytes_in"] == size and a["bytes_out"] == size and a["end"] in NORMAL_ENDS,
                  "%s: logged %s" % (name, a))
            by.roundtrip(name)
        by.close()
        d.stop()


@ev.test
def one_byte_writes(ctx):
    both_ways(ctx, one_byte_sender, 20000, (("tcp4", "tcp4"),), "b1")


@ev.test
def writes_16mib(ctx):
    both_ways(ctx, big_sender, 16 * MiB, (("tcp4", "tcp4"), ("unix", "tcp4")), "w16")


# --------------------------------------------------------------------------- EMFILE

NOFILE = 64


@ev.test
def emfile_storm(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="storm-echo")
    listen = ctx.addr("tcp4")
    routes = [{"name": "storm", "listen": [listen], "upstreams": [echo.addr]}]
    d, by = start(ctx, routes, prefix=["prlimit", "--nofile=%d:%d" % (NOFILE, NOFILE), "--"])
    with open("/proc/%d/limits" % d.pid) as f:
        lim = [l for l in f if l.startswith("Max open files")][0].split()
    check(int(lim[3]) == NOFILE, "daemon RLIMIT_NOFILE %s, want %d" % (lim[3], NOFILE))
    for i in range(3):
        by.roundtrip("warm-up %d" % i)
    idle = fd_kinds(d.pid)
    n_storm = NOFILE + 40
    print("  daemon fds before the storm: %s, limit %d; %d storm clients"
          % (idle, NOFILE, n_storm))

    storm = []
    for i in range(n_storm):
        s = ev.connect(listen, timeout=5)  # the kernel completes it; accepting is up to evproxyd
        storm.append(s)
        s.sendall(b"storm %04d" % i)
    time.sleep(1.5)
    _, line = d.wait_line(r"accepting paused", 5)
    print("  %s" % line.string)

    def census():
        served, closed, waiting = 0, 0, 0
        for i, s in enumerate(storm):
            s.settimeout(0.01)
            try:
                data = s.recv(64)
            except socket.timeout:
                waiting += 1
                continue
            except ConnectionResetError:
                closed += 1
                continue
            if not data:
                closed += 1
            else:
                check(data == b"storm %04d" % i, "storm client %d got %r" % (i, data))
                served += 1
        return served, closed, waiting

    c0 = cpu_seconds(d.pid)
    t0 = time.monotonic()
    by.roundtrip("saturated")
    time.sleep(2.0)
    busy = cpu_seconds(d.pid) - c0
    wall = time.monotonic() - t0
    fds = fd_kinds(d.pid)
    served, closed, waiting = census()
    print("  saturated: daemon fds %s; CPU %.2fs in %.2fs; storm clients: %d served, %d closed, "
          "%d waiting" % (fds, busy, wall, served, closed, waiting))
    check(d.proc.poll() is None, "daemon died in the storm")
    check(busy < 0.5, "daemon used %.2fs of CPU in %.2fs while saturated (spinning?)"
          % (busy, wall))
    check(served + closed + waiting == n_storm and served > 0, "census %d/%d/%d"
          % (served, closed, waiting))
    # Once out of fds the daemon pauses accepting: clients beyond that wait in the backlog
    # instead of being accepted and closed one after another.
    check(waiting > 0, "no storm client left waiting: the accept loop went on while paused")
    check(waiting + closed > 0, "all %d storm clients served under a %d-fd limit?"
          % (n_storm, NOFILE))
    by.roundtrip("saturated, again")

    for s in storm:
        s.close()
    # new connections work again (those still in the backlog are accepted and end first)
    dl = ev.deadline(20)
    ok = 0
    errs = []
    while ok < 10 and ev.left(dl) > 0.01:
        try:
            c = ev.connect(listen, timeout=5)
            try:
                ev.echo_roundtrip(c, b"after the storm %d" % ok, timeout=5)
                ok += 1
            finally:
                c.close()
        except (OSError, ev.TestFailure) as e:
            errs.append(repr(e))
            time.sleep(0.2)
    check(ok == 10, "after the storm only %d new connections worked: %s" % (ok, errs[:5]))
    by.roundtrip("after")
    dl = ev.deadline(10)
    while fd_kinds(d.pid)["socket"] > idle["socket"] and ev.left(dl) > 0.01:
        time.sleep(0.1)
    after = fd_kinds(d.pid)
    acc = d.access(route="storm")
    ends = {}
    for a in acc:
        ends[a["end"]] = ends.get(a["end"], 0) + 1
    print("  after: daemon fds %s; %d failed attempts before recovery; storm route ends %s"
          % (after, len(errs), ends))
    check(after["socket"] == idle["socket"], "daemon sockets %d after the storm, %d before"
          % (after["socket"], idle["socket"]))
    check(set(ends) <= {"client_closed", "upstream_closed", "error", "reset"},
          "storm route ends %s (a local fd shortage is not the upstream's fault)" % ends)
    by.close()
    d.stop()


# --------------------------------------------------------------------------- signals under load

N_STREAMS = 20
PACE_CHUNK = 64 * KiB
PACE_GAP = 0.05


def paced_stream(listen, stream, progress):
    """Send `stream` in PACE_CHUNK pieces PACE_GAP apart while reading the echo; returns
    (bytes back, sha256 of them)."""
    c = ev.connect(listen)
    try:
        got = {}
        rt = ev.Task(lambda: got.update(r=ev.recv_all(c, io_timeout=20, progress=progress)),
                     name="echo-recv")
        for ch in stream.chunks(PACE_CHUNK):
            c.sendall(ch)
            time.sleep(PACE_GAP)
        c.shutdown(socket.SHUT_WR)
        rt.join(60)
        return got["r"][0], got["r"][1]
    finally:
        c.close()


def start_streams(listen, size, seed):
    streams = [ev.Stream(seed + i, size) for i in range(N_STREAMS)]
    progress = [[0] for _ in streams]
    tasks = [ev.Task(paced_stream, listen, st, progress[i], name="stream%d" % i)
             for i, st in enumerate(streams)]
    dl = ev.deadline(20)
    while min(p[0] for p in progress) == 0 and ev.left(dl) > 0.01:
        time.sleep(0.02)
    check(min(p[0] for p in progress) > 0, "not every stream got going")
    return streams, progress, tasks


def finish_streams(d, route, streams, progress, tasks, at_fault):
    check(max(at_fault) < streams[0].length, "a stream was over before the fault: proves "
          "nothing (%s)" % at_fault)
    for i, (t, st) in enumerate(zip(tasks, streams)):
        n, sha = t.join(120)
        check(n == st.length and sha == st.sha256(), "stream %d: %d of %d bytes back (sha %s)"
              % (i, n, st.length, "ok" if sha == st.sha256() else "BAD"))
    acc = d.wait_access(N_STREAMS, route=route, timeout=10)
    bad = [a for a in acc if a["end"] not in NORMAL_ENDS or a["bytes_in"] != streams[0].length
           or a["bytes_out"] != streams[0].length]
    check(len(acc) == N_STREAMS and not bad, "stream access lines: %d, wrong: %s"
          % (len(acc), bad[:3]))


@ev.test
def sighup_storm(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="stream-echo")
    listen, extra = ctx.addr("tcp4"), ctx.addr("unix")
    base = [{"name": "streams", "listen": [listen], "upstreams": [echo.addr]}]
    alt = [{"name": "streams", "listen": [listen], "upstreams": [echo.addr], "idle_timeout": 60},
           {"name": "extra", "listen": [extra], "upstreams": [echo.addr]}]
    d, by = start(ctx, base)
    text_a = ev.make_config(base + [by.conf])
    text_b = ev.make_config(alt + [by.conf])
    streams, progress, tasks = start_streams(listen, 64 * PACE_CHUNK, 3000)
    at_fault = [p[0] for p in progress]
    first = len(d.lines)
    for i in range(20):
        d.rewrite(text_b if i % 2 == 0 else text_a)
        os.kill(d.pid, signal.SIGHUP)
        time.sleep(0.01)
    by.roundtrip("during the storm")
    finish_streams(d, "streams", streams, progress, tasks, at_fault)
    time.sleep(0.5)
    reloads = d.count_lines(r"reloaded ")
    check(reloads >= 1, "no reload logged after 20 SIGHUPs")
    check(d.count_lines(r"reload failed") == 0, "a reload failed: %s" % d.log_text()[-2000:])
    # the storm left the daemon able to reload: one more, waited for
    start_at = len(d.lines)
    d.rewrite(text_a)
    os.kill(d.pid, signal.SIGHUP)
    d.wait_line(r"reloaded ", 10, start=start_at)
    print("  20 SIGHUPs in %d ms: %d reloads logged (signals that arrive during a reload "
          "coalesce), all %d streams intact" % (20 * 10, reloads, N_STREAMS))
    check(first > 0, "no log before the storm")
    by.roundtrip("after")
    by.close()
    d.stop()


@ev.test
def sigterm_under_load(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="stream-echo")
    listen = ctx.addr("tcp4")
    routes = [{"name": "streams", "listen": [listen], "upstreams": [echo.addr]}]
    d, by = start(ctx, routes, drain_timeout=30)
    streams, progress, tasks = start_streams(listen, 64 * PACE_CHUNK, 4000)
    at_fault = [p[0] for p in progress]
    t_term = d.terminate()
    time.sleep(0.3)
    by.roundtrip("draining")
    try:
        n = ev.connect(listen, timeout=2)
        try:
            how, got = ev.wait_closed(n, 3)
            check(got == 0, "a connection made during the drain got %d bytes" % got)
        finally:
            n.close()
    except (ConnectionRefusedError, ConnectionResetError):
        pass
    by.close(check_log=False)
    finish_streams(d, "streams", streams, progress, tasks, at_fault)
    d.wait_exit(30)
    dt = time.monotonic() - t_term
    print("  SIGTERM with %d streams in flight (%d..%d KiB of %d KiB each): all intact, exit 0 "
          "%.1fs after SIGTERM" % (N_STREAMS, min(at_fault) >> 10, max(at_fault) >> 10,
                                   streams[0].length >> 10, dt))
    check(echo.count() == N_STREAMS, "%d upstream connections for %d streams: one made during "
          "the drain reached the upstream" % (echo.count(), N_STREAMS))
    by_acc = d.access(route="bystand")
    check(len(by_acc) == 2 and all(a["end"] == "client_closed" for a in by_acc),
          "bystanders logged %s" % by_acc)
    check(not d.access(end="shutdown"), "connections cut by the drain: %s"
          % d.access(end="shutdown"))


# --------------------------------------------------------------------------- unix path deleted

@ev.test
def unix_listener_unlinked(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    path, tcp, other = ctx.addr("unix"), ctx.addr("tcp4"), ctx.addr("unix")
    routes = [{"name": "u", "listen": [path, tcp], "upstreams": [echo.addr]},
              {"name": "other", "listen": [other], "upstreams": [echo.addr]}]
    d, by = start(ctx, routes)
    held = ev.connect(path)
    ev.echo_roundtrip(held, b"before the unlink")
    os.unlink(path.value)
    try:
        ev.connect(path, timeout=2).close()
        raise ev.TestFailure("connect to the deleted path %s worked" % path.value)
    except FileNotFoundError:
        pass
    ev.echo_roundtrip(held, b"after the unlink")
    for a in (tcp, other):
        c = ev.connect(a)
        try:
            ev.echo_roundtrip(c, b"through %s" % a.conf.encode())
        finally:
            c.close()
    by.roundtrip("after the unlink")
    start_at = len(d.lines)
    os.kill(d.pid, signal.SIGHUP)
    d.wait_line(r"reloaded |reload failed", 10, start=start_at)
    recreated = os.path.exists(path.value)
    print("  after a SIGHUP with the same file the path is %s"
          % ("re-created" if recreated else "still missing (the kept listener is not re-bound)"))
    if not recreated:
        try:
            ev.connect(path, timeout=2).close()
            raise ev.TestFailure("connect to the deleted path worked after the reload")
        except FileNotFoundError:
            pass
    else:
        c = ev.connect(path)
        ev.echo_roundtrip(c, b"re-created")
        c.close()
    ev.echo_roundtrip(held, b"after the reload")
    # another process takes the path: the daemon must leave that file alone at exit
    if recreated:
        os.unlink(path.value)
    intruder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ctx.defer(intruder.close)
    intruder.bind(path.value)
    intruder.listen(1)
    ino = os.stat(path.value).st_ino
    held.close()
    d.wait_access(1, route="u", timeout=10)
    by.roundtrip("before exit")
    by.close()
    d.stop()
    check(os.path.exists(path.value) and os.stat(path.value).st_ino == ino,
          "the daemon removed another process's socket file %s at exit" % path.value)
    check(not os.path.exists(other.value), "%s left behind at exit" % other.value)
    a = [x for x in d.access(route="u") if x["client"].startswith("unix:")]
    check(len(a) == 1 and a[0]["end"] == "client_closed", "held connection logged %s" % a)
    no_errors_logged(d)


if __name__ == "__main__":
    ev.main(__doc__)
