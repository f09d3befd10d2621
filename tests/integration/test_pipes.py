#!/usr/bin/env python3
"""The pipe memory budget (pipe_memory) and the kernel's own pipe limits.

Each test opens many connections to a unix listener (a unix socket takes little before its
writer blocks, so the daemon is left holding what it read) whose upstream sends each a distinct
stream (Stream(id), the id being the 8 bytes the client sent first) and a FIN, while the clients
read nothing: the connections stall with data in flight. Then the clients read everything and
each stream is checked (sha256), as is the access log.

budget_2000: 2,000 stalled connections of 384 KiB under pipe_memory = "16M" (64 pipes of
  256 KiB; unbudgeted they would take up to 500 MiB). While they stall and ramp up, every
  /metrics sample keeps evproxy_pipe_memory_bytes within the budget; once stalled, the daemon's
  pipe fds are at most two per budgeted pipe, and the kernel's view (F_GETPIPE_SZ of every pipe
  the daemon holds, through /proc/PID/fd) adds up to no more than the budget; the budget was
  hit (evproxy_pipe_fallbacks_total{reason="budget"} > 0) and pipes were used up to near it.
nobody: the daemon runs as nobody (user = "nobody"), whose pipes the kernel shrinks to 2 pages,
  and refuses to grow (EPERM), once they pass fs.pipe-user-pages-soft (16,384 pages, 64 MiB:
  256 pipes of 256 KiB). 500 stalled connections of 384 KiB with pipe_memory = "1G" take the
  user past it (evproxy_pipes_shrunk_total > 0); every byte still arrives, within a time bound,
  and the drain rate is printed.
"""

import fcntl
import hashlib
import os
import pwd
import re
import resource
import selectors
import socket
import struct
import sys
import termios
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import KiB, MiB, check  # noqa: E402

SIZE = 384 * KiB
PIPE = 256 * KiB  # daemon/worker.c PIPE_MIN_SIZE with the default buffer_size
SEED = 5000
F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)  # in Python's fcntl since 3.10
SAMPLE_RE = re.compile(r'^(\w+)(?:\{([^}]*)\})? (\S+)$')


def metrics(addr):
    """{"name" or "name{labels}": value} from GET /metrics."""
    s = ev.connect(addr, 5)
    try:
        s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        _, _, data = ev.recv_all(s, limit=16 * MiB, keep=True, io_timeout=5)
    finally:
        s.close()
    out = {}
    for line in data.partition(b"\r\n\r\n")[2].decode().splitlines():
        m = SAMPLE_RE.match(line)
        if m:
            out[m.group(1) + ("{%s}" % m.group(2) if m.group(2) else "")] = float(m.group(3))
    return out


def pipe_bytes(m):
    return (m['evproxy_pipe_memory_bytes{state="in_use"}'] +
            m['evproxy_pipe_memory_bytes{state="pooled"}'])


def pipe_fds(pid):
    """(fd path, "pipe:[N]") for each of pid's fds that is a pipe (fds closing meanwhile are
    skipped)."""
    d = "/proc/%d/fd" % pid
    for name in os.listdir(d):
        try:
            target = os.readlink(os.path.join(d, name))
        except OSError:
            continue
        if target.startswith("pipe:"):
            yield os.path.join(d, name), target


def pipe_inodes(pid):
    """The pipes pid holds (the daemon's stderr is one)."""
    return {target for _, target in pipe_fds(pid)}


def kernel_pipes(pid, ignore):
    """(pipe fds, distinct pipes, their summed capacity, bytes in them) as the kernel sees the
    daemon's pipes but those in `ignore`: each pipe is opened again through /proc/PID/fd (a pipe
    opens like a FIFO) and asked F_GETPIPE_SZ and FIONREAD."""
    fds, seen, cap, queued = 0, set(), 0, 0
    for path, target in pipe_fds(pid):
        if target in ignore:
            continue
        fds += 1
        if target in seen:
            continue
        seen.add(target)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            continue  # closed meanwhile
        try:
            cap += fcntl.fcntl(fd, F_GETPIPE_SZ)
            queued += struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]
        finally:
            os.close(fd)
    return fds, len(seen), cap, queued


class Upstream:
    """TCP upstream on one selector thread: reads a connection's 8-byte id, sends it
    Stream(SEED + id, SIZE), shuts its write side, and closes at the peer's EOF. Bounded by a
    deadline and a stop flag."""

    def __init__(self, ctx, n, seconds):
        self.addr = ctx.addr("tcp4", "up")
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(self.addr.sockaddr)
        self.lsock.listen(4096)
        self.lsock.setblocking(False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.lsock, selectors.EVENT_READ, None)
        self.n = n
        self.sent = 0  # connections whose stream is all out
        self.closed = 0
        self.stop = False
        self.task = ev.Task(self._run, seconds, name="upstream")
        ctx.defer(self.close)

    def _run(self, seconds):
        dl = ev.deadline(seconds)
        while not self.stop and self.closed < self.n:
            check(time.monotonic() < dl, "upstream: %d of %d streams sent, %d closed"
                  % (self.sent, self.n, self.closed))
            for key, ev_mask in self.sel.select(0.2):
                if key.data is None:
                    self._accept()
                else:
                    self._serve(key.fileobj, key.data)

    def _accept(self):
        for _ in range(256):
            try:
                s, _ = self.lsock.accept()
            except BlockingIOError:
                return
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ, {"id": b"", "chunks": None, "cur": None})

    def _serve(self, s, st):
        if st["chunks"] is None:  # the id, then start sending
            st["id"] += s.recv(8 - len(st["id"]))
            if len(st["id"]) < 8:
                return
            st["chunks"] = ev.Stream(SEED + struct.unpack("!Q", st["id"])[0], SIZE).chunks()
            self.sel.modify(s, selectors.EVENT_WRITE, st)
        if st["chunks"] is not False:
            self._send(s, st)
            return
        try:
            if s.recv(65536):
                return
        except ConnectionError:
            pass
        self.sel.unregister(s)
        s.close()
        self.closed += 1

    def _send(self, s, st):
        for _ in range(64):
            if st["cur"] is None or len(st["cur"]) == 0:
                st["cur"] = next(st["chunks"], None)
                if st["cur"] is None:
                    s.shutdown(socket.SHUT_WR)
                    st["chunks"] = False
                    self.sent += 1
                    self.sel.modify(s, selectors.EVENT_READ, st)
                    return
            try:
                k = s.send(st["cur"])
            except BlockingIOError:
                return
            st["cur"] = st["cur"][k:]

    def close(self):
        self.stop = True
        try:
            self.task.join(5)
        except BaseException:
            pass
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()


def open_clients(listen, n):
    out = []
    for i in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(ev.IO_TIMEOUT)
        s.connect(listen.value)
        s.sendall(struct.pack("!Q", i))
        s.setblocking(False)
        out.append(s)
    return out


def read_all(clients, seconds):
    """Read every client to EOF, hashing; returns ([(bytes, sha256)], seconds taken)."""
    sel = selectors.DefaultSelector()
    state = {}
    for i, s in enumerate(clients):
        state[s] = [i, 0, hashlib.sha256()]
        sel.register(s, selectors.EVENT_READ)
    buf = bytearray(256 * KiB)
    mv = memoryview(buf)
    res = [None] * len(clients)
    t0 = time.monotonic()
    dl = ev.deadline(seconds)
    while state:
        check(time.monotonic() < dl, "clients: %d of %d streams still open after %ds"
              % (len(state), len(clients), seconds))
        for key, _ in sel.select(0.5):
            s = key.fileobj
            st = state[s]
            k = s.recv_into(buf)
            if k:
                st[1] += k
                st[2].update(mv[:k])
                continue
            res[st[0]] = (st[1], st[2].hexdigest())
            sel.unregister(s)
            s.close()
            del state[s]
    return res, time.monotonic() - t0


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
    check(resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= need, "RLIMIT_NOFILE below %d" % need)


def stall(ctx, n, glob, settle=1.0, sample=None):
    """Start the daemon, open n clients that read nothing, and wait until the upstream has sent
    every stream and the daemon's pipes settle. sample(d, maddr) runs all along (ramp-up
    included). Returns (daemon, metrics address, clients, upstream)."""
    raise_nofile(3 * n + 1000)
    up = Upstream(ctx, n, 240)
    listen, maddr = ctx.addr("unix", "l"), ctx.addr("tcp4", "m")
    routes = [{"name": "bulk", "listen": [listen], "upstreams": [up.addr]}]
    d = ctx.daemon(ev.make_config(routes, metrics={"listen": maddr}, max_connections=10000,
                                  drain_timeout=30, **glob)).start()
    d.idle_pipes = pipe_inodes(d.pid)  # not splice pipes: stderr, the driver's own
    box = {}
    opener = ev.Task(lambda: box.setdefault("c", open_clients(listen, n)), name="clients")
    dl = ev.deadline(120)
    last = None
    while True:
        check(time.monotonic() < dl, "streams sent: %d of %d" % (up.sent, n))
        if sample:
            sample(d, maddr)
        if opener.done.is_set() and up.sent == n:
            m = pipe_bytes(metrics(maddr))
            if m == last:
                break
            last = m
            time.sleep(settle)
        else:
            time.sleep(0.05)
    return d, maddr, opener.join(1), up


def finish(d, up, clients, n, seconds):
    res, took = read_all(clients, seconds)
    bad = [i for i, r in enumerate(res)
           if r != (SIZE, ev.Stream(SEED + i, SIZE).sha256())]
    check(not bad, "%d of %d streams wrong, e.g. #%s: %s bytes" % (
        len(bad), n, bad[:3], [res[i][0] for i in bad[:3]]))
    acc = d.wait_access(n, route="bulk", timeout=30)
    wrong = [a for a in acc if a["bytes_out"] != SIZE or a["bytes_in"] != 8]
    check(len(acc) == n and not wrong, "access lines: %d, wrong %s" % (len(acc), wrong[:3]))
    up.task.join(30)
    return took


@ev.test
def budget_2000(ctx):
    n, budget = 2000, 16 * MiB
    peaks = {"bytes": 0, "samples": 0}

    def sample(d, maddr):
        m = metrics(maddr)
        b = pipe_bytes(m)
        check(m["evproxy_pipe_memory_limit_bytes"] == budget, "limit %s"
              % m["evproxy_pipe_memory_limit_bytes"])
        check(b <= budget, "pipes hold %d bytes, over the budget of %d" % (b, budget))
        peaks["bytes"] = max(peaks["bytes"], b)
        peaks["samples"] += 1

    d, maddr, clients, up = stall(ctx, n, {"pipe_memory": "16M"}, sample=sample)
    sample(d, maddr)
    m = metrics(maddr)
    fds, pipes, cap, queued = kernel_pipes(d.pid, d.idle_pipes)
    print("  %d stalled: %d samples, peak %d KiB of pipes; now %d pipes in use, %d pooled, "
          "%d budget fallbacks; kernel: %d pipe fds, %d pipes, %d KiB capacity, %d KiB queued"
          % (n, peaks["samples"], peaks["bytes"] // KiB, m['evproxy_pipes{state="in_use"}'],
             m['evproxy_pipes{state="pooled"}'],
             m['evproxy_pipe_fallbacks_total{reason="budget"}'], fds, pipes, cap // KiB,
             queued // KiB))
    check(fds <= 2 * budget // PIPE, "%d pipe fds, budget %d pipes" % (fds, budget // PIPE))
    check(cap <= budget, "the kernel counts %d bytes of pipes, budget %d" % (cap, budget))
    check(m['evproxy_pipe_fallbacks_total{reason="budget"}'] > 0, "the budget was never hit")
    check(peaks["bytes"] >= budget // 2, "pipes never came near the budget (peak %d)"
          % peaks["bytes"])
    took = finish(d, up, clients, n, 120)
    print("  drained %d MiB in %.1fs (%.0f MiB/s)" % (n * SIZE // MiB, took,
                                                     n * SIZE / MiB / took))
    d.stop(30)


@ev.test
def nobody(ctx):
    if os.geteuid() != 0:
        ev.skip("needs root to start the daemon as nobody (CI runs as root)")
        return
    with open("/proc/sys/fs/pipe-user-pages-soft") as f:
        soft = int(f.read())
    check(0 < soft * 4096 < 500 * PIPE, "pipe-user-pages-soft is %d: 500 pipes would not pass "
          "it" % soft)
    pwd.getpwnam("nobody")
    os.chmod(ctx.tmpdir, 0o1777)  # nobody removes its socket file at exit
    n = 500
    d, maddr, clients, up = stall(ctx, n, {"pipe_memory": "1G", "user": "nobody"})
    m = metrics(maddr)
    fds, pipes, cap, queued = kernel_pipes(d.pid, d.idle_pipes)
    print("  %d stalled as nobody: %d pipes in use, %d shrunk by the kernel; kernel: %d pipes, "
          "%d KiB capacity, %d KiB queued" % (n, m['evproxy_pipes{state="in_use"}'],
                                              m["evproxy_pipes_shrunk_total"], pipes,
                                              cap // KiB, queued // KiB))
    check(m["evproxy_pipes_shrunk_total"] > 0, "no pipe was shrunk: the soft limit was not hit")
    # The size named is the first shrunk pipe's: 8192 when the pipe was born over the soft limit,
    # 65536 (the default) when it was born under it and only the resize to 256 KiB was refused;
    # which comes first depends on the race between the two workers.
    warned = d.count_lines(r"<4>splice: the kernel gives pipes of (8192|65536) bytes instead of "
                           r"262144 ")
    check(warned == 1, "%d warnings about shrunk pipes, want exactly 1" % warned)
    took = finish(d, up, clients, n, 120)
    print("  drained %d MiB in %.1fs (%.0f MiB/s)" % (n * SIZE // MiB, took,
                                                     n * SIZE / MiB / took))
    d.stop(30)


if __name__ == "__main__":
    ev.main(__doc__)
