#!/usr/bin/env python3
"""Restart without a drop, takeover mode (evproxyd -H SOCKET, issue 18).

inflight: 64 MiB each way through a TCP and a unix listener, both directions throttled so
bytes sit in the proxy (splice pipes or copy buffers) when a second evproxyd takes over; plus a
connection whose client has half-closed before the handover while its upstream still sends.
Every byte must arrive (sha256), the old process must exit 0, the new one's access lines must
count the bytes of the whole connection.
idle: 5,000 idle connections (500 under valgrind) (an echo upstream in a process of its own: fds) survive the
handover and each still round-trips after it.
connect_loop: clients connecting in a loop across the handover: none refused, reset or lost.
route_removed: the new configuration drops a route (and its listener) and changes another's
upstream: the dropped route's connection keeps its upstream and finishes intact, its listener
is closed, the other route's new connections go to its new upstream.
crashed_successor: a successor (played by the test) that takes the record and every fd, then
dies before confirming: the old process resumes everything; a SIGHUP that came during the
exchange is put off until after it (a reload must not touch what is being handed over).
shared_address: routes sharing one listen address (match, issue 17): a connection already
forwarding on the route its first bytes chose, and one still being inspected (it has sent
nothing yet), both survive the handover; the second is routed by the new process when its
bytes come.
resume: a successor that fails after taking the record (its configuration adds a listener on a
port in use) must leave the old process serving everything, in-flight bytes included; and one
with a bad configuration never touches it.
"""

import array
import os
import resource
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import MiB, check  # noqa: E402

SLICE = 64 * 1024
PAUSE = 0.002  # per SLICE read: 64 MiB take about 2 s to drain
IDLE = 5000
SLOW = 1  # how much slower a daemon starts and stops
# Under a checker (CI's valgrind pass) a daemon takes seconds to start: streams slow down so
# bytes are still in flight when the new one is up, fewer idle connections, longer waits.
if os.environ.get("EVTEST_WRAPPER"):
    PAUSE, IDLE, SLOW = 0.012, 500, 6


def throttled_hash(sock, progress):
    """Read to EOF, SLICE at a time with a pause: keeps the sender's bytes in the proxy."""
    import hashlib
    h = hashlib.sha256()
    n = 0
    sock.settimeout(ev.IO_TIMEOUT * SLOW)  # the daemons' gap is longer under a checker
    while True:
        d = sock.recv(SLICE)
        if not d:
            return n, h.hexdigest()
        h.update(d)
        n += len(d)
        progress[0] = n
        time.sleep(PAUSE)


def duplex_handler(send):
    """Upstream: send `send` (paced by the client's reads) while reading to EOF, throttled;
    shut the write side down once both are done."""

    def handler(rec, server):
        sender = ev.Task(ev.send_stream, rec.sock, send, None, ev.IO_TIMEOUT * SLOW,
                         name="up-send")
        rec.received, rec.sha256 = throttled_hash(rec.sock, rec.progress)
        rec.sent = sender.join(120)
        rec.sock.shutdown(socket.SHUT_WR)
    return handler


class Client:
    """Send `out` (then SHUT_WR) and read to EOF, throttled, in two threads."""

    def __init__(self, addr, out):
        self.sock = ev.connect(addr)
        self.out = out
        self.sent = [0]
        self.got = [0]
        self.sender = ev.Task(self._send, name="client-send")
        self.reader = ev.Task(throttled_hash, self.sock, self.got, name="client-read")

    def _send(self):
        ev.send_stream(self.sock, self.out, progress=self.sent, io_timeout=ev.IO_TIMEOUT * SLOW)
        self.sock.shutdown(socket.SHUT_WR)

    def finish(self, want_in, srv_rec, name):
        self.sender.join(120)
        n, sha = self.reader.join(120)
        self.sock.close()
        check(n == want_in.length and sha == want_in.sha256(),
              "%s: client got %d of %d bytes (sha %s)" % (name, n, want_in.length,
                                                         "ok" if sha == want_in.sha256()
                                                         else "BAD"))
        check(srv_rec.done.wait(30), "%s: upstream did not finish" % name)
        check(srv_rec.error is None, "%s: upstream error %s" % (name, srv_rec.error))
        check(srv_rec.received == self.out.length and srv_rec.sha256 == self.out.sha256(),
              "%s: upstream got %d of %d bytes (sha %s)"
              % (name, srv_rec.received, self.out.length,
                 "ok" if srv_rec.sha256 == self.out.sha256() else "BAD"))


def setup(ctx, mode):
    big_up, big_down = ev.Stream(1, 64 * MiB), ev.Stream(2, 64 * MiB)
    half_up, half_down = ev.Stream(3, 1 * MiB), ev.Stream(4, 48 * MiB)
    srv_tcp = ctx.server("tcp4", duplex_handler(big_down), name="up-tcp")
    srv_unix = ctx.server("unix", duplex_handler(big_down), name="up-unix")
    srv_half = ctx.server("tcp4", duplex_handler(half_down), name="up-half")
    l_tcp, l_unix, l_half = ctx.addr("tcp4"), ctx.addr("unix"), ctx.addr("tcp4")
    routes = [{"name": "tcp", "listen": [l_tcp], "upstreams": [srv_tcp.addr]},
              {"name": "unix", "listen": [l_unix], "upstreams": [srv_unix.addr]},
              {"name": "half", "listen": [l_half], "upstreams": [srv_half.addr]}]
    conf = ev.make_config(routes, forwarding=mode)
    cases = [("tcp", l_tcp, srv_tcp, big_up, big_down),
             ("unix", l_unix, srv_unix, big_up, big_down),
             ("half", l_half, srv_half, half_up, half_down)]
    return conf, cases


def start_clients(cases):
    clients = []
    for name, listen, srv, out, back in cases:
        c = Client(listen, out)
        clients.append((name, c, srv, back))
    for name, c, srv, back in clients:
        srv.wait_conns(1)
    return clients


def wait_in_flight(clients, half_name="half"):
    """Until every connection moved some bytes and the half-closing client has shut down."""
    dl = ev.deadline(20)
    for name, c, srv, back in clients:
        while c.got[0] < 2 * MiB or srv.records[0].progress[0] < (1 * MiB if name == half_name
                                                                  else 2 * MiB):
            check(time.monotonic() < dl, "%s: no progress before the handover" % name)
            time.sleep(0.01)
    half = [c for name, c, _, _ in clients if name == half_name][0]
    half.sender.join(20)  # its SHUT_WR is done: half-closed at the handover


def finish_clients(clients):
    for name, c, srv, back in clients:
        c.finish(back, srv.records[0], name)


def check_access_once(old, new, clients):
    """One access line per connection, by the process that ended it (the new one for those
    handed over), counting every byte of the connection's life."""
    for name, c, srv, back in clients:
        dl = ev.deadline(10)
        while not (old.access(route=name) + new.access(route=name)):
            check(time.monotonic() < dl, "%s: no access line" % name)
            time.sleep(0.05)
        lines = old.access(route=name) + new.access(route=name)
        check(len(lines) == 1, "%s: access lines %s" % (name, lines))
        a = lines[0]
        check((a["bytes_in"], a["bytes_out"]) == (c.out.length, back.length),
              "%s: access bytes %d/%d, want %d/%d" % (name, a["bytes_in"], a["bytes_out"],
                                                       c.out.length, back.length))


def inflight(ctx, mode):
    conf, cases = setup(ctx, mode)
    hsock = os.path.join(ctx.tmpdir, "handover.sock")
    old = ctx.daemon(conf, name="old").start(args=("-H", hsock))
    clients = start_clients(cases)
    wait_in_flight(clients)
    for name, c, srv, back in clients:
        check(c.got[0] < back.length, "%s: finished before the handover: test too fast" % name)
    new = ctx.daemon(conf, name="new").start(args=("-H", hsock), timeout=10 * SLOW)
    old.wait_exit(15 * SLOW)
    # All 3 unless one finished while the new process started (slow under sanitizers).
    _, m = old.wait_line(r"handover: gave 3 listeners and (\d) connections \((\d+) bytes", 1)
    print("  %s: %s connections, %s bytes in flight at the handover"
          % (mode, m.group(1), m.group(2)))
    check(int(m.group(1)) >= 2 and int(m.group(2)) > 0,
          "too little in flight at the handover: the test proves little")
    new.wait_line(r"handover: took over 3 listeners and %s connections .*; %s resumed"
                  % (m.group(1), m.group(1)), 1)
    finish_clients(clients)
    check_access_once(old, new, clients)
    # The new process accepts on the listeners it took over, and can hand over in turn.
    c = Client(cases[2][1], cases[2][3])
    cases[2][2].wait_conns(2)
    c.finish(cases[2][4], cases[2][2].records[1], "after")
    new.stop()


@ev.test
def inflight_splice(ctx):
    inflight(ctx, "splice")


@ev.test
def inflight_copy(ctx):
    inflight(ctx, "copy")


@ev.test
def failed_successor_resumes(ctx):
    conf, cases = setup(ctx, ctx.args.mode or "splice")
    hsock = os.path.join(ctx.tmpdir, "handover.sock")
    old = ctx.daemon(conf, name="old").start(args=("-H", hsock))
    clients = start_clients(cases)
    wait_in_flight(clients)
    # A configuration that cannot even load: the old process is never asked.
    bad = ctx.daemon("routes = ( { name = \"x\"; ", name="bad")
    bad.start(wait_ready=False, args=("-H", hsock))
    check(bad.proc.wait(10 * SLOW) == 1, "bad config: exit %s" % bad.proc.returncode)
    # One that loads, takes the record, then cannot bind a listener it adds: the old one
    # must resume everything.
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    ctx.defer(busy.close)
    port = busy.getsockname()[1]
    conf2 = conf.replace('listen = [ "127.0.0.1:', 'listen = [ "127.0.0.1:%d", "127.0.0.1:'
                         % port, 1)
    check(conf2 != conf, "test: could not add a listener")
    failing = ctx.daemon(conf2, name="failing")
    failing.start(wait_ready=False, args=("-H", hsock))
    check(failing.proc.wait(20 * SLOW) == 1,
          "failing successor: exit %s" % failing.proc.returncode)
    old.wait_line(r"handover: resumed", 10 * SLOW)
    old.wait_line(r"handover to pid \d+ failed.*resuming \d+ connections", 1)
    finish_clients(clients)
    check(old.proc.poll() is None, "old process exited")
    for name, c, srv, back in clients:
        a = old.wait_access(1, route=name, timeout=10)[0]
        check((a["bytes_in"], a["bytes_out"]) == (c.out.length, back.length),
              "%s: access bytes %d/%d" % (name, a["bytes_in"], a["bytes_out"]))
    old.stop()


@ev.test
def route_removed(ctx):
    conf, cases = setup(ctx, ctx.args.mode or "splice")
    hsock = os.path.join(ctx.tmpdir, "handover.sock")
    old = ctx.daemon(conf, name="old").start(args=("-H", hsock))
    clients = start_clients(cases)
    wait_in_flight(clients)
    srv_new = ctx.server("tcp4", ev.echo_handler, name="new-upstream")
    # Without route "tcp" (its listener goes with it), and "half" on another server.
    _, l_unix, srv_unix, _, _ = cases[1]
    _, l_half, srv_half, _, _ = cases[2]
    conf2 = ev.make_config([{"name": "unix", "listen": [l_unix], "upstreams": [srv_unix.addr]},
                            {"name": "half", "listen": [l_half], "upstreams": [srv_new.addr]}],
                           forwarding=ctx.args.mode or "splice")
    new = ctx.daemon(conf2, name="new").start(args=("-H", hsock), timeout=10 * SLOW)
    old.wait_exit(15 * SLOW)
    new.wait_line(r"route tcp is not in the configuration: its connections keep their upstream",
                  1)
    new.wait_line(r"listen .* \(route tcp\) is not in the configuration: closed", 1)
    finish_clients(clients)
    a = new.wait_access(1, route="tcp", timeout=10)[0]
    check(a["upstream"] == cases[0][2].addr.conf and a["bytes_in"] == cases[0][3].length,
          "dropped route's access line: %s" % a)
    try:
        ev.connect(cases[0][1], timeout=2).close()
        check(False, "the dropped route's listener still accepts")
    except (ConnectionRefusedError, ConnectionResetError):
        pass
    c = ev.connect(l_half)
    ev.echo_roundtrip(c, b"to the new upstream")
    c.close()
    check(srv_new.count() == 1, "new connections of route half: %d on its new upstream"
          % srv_new.count())
    new.stop()


def fake_successor_take(path):
    """Ask the evproxyd at path for a handover as evproxyd -H does; return (socket, fds)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    s.settimeout(10)
    s.send(struct.pack("=IIII", 0x31485645, 1, 0, 0))  # TAKE
    fds = []
    want = None
    while want is None or len(fds) < want + 1:
        msg, anc, _, _ = s.recvmsg(16, socket.CMSG_SPACE(253 * 4))
        magic, typ, a, b = struct.unpack("=IIII", msg)
        check(magic == 0x31485645 and typ in (2, 3), "unexpected message %r" % (msg,))
        if typ == 2:
            want = a
        for level, t, data in anc:
            if level == socket.SOL_SOCKET and t == socket.SCM_RIGHTS:
                fds += array.array("i", data[:len(data) - len(data) % 4]).tolist()
    return s, fds


@ev.test
def crashed_successor(ctx):
    conf, cases = setup(ctx, ctx.args.mode or "splice")
    hsock = os.path.join(ctx.tmpdir, "handover.sock")
    old = ctx.daemon(conf, name="old").start(args=("-H", hsock))
    clients = start_clients(cases)
    wait_in_flight(clients)
    s, fds = fake_successor_take(hsock)
    # 3 listeners of 2 sockets (TCP: one per worker) or 1 (unix), 3 connections, the memfd.
    check(len(fds) == 2 + 1 + 2 + 3 * 2 + 1, "got %d fds" % len(fds))
    old.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    check(old.count_lines(r"reloaded") == 0, "reloaded during the handover")
    for fd in fds:
        os.close(fd)
    s.close()  # dies before OK
    old.wait_line(r"handover to pid \d+ failed.*resuming \d+ connections", 10 * SLOW)
    old.wait_line(r"handover: resumed", 10 * SLOW)
    old.wait_line(r"reloaded", 10)  # the SIGHUP, after the handover
    finish_clients(clients)
    old.stop()


ECHO_SERVER = r"""
import resource, selectors, socket, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(4096)
ls.setblocking(False)
sel = selectors.DefaultSelector()
sel.register(ls, selectors.EVENT_READ)
print(ls.getsockname()[1], flush=True)
while True:
    for key, _ in sel.select(1.0):
        s = key.fileobj
        if s is ls:
            try:
                c, _ = ls.accept()
            except BlockingIOError:
                continue
            c.setblocking(False)
            sel.register(c, selectors.EVENT_READ)
            continue
        try:
            d = s.recv(65536)
        except (BlockingIOError, ConnectionResetError):
            d = b"" if not isinstance(sys.exc_info()[1], BlockingIOError) else None
        if d is None:
            continue
        if not d:
            sel.unregister(s)
            s.close()
            continue
        s.setblocking(True)
        s.sendall(d)
        s.setblocking(False)
"""


def echo_process(ctx):
    p = subprocess.Popen([sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE)
    ctx.defer(p.kill)
    port = int(p.stdout.readline())
    return ev.Addr("tcp4", port)


def raise_fd_limit(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    check(resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= want,
          "cannot have %d open files" % want)


def round_trip_all(socks, tag):
    """Each socket sends its own payload and must get exactly it back (all at once, then
    read with a selector: 5,000 round trips in well under a second)."""
    want = {}
    for i, c in enumerate(socks):
        p = b"%s-%06d." % (tag, i)
        c.sendall(p)
        want[c.fileno()] = [p, b""]
    sel = selectors.DefaultSelector()
    for c in socks:
        c.setblocking(False)
        sel.register(c, selectors.EVENT_READ)
    left = len(socks)
    dl = ev.deadline(30)
    while left:
        check(time.monotonic() < dl, "%s: %d connections did not echo" % (tag, left))
        for key, _ in sel.select(1.0):
            c = key.fileobj
            try:
                d = c.recv(4096)
            except BlockingIOError:
                continue
            w = want[c.fileno()]
            check(d, "%s: connection %r closed" % (tag, w[0]))
            w[1] += d
            check(w[0].startswith(w[1]), "%s: got %r for %r" % (tag, w[1], w[0]))
            if w[1] == w[0]:
                sel.unregister(c)
                left -= 1
    for c in socks:
        c.setblocking(True)


@ev.test
def idle_5000(ctx):
    n = IDLE
    raise_fd_limit(n + 200)
    up = echo_process(ctx)
    l, maddr = ctx.addr("tcp4"), ctx.addr("tcp4")
    conf = ev.make_config([{"name": "idle", "listen": [l], "upstreams": [up]}],
                          access_log=False, metrics={"listen": maddr})
    hsock = os.path.join(ctx.tmpdir, "handover.sock")
    old = ctx.daemon(conf, name="old").start(args=("-H", hsock))
    socks = []
    try:
        for _ in range(n):
            socks.append(ev.connect(l))
        round_trip_all(socks, b"before")
        t0 = time.monotonic()
        new = ctx.daemon(conf, name="new").start(args=("-H", hsock), timeout=30 * SLOW)
        old.wait_exit(30 * SLOW)
        print("  %d connections: new process ready %.2fs after its start"
              % (n, time.monotonic() - t0))
        new.wait_line(r"took over 1 listeners and %d connections .*; %d resumed" % (n, n), 1)
        round_trip_all(socks, b"after")
        # The new process serves metrics on the old one's address, and counts what it took.
        m = ev.connect(maddr)
        m.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        _, _, text = ev.recv_all(m, keep=True)
        m.close()
        check(b"\nevproxy_handover_resumed_connections_total %d\n" % n in text,
              "metrics: %r" % [x for x in text.split(b"\n") if b"handover" in x])
    finally:
        for c in socks:
            c.close()
    new.stop()


def connect_looper(addr, stop, stats):
    payload = b"x" * 1000
    while not stop[0]:
        try:
            c = socket.create_connection(addr.sockaddr, timeout=10)
            try:
                c.sendall(payload)
                got = ev.recv_exact(c, len(payload))
                if got != payload:
                    stats["bad"] += 1
                else:
                    stats["ok"] += 1
            finally:
                c.close()
        except ConnectionRefusedError:
            stats["refused"] += 1
        except ConnectionResetError:
            stats["reset"] += 1
        except (OSError, ev.TestFailure) as e:
            stats["other"] += 1
            stats["what"] = repr(e)


@ev.test
def connect_loop(ctx):
    srv = ctx.server("tcp4", ev.echo_handler, name="echo")
    l = ctx.addr("tcp4")
    conf = ev.make_config([{"name": "loop", "listen": [l], "upstreams": [srv.addr]}],
                          access_log=False)
    hsock = os.path.join(ctx.tmpdir, "handover.sock")
    old = ctx.daemon(conf, name="old").start(args=("-H", hsock))
    stop = [False]
    stats = [{"ok": 0, "refused": 0, "reset": 0, "bad": 0, "other": 0} for _ in range(4)]
    tasks = [ev.Task(connect_looper, l, stop, st, name="looper") for st in stats]
    time.sleep(0.5)
    before = sum(st["ok"] for st in stats)
    new = ctx.daemon(conf, name="new").start(args=("-H", hsock), timeout=10 * SLOW)
    old.wait_exit(15 * SLOW)
    mid = sum(st["ok"] for st in stats)
    time.sleep(0.5)
    stop[0] = True
    for t in tasks:
        t.join(30)
    total = {k: sum(st[k] for st in stats) for k in ("ok", "refused", "reset", "bad", "other")}
    print("  connections: %d before the handover, %d by its end, %s in all"
          % (before, mid, total))
    check(total["ok"] > mid > before > 0, "no connection got through across the handover")
    check(total["refused"] == total["reset"] == total["bad"] == total["other"] == 0,
          "failures across the handover: %s %s" % (total, [st.get("what") for st in stats]))
    new.stop()



@ev.test
def shared_address(ctx):
    ssh = ctx.server("tcp4", ev.echo_handler, name="ssh")
    other = ctx.server("tcp4", ev.echo_handler, name="other")
    listen = ctx.addr("tcp4")
    routes = [dict(name="ssh", listen=[listen], upstreams=[ssh.addr],
                   match={"protocol": "ssh"}, inspect_timeout=20),
              dict(name="other", listen=[listen], upstreams=[other.addr], inspect_timeout=20)]
    conf = ev.make_config(routes)
    hsock = os.path.join(ctx.tmpdir, "handover.sock")
    old = ctx.daemon(conf, name="old").start(args=("-H", hsock))
    fwd = ev.connect(listen)
    ev.echo_roundtrip(fwd, b"SSH-2.0-before\r\n")
    waiting = ev.connect(listen)  # sends nothing: inspected until the handover is over
    time.sleep(0.3)
    new = ctx.daemon(conf, name="new").start(args=("-H", hsock), timeout=10 * SLOW)
    old.wait_exit(15 * SLOW)
    ev.echo_roundtrip(fwd, b"after the handover")
    ev.echo_roundtrip(waiting, b"SSH-2.0-after\r\n")
    fwd.close()
    waiting.close()
    check(ssh.count() == 2 and other.count() == 0,
          "upstream connections: ssh %d, other %d (want 2, 0)" % (ssh.count(), other.count()))
    lines = new.wait_access(2, route="ssh", timeout=10)
    check(all(a["end"] == "client_closed" for a in lines), "access lines: %s" % lines)
    new.stop()


if __name__ == "__main__":
    ev.main(__doc__)
