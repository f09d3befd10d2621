"""evtest: shared helpers for the evproxyd integration tests (Python 3 stdlib only).

Starts the real daemon with a generated libconfig file in a temporary directory, waits for its
`ready:` line, collects its stderr, stops it with SIGTERM (exit 0 within a deadline is asserted)
and parses its access log. Provides loopback addresses of the four kinds (tcp4, tcp6, unix path,
abstract), upstream servers run in threads (exchange, echo, reply-after-EOF, send-first, slow
reader), a refusing address and a black hole, and a small test runner. Every socket operation
has a timeout and every loop is bounded in count and in time. Test scripts run as
`python3 test_X.py --evproxyd PATH [-k NAME] [--keep]`; a failing test keeps its temp dir.
"""

import argparse
import hashlib
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

MiB = 1 << 20
KiB = 1 << 10

IO_TIMEOUT = 10.0  # default per-operation socket timeout (progress, not total)
READY_TIMEOUT = 10.0  # daemon start -> "ready:" line
STOP_TIMEOUT = 15.0  # SIGTERM -> exit
if os.environ.get("EVTEST_WRAPPER"):  # a checker (valgrind) slows start-up and shutdown
    READY_TIMEOUT *= 4
    STOP_TIMEOUT *= 4
CHUNK = 256 * KiB

KINDS = ("tcp4", "tcp6", "unix", "abstract")


class TestFailure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def skip(reason):
    """Say why a check cannot run on this machine. Under CI (.ci/run sets EVTEST_NO_SKIP=1,
    and everything a test needs is installed there) a skip is a failure, so no check is ever
    silently left out of CI."""
    if os.environ.get("EVTEST_NO_SKIP"):
        raise TestFailure("would skip, and EVTEST_NO_SKIP is set: %s" % reason)
    print("  SKIP: %s" % reason)


def low_port():
    """A free TCP port below 1024 on 127.0.0.1 (for the privileged-port tests)."""
    for port in range(1020, 900, -1):
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise TestFailure("no free port below 1024")


def deadline(seconds):
    return time.monotonic() + seconds


def left(dl, floor=0.01):
    return max(floor, dl - time.monotonic())


# --------------------------------------------------------------------------- random data

_POOL = None
_POOL_LOCK = threading.Lock()
POOL_SIZE = 96 * MiB


def pool():
    """One block of seeded random bytes per process; streams are slices of it (cheap, distinct
    offsets give distinct streams, so misrouted bytes change a hash)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = memoryview(random.Random(0x65767078).randbytes(POOL_SIZE))
        return _POOL


class Stream:
    """A deterministic byte stream of `length` bytes: the pool read cyclically from an offset
    derived from `seed`, so streams of different seeds differ from their first byte."""

    def __init__(self, seed, length):
        self.seed = seed
        self.length = length
        self.offset = (seed * 7919 * 4099 + seed * 13) % POOL_SIZE
        self._sha = None

    def chunks(self, size=CHUNK):
        p = pool()
        pos = 0
        off = self.offset
        while pos < self.length:
            n = min(size, self.length - pos, POOL_SIZE - off)
            yield p[off:off + n]
            pos += n
            off = (off + n) % POOL_SIZE

    def bytes(self, start, n):
        """Bytes [start, start+n) of the stream."""
        out = bytearray()
        p = pool()
        off = (self.offset + start) % POOL_SIZE
        while len(out) < n:
            k = min(n - len(out), POOL_SIZE - off)
            out += p[off:off + k]
            off = (off + k) % POOL_SIZE
        return bytes(out)

    def sha256(self):
        if self._sha is None:
            h = hashlib.sha256()
            for c in self.chunks(4 * MiB):
                h.update(c)
            self._sha = h.hexdigest()
        return self._sha


# --------------------------------------------------------------------------- addresses

_USED_PORTS = set()
_PORT_LOCK = threading.Lock()
_RUN_ID = "%d-%s" % (os.getpid(), os.urandom(4).hex())
_ABSTRACT_SEQ = [0]


def _port_free(port):
    """A port is handed out only if it can be bound on 0.0.0.0 and :: (so `*:port` works too)."""
    socks = []
    try:
        for fam, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            s = socket.socket(fam, socket.SOCK_STREAM)
            socks.append(s)
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def free_port():
    """A TCP port below the ephemeral range (so no outgoing connection can take it meanwhile),
    free on v4 and v6, never handed out twice in this process."""
    rng = random.Random()
    for _ in range(2000):
        port = rng.randrange(20000, 32000)
        with _PORT_LOCK:
            if port in _USED_PORTS:
                continue
            if _port_free(port):
                _USED_PORTS.add(port)
                return port
    raise TestFailure("no free TCP port found")


class Addr:
    """A loopback address of one kind; `.conf` is its config spelling, `.sockaddr` what Python's
    socket module takes."""

    def __init__(self, kind, value):
        self.kind = kind
        self.value = value  # port for tcp*, path for unix, name (no '@') for abstract

    @property
    def family(self):
        return {"tcp4": socket.AF_INET, "tcp6": socket.AF_INET6}.get(self.kind, socket.AF_UNIX)

    @property
    def sockaddr(self):
        if self.kind == "tcp4":
            return ("127.0.0.1", self.value)
        if self.kind == "tcp6":
            return ("::1", self.value)
        if self.kind == "unix":
            return self.value
        return "\0" + self.value

    @property
    def conf(self):
        if self.kind == "tcp4":
            return "127.0.0.1:%d" % self.value
        if self.kind == "tcp6":
            return "[::1]:%d" % self.value
        if self.kind == "unix":
            return "unix:" + self.value
        return "unix:@" + self.value

    def __repr__(self):
        return self.conf


def make_addr(kind, tmpdir, tag="s"):
    if kind in ("tcp4", "tcp6"):
        return Addr(kind, free_port())
    _ABSTRACT_SEQ[0] += 1
    if kind == "unix":
        path = os.path.join(tmpdir, "%s%d.sock" % (tag, _ABSTRACT_SEQ[0]))
        check(len(path.encode()) <= 107, "unix path too long: %s" % path)
        return Addr("unix", path)
    if kind == "abstract":
        return Addr("abstract", "evtest-%s-%s%d" % (_RUN_ID, tag, _ABSTRACT_SEQ[0]))
    raise ValueError(kind)


def connect(addr, timeout=IO_TIMEOUT):
    s = socket.socket(addr.family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(addr.sockaddr)
    except BaseException:
        s.close()
        raise
    return s


def set_rst_on_close(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


# --------------------------------------------------------------------------- stream I/O

def send_stream(sock, stream, progress=None, io_timeout=IO_TIMEOUT, total_timeout=120.0):
    """Send all of `stream` (each chunk must progress within io_timeout)."""
    dl = deadline(total_timeout)
    sock.settimeout(io_timeout)
    sent = 0
    for c in stream.chunks():
        check(time.monotonic() < dl, "send_stream: total timeout after %d bytes" % sent)
        sock.sendall(c)
        sent += len(c)
        if progress is not None:
            progress[0] = sent
    return sent


def recv_all(sock, limit=None, io_timeout=IO_TIMEOUT, total_timeout=120.0, progress=None,
             keep=False):
    """Read until EOF; return (nbytes, sha256hex, data-or-None). Raises socket errors (e.g.
    ConnectionResetError) as they come; a stall longer than io_timeout raises socket.timeout."""
    dl = deadline(total_timeout)
    sock.settimeout(io_timeout)
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    mv = memoryview(buf)
    n = 0
    data = bytearray() if keep else None
    while True:
        check(time.monotonic() < dl, "recv_all: total timeout after %d bytes" % n)
        k = sock.recv_into(buf)
        if k == 0:
            break
        h.update(mv[:k])
        if keep:
            data += mv[:k]
        n += k
        if progress is not None:
            progress[0] = n
        check(limit is None or n <= limit, "recv_all: got more than %s bytes" % limit)
    return n, h.hexdigest(), (bytes(data) if keep else None)


def recv_exact(sock, n, io_timeout=IO_TIMEOUT):
    sock.settimeout(io_timeout)
    out = bytearray()
    for _ in range(n + 1):
        if len(out) >= n:
            break
        k = sock.recv(n - len(out))
        if not k:
            raise TestFailure("recv_exact: EOF after %d of %d bytes" % (len(out), n))
        out += k
    return bytes(out)


def wait_closed(sock, timeout):
    """Wait for the peer to close: returns 'eof', 'reset' or raises on timeout. Bytes that
    arrive first are discarded and counted in the result tuple."""
    dl = deadline(timeout)
    sock.settimeout(timeout)
    got = 0
    for _ in range(100000):
        if time.monotonic() >= dl:
            break
        sock.settimeout(left(dl))
        try:
            k = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return "reset", got
        except socket.timeout:
            break
        if not k:
            return "eof", got
        got += len(k)
    raise TestFailure("peer did not close within %.1fs" % timeout)


def echo_roundtrip(sock, payload, timeout=IO_TIMEOUT):
    sock.settimeout(timeout)
    sock.sendall(payload)
    back = recv_exact(sock, len(payload), timeout)
    check(back == payload, "echo mismatch")


class Task:
    """Run fn(*args) in a daemon thread; join(timeout) returns its result or re-raises."""

    def __init__(self, fn, *args, name=None):
        self.result = None
        self.exc = None
        self.done = threading.Event()

        def run():
            try:
                self.result = fn(*args)
            except BaseException as e:  # handed to join()
                self.exc = e
                self.tb = traceback.format_exc()
            finally:
                self.done.set()

        self.thread = threading.Thread(target=run, name=name or getattr(fn, "__name__", "task"),
                                       daemon=True)
        self.thread.start()

    def join(self, timeout):
        if not self.done.wait(timeout):
            raise TestFailure("task %s did not finish within %.1fs" % (self.thread.name, timeout))
        if self.exc is not None:
            raise self.exc
        return self.result


# --------------------------------------------------------------------------- upstream servers

class RssSampler:
    """Samples a daemon's VmRSS every 50 ms in a thread (bounded: 100,000 samples) from
    construction until stop(); `base` is the RSS at construction, peak() the highest seen."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.base = daemon.rss_kib()
        self.samples = []
        self._stop = threading.Event()
        self._task = Task(self._run, name="rss")

    def _run(self):
        for _ in range(100000):
            if self._stop.wait(0.05):
                return
            try:
                self.samples.append(self.daemon.rss_kib())
            except (OSError, TestFailure):
                return  # the daemon is gone

    def peak(self):
        return max(self.samples + [self.base])

    def stop(self):
        self._stop.set()
        self._task.join(5)


class ConnRecord:
    """What one upstream connection saw."""

    def __init__(self, sock):
        self.sock = sock
        self.received = 0
        self.sha256 = None
        self.error = None  # exception name if the handler failed (e.g. ConnectionResetError)
        self.eof_at = None
        self.sent = 0
        self.done = threading.Event()
        self.progress = [0]
        self.info = {}


class Server:
    """A listening socket on `addr` whose accepted connections each run handler(rec) in a
    thread. The accept loop polls a stop flag every 0.1 s."""

    def __init__(self, addr, handler, backlog=1024, name="upstream"):
        self.addr = addr
        self.handler = handler
        self.name = name
        self.records = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.stopping = threading.Event()
        self.lsock = socket.socket(addr.family, socket.SOCK_STREAM)
        if addr.family != socket.AF_UNIX:
            self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if addr.family == socket.AF_INET6:
            self.lsock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        self.lsock.bind(addr.sockaddr)
        self.lsock.listen(backlog)
        self.lsock.settimeout(0.1)
        self.thread = threading.Thread(target=self._accept_loop, name=name, daemon=True)
        self.thread.start()

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                s, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                if self.stopping.is_set():
                    return
                time.sleep(0.05)
                continue
            s.settimeout(IO_TIMEOUT)
            rec = ConnRecord(s)
            with self.cond:
                self.records.append(rec)
                self.cond.notify_all()
            threading.Thread(target=self._run, args=(rec,), daemon=True).start()

    def _run(self, rec):
        try:
            self.handler(rec, self)
        except BaseException as e:
            rec.error = type(e).__name__
            rec.info["traceback"] = traceback.format_exc()
        finally:
            try:
                rec.sock.close()
            except OSError:
                pass
            rec.done.set()

    def wait_conns(self, n, timeout=IO_TIMEOUT):
        dl = deadline(timeout)
        with self.cond:
            while len(self.records) < n:
                if not self.cond.wait(left(dl)) and time.monotonic() >= dl:
                    raise TestFailure("%s: %d connections within %.1fs, wanted %d"
                                      % (self.name, len(self.records), timeout, n))
            return list(self.records[:n])

    def count(self):
        with self.lock:
            return len(self.records)

    def close(self):
        self.stopping.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        self.thread.join(2)
        with self.lock:
            recs = list(self.records)
        for r in recs:
            try:
                r.sock.close()
            except OSError:
                pass
        if self.addr.kind == "unix":
            try:
                os.unlink(self.addr.value)
            except OSError:
                pass


def _hash_until_eof(rec, io_timeout=IO_TIMEOUT):
    n, sha, _ = recv_all(rec.sock, io_timeout=io_timeout, progress=rec.progress)
    rec.received, rec.sha256, rec.eof_at = n, sha, time.monotonic()


def exchange_handler(send_stream_for):
    """Receive and hash everything while sending send_stream_for(rec) at the same time, then
    shut the write side down; the connection ends when both are done."""

    def handler(rec, server):
        st = send_stream_for(rec)
        sender = Task(send_stream, rec.sock, st, name="exchange-send")
        _hash_until_eof(rec)
        rec.sent = sender.join(180)
        rec.sock.shutdown(socket.SHUT_WR)
    return handler


def echo_handler(rec, server):
    """Echo every byte back; on EOF shut the write side down after the last byte."""
    s = rec.sock
    h = hashlib.sha256()
    n = 0
    for _ in range(10 ** 7):
        try:
            d = s.recv(CHUNK)
        except socket.timeout:
            if server.stopping.is_set():
                return
            continue  # idle connections are legitimate here (limits, idle tests)
        if not d:
            break
        h.update(d)
        n += len(d)
        s.sendall(d)
    rec.received, rec.sha256, rec.eof_at = n, h.hexdigest(), time.monotonic()
    s.shutdown(socket.SHUT_WR)
    # wait for the proxy to close its side (bounded)
    try:
        s.settimeout(5)
        s.recv(1)
    except OSError:
        pass


def reply_after_eof_handler(reply_stream):
    """Read everything until EOF, then send reply_stream and close (tests client half-close)."""

    def handler(rec, server):
        _hash_until_eof(rec)
        rec.sent = send_stream(rec.sock, reply_stream)
        rec.sock.shutdown(socket.SHUT_WR)
        try:
            rec.sock.settimeout(5)
            rec.sock.recv(1)
        except OSError:
            pass
    return handler


def send_first_handler(send):
    """Send `send` and shut the write side down at once, then read and hash until EOF (tests
    upstream half-close: the client may go on sending after it saw EOF)."""

    def handler(rec, server):
        rec.sent = send_stream(rec.sock, send)
        rec.sock.shutdown(socket.SHUT_WR)
        rec.info["shut_at"] = time.monotonic()
        _hash_until_eof(rec)
    return handler


def slow_reader_handler(gate, slow_seconds, slow_rate):
    """Read nothing until `gate` is set, then read slow_rate bytes/s for slow_seconds, then
    as fast as possible until EOF; hash everything."""

    def handler(rec, server):
        s = rec.sock
        check(gate.wait(120), "slow reader gate never opened")
        h = hashlib.sha256()
        n = 0
        t_end = time.monotonic() + slow_seconds
        piece = max(1, int(slow_rate / 20))
        s.settimeout(IO_TIMEOUT)
        while time.monotonic() < t_end:
            d = s.recv(piece)
            if not d:
                rec.received, rec.sha256, rec.eof_at = n, h.hexdigest(), time.monotonic()
                return
            h.update(d)
            n += len(d)
            rec.progress[0] = n
            time.sleep(0.05)
        buf = bytearray(CHUNK)
        mv = memoryview(buf)
        for _ in range(10 ** 7):
            k = s.recv_into(buf)
            if k == 0:
                break
            h.update(mv[:k])
            n += k
            rec.progress[0] = n
        rec.received, rec.sha256, rec.eof_at = n, h.hexdigest(), time.monotonic()
    return handler


class RefusingAddr:
    """A TCP port (or unix path) that is bound but not listening: connect() gets ECONNREFUSED."""

    def __init__(self, kind, tmpdir):
        self.addr = make_addr(kind, tmpdir, "refuse")
        self.sock = socket.socket(self.addr.family, socket.SOCK_STREAM)
        if self.addr.family == socket.AF_INET6:
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        self.sock.bind(self.addr.sockaddr)
        # prove it refuses
        try:
            connect(self.addr, 2).close()
            raise TestFailure("refusing address %s accepted a connection" % self.addr)
        except ConnectionRefusedError:
            pass

    def close(self):
        self.sock.close()


class BlackHoleAddr:
    """A TCP address where connect() hangs: a listener with backlog 0 whose accept queue is
    filled by us, so the kernel drops further SYNs (tcp_abort_on_overflow = 0)."""

    def __init__(self):
        self.addr = make_addr("tcp4", None)
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(self.addr.sockaddr)
        self.lsock.listen(0)
        self.fillers = []
        for _ in range(8):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(self.addr.sockaddr)
            except BlockingIOError:
                pass
            self.fillers.append(s)
        time.sleep(0.2)
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(0.5)
        try:
            probe.connect(self.addr.sockaddr)
            self.works = False
        except (socket.timeout, OSError):
            self.works = True
        finally:
            probe.close()

    def close(self):
        for s in self.fillers:
            s.close()
        self.lsock.close()


# --------------------------------------------------------------------------- config

def _conf_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, Addr):
        return '"%s"' % v.conf
    if isinstance(v, str):
        return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"')
    if isinstance(v, (list, tuple)) and any(isinstance(x, dict) for x in v):
        return "( " + ", ".join(_conf_value(x) for x in v) + " )"  # groups: a list, not an array
    if isinstance(v, (list, tuple)):
        return "[ " + ", ".join(_conf_value(x) for x in v) + " ]"
    if isinstance(v, dict):  # a group: health = { fails = 2; }
        return "{ " + " ".join("%s = %s;" % (k, _conf_value(x)) for k, x in v.items()) + " }"
    raise TypeError(v)


def make_config(routes, **glob):
    """libconfig text. routes: list of dicts (name, listen, upstreams, other route keys).
    Globals default to 2 workers, info logs, access log on (explicitly: test_cli checks the
    default on its own), a short drain. A global given as None is left out."""
    g = {"workers": 2, "log_level": "info", "access_log": True, "drain_timeout": 3}
    g.update(glob)
    out = ["# generated by evtest.py"]
    for k, v in g.items():
        if v is not None:
            out.append("%s = %s;" % (k, _conf_value(v)))
    out.append("routes = (")
    for i, r in enumerate(routes):
        out.append("  {")
        for k, v in r.items():
            out.append("    %s = %s;" % (k, _conf_value(v)))
        out.append("  }" + ("," if i + 1 < len(routes) else ""))
    out.append(");")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- the daemon

ACCESS_RE = re.compile(
    r"<6>access route=(?P<route>\S+) client=(?P<client>\S+) upstream=(?P<upstream>\S+) "
    r"bytes_in=(?P<bytes_in>\d+) bytes_out=(?P<bytes_out>\d+) "
    r"duration_ms=(?P<duration_ms>\d+) end=(?P<end>\S+)"
    r"(?: sni=(?P<sni>\S+) match=(?P<match>\S+))?")  # sni/match: shared addresses (test_sni)
END_REASONS = {"client_closed", "upstream_closed", "idle_timeout", "connect_failed", "reset",
               "limit", "shutdown", "error", "denied", "bad_proxy_header", "proxy_timeout",
               "killed", "no_server", "client_limit", "rate_limited", "peer_timeout", "no_match", "bad_hello"}
PRIO_RE = re.compile(r"^<[0-7]>")


class Daemon:
    def __init__(self, ctx, config_text, name="evproxyd"):
        self.ctx = ctx
        self.name = name
        self.conf_path = os.path.join(ctx.tmpdir, name + ".conf")
        with open(self.conf_path, "w") as f:
            f.write(config_text)
        self.proc = None
        self.lines = []  # (monotonic time, text)
        self.cond = threading.Condition()
        self.reader = None
        self.stopped = False
        self.prefix = []
        ctx.daemons.append(self)

    def start(self, timeout=READY_TIMEOUT, env=None, prefix=(), wait_ready=True, args=(),
              pass_fds=()):
        """Start evproxyd (behind the `prefix` command, e.g. systemd-socket-activate), with
        extra environment `env` and extra command-line `args`, and wait for its ready line
        unless wait_ready is False. pass_fds stay open in the child (for a `prefix` that
        places them, as systemd would)."""
        self.prefix = list(prefix)
        full_env = dict(os.environ)
        full_env.update(env or {})
        # EVTEST_WRAPPER runs the daemon under a checker, e.g. CI's valgrind pass:
        #   EVTEST_WRAPPER="valgrind --error-exitcode=97 --leak-check=full -q"
        # Its findings fail the test through the exit status (wait_exit wants 0).
        wrapper = os.environ.get("EVTEST_WRAPPER", "").split()
        self.proc = subprocess.Popen(list(prefix) + wrapper +
                                     [self.ctx.evproxyd, "-c", self.conf_path] + list(args),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=full_env,
                                     pass_fds=tuple(pass_fds))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if wait_ready:
            self.wait_line(r"ready:", timeout)
        return self

    def rewrite(self, config_text):
        """Replace the config file (atomically, as an editor or a package upgrade would)."""
        tmp = self.conf_path + ".new"
        with open(tmp, "w") as f:
            f.write(config_text)
        os.rename(tmp, self.conf_path)

    def count_lines(self, pattern):
        rx = re.compile(pattern)
        with self.cond:
            return sum(1 for _, l in self.lines if rx.search(l))

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.cond:
                self.lines.append((time.monotonic(), line))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    @property
    def pid(self):
        return self.proc.pid

    def log_text(self):
        with self.cond:
            return "\n".join(l for _, l in self.lines)

    def wait_line(self, pattern, timeout, start=0):
        """Wait for a stderr line matching `pattern` (index >= start); returns (index, match)."""
        rx = re.compile(pattern)
        dl = deadline(timeout)
        with self.cond:
            i = start
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i][1])
                    if m:
                        return i, m
                    i += 1
                if self.proc.poll() is not None and not self.reader.is_alive():
                    raise TestFailure("%s exited (rc=%s) before a line matching %r"
                                      % (self.name, self.proc.returncode, pattern))
                if time.monotonic() >= dl:
                    raise TestFailure("%s: no line matching %r within %.1fs"
                                      % (self.name, pattern, timeout))
                self.cond.wait(min(0.2, left(dl)))

    def access(self, route=None, end=None):
        with self.cond:
            lines = [l for _, l in self.lines]
        out = []
        for l in lines:
            m = ACCESS_RE.fullmatch(l)
            if not m:
                continue
            d = m.groupdict()
            for k in ("bytes_in", "bytes_out", "duration_ms"):
                d[k] = int(d[k])
            if route is not None and d["route"] != route:
                continue
            if end is not None and d["end"] != end:
                continue
            out.append(d)
        return out

    def wait_access(self, count, route=None, end=None, timeout=5.0):
        """Wait until at least `count` access lines match; returns them all."""
        dl = deadline(timeout)
        while True:
            got = self.access(route, end)
            if len(got) >= count:
                return got
            if time.monotonic() >= dl:
                raise TestFailure("wanted %d access lines (route=%s end=%s) within %.1fs, have "
                                  "%d: %s" % (count, route, end, timeout, len(got), got))
            with self.cond:
                self.cond.wait(min(0.1, left(dl)))

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for l in f:
                if l.startswith("VmRSS:"):
                    return int(l.split()[1])
        raise TestFailure("no VmRSS for pid %d" % self.proc.pid)

    def wrapper_lines(self):
        if not self.prefix:
            return 0
        with self.cond:
            for i, (_, l) in enumerate(self.lines):
                if l.startswith("Execing "):
                    return i + 1
            return len(self.lines)

    def check_log_format(self):
        with self.cond:
            lines = [l for _, l in self.lines]
        # Lines a wrapper (systemd-socket-activate) printed before exec'ing the daemon.
        lines = lines[self.wrapper_lines():]
        bad = [l for l in lines if not PRIO_RE.match(l)]
        check(not bad, "%s: log lines without a <N> priority prefix: %r" % (self.name, bad[:5]))
        acc = [l for l in lines if l.startswith("<6>access")]
        bad = [l for l in acc if not ACCESS_RE.fullmatch(l)]
        check(not bad, "%s: malformed access lines: %r" % (self.name, bad[:5]))
        bad = [l for l in acc if ACCESS_RE.fullmatch(l).group("end") not in END_REASONS]
        check(not bad, "%s: unknown end= reasons: %r" % (self.name, bad[:5]))

    def terminate(self):
        check(self.proc is not None, "daemon never started")
        check(self.proc.poll() is None,
              "%s died before SIGTERM (rc=%s)" % (self.name, self.proc.returncode))
        self.proc.send_signal(signal.SIGTERM)
        return time.monotonic()

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """The daemon must exit 0 within `timeout`; its log must be well-formed."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TestFailure("%s did not exit within %.1fs" % (self.name, timeout))
        finally:
            self.stopped = True
        self.reader.join(2)
        check(rc == 0, "%s exited %d after SIGTERM" % (self.name, rc))
        self.check_log_format()

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM; the daemon must exit 0 within `timeout`; its log must be well-formed."""
        self.terminate()
        self.wait_exit(timeout)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass


def run_cmd(args, timeout=10):
    """Run evproxyd (or anything) to completion: returns (rc, stdout, stderr) as text."""
    p = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def http_request(addr, raw, timeout=5):
    """Send raw to addr (the metrics listener), read to EOF: (status, {header: value}, body
    bytes); the Content-Length must match the body."""
    s = connect(addr, timeout)
    try:
        s.sendall(raw)
        _, _, data = recv_all(s, limit=16 << 20, keep=True, io_timeout=timeout)
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
    check(int(headers.get("content-length", -1)) == len(body), "content-length mismatch")
    return status, headers, body


def fetch_metrics(maddr, timeout=5):
    """The body of GET /metrics from the daemon's metrics listener at maddr."""
    return http_request(maddr, b"GET /metrics HTTP/1.0\r\n\r\n", timeout)[2].decode()


def metric_value(text, name, **labels):
    """The value of sample name{labels} (exactly those labels) in an exposition text."""
    want = sorted('%s="%s"' % kv for kv in labels.items())
    for line in text.splitlines():
        m = re.match(r"^%s(?:\{([^}]*)\})? (\S+)$" % re.escape(name), line)
        if m and sorted(filter(None, (m.group(1) or "").split(","))) == want:
            return float(m.group(2))
    raise TestFailure("no sample %s%s" % (name, labels))


# --------------------------------------------------------------------------- runner

class Ctx:
    def __init__(self, args, name):
        self.args = args
        self.evproxyd = args.evproxyd
        self.tmpdir = tempfile.mkdtemp(prefix="evt-", dir="/tmp")
        self.daemons = []
        self.servers = []
        self.closers = []
        self.name = name

    def server(self, kind, handler, name="upstream"):
        s = Server(make_addr(kind, self.tmpdir, "u"), handler, name=name)
        self.servers.append(s)
        return s

    def addr(self, kind, tag="l"):
        return make_addr(kind, self.tmpdir, tag)

    def refusing(self, kind):
        """A RefusingAddr of `kind`, closed at cleanup."""
        r = RefusingAddr(kind, self.tmpdir)
        self.defer(r.close)
        return r

    def daemon(self, config_text, name="evproxyd"):
        return Daemon(self, config_text, name)

    def defer(self, fn):
        self.closers.append(fn)

    def cleanup(self, keep):
        for d in self.daemons:
            d.kill()
        for s in self.servers:
            s.close()
        for fn in self.closers:
            try:
                fn()
            except Exception:
                pass
        if not keep:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


_TESTS = []


def test(fn):
    _TESTS.append(fn)
    return fn


def main(description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--evproxyd", required=True, help="path to the evproxyd binary")
    ap.add_argument("--keep", action="store_true", help="keep temp dirs")
    ap.add_argument("--version", default=None, help="expected version string (for -V)")
    ap.add_argument("-k", default=None, help="run only tests whose name contains this")
    ap.add_argument("--mode", default=None, help="forwarding mode for tests that take one")
    ap.add_argument("--mib", type=int, default=None, help="size override for bulk tests")
    args = ap.parse_args()
    check(os.access(args.evproxyd, os.X_OK), "not executable: %s" % args.evproxyd)
    failed = []
    t_all = time.monotonic()
    for fn in _TESTS:
        if args.k and args.k not in fn.__name__:
            continue
        ctx = Ctx(args, fn.__name__)
        t0 = time.monotonic()
        ok = False
        try:
            fn(ctx)
            ok = True
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            print("FAIL %s (%.1fs): %s: %s" % (fn.__name__, time.monotonic() - t0,
                                               type(e).__name__, e), flush=True)
            traceback.print_exc(file=sys.stdout)
            for d in ctx.daemons:
                print("---- %s log (%s), last 60 lines ----" % (d.name, d.conf_path))
                with d.cond:
                    tail = d.lines[-60:]
                for _, l in tail:
                    print("  " + l)
            for s in ctx.servers:
                for r in s.records:
                    if "traceback" in r.info:
                        print("---- %s handler error ----\n%s" % (s.name, r.info["traceback"]))
            failed.append(fn.__name__)
        finally:
            ctx.cleanup(keep=args.keep or not ok)
        if ok:
            print("PASS %s (%.1fs)" % (fn.__name__, time.monotonic() - t0), flush=True)
    print("%d failed, total %.1fs" % (len(failed), time.monotonic() - t_all), flush=True)
    sys.exit(1 if failed else 0)
