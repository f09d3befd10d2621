#!/usr/bin/env python3
"""Logs as journal fields: when $JOURNAL_STREAM names the daemon's stderr, access lines and
events go to journald's native socket with fields.

The test runs itself again in a private mount namespace (unshare -m, as root), mounts a tmpfs
where /run/systemd/journal/ is, and binds the journal's socket there itself; it parses the
native protocol (KEY=value lines, the binary length-prefixed form, an entry passed as a memfd
with SCM_RIGHTS).

fields: the daemon's stderr is a file and JOURNAL_STREAM its dev:ino; one normal connection and
  one reset by the client: every access entry carries PRIORITY=6, SYSLOG_IDENTIFIER=evproxyd,
  EVPROXY_ROUTE, _CLIENT, _UPSTREAM, _BYTES_IN, _BYTES_OUT, _DURATION_MS, _END (client_closed,
  reset) and _CONN_ID with the values of what the test did, and MESSAGE is today's stderr line
  without its <6> prefix; events (ready, stopping) come with their priority; stderr stays empty.
startup_error: a failure at start-up (listen address in use) has PRIORITY=3 and ERRNO=98, and
  the daemon exits 1.
fallback: the journal's socket goes away while the daemon runs (first it refuses, then its file
  is gone too): the next lines go to stderr in today's format, none lost.
no_journal: without JOURNAL_STREAM, or with one that names another file, lines go to stderr as
  before and the journal's socket gets nothing.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402

JOURNAL_DIR = "/run/systemd/journal"
SOCKET = JOURNAL_DIR + "/socket"
NS_ENV = "EVTEST_JOURNAL_NS"  # set once the test runs in its own mount namespace
ACCESS_FIELDS = ("EVPROXY_ROUTE", "EVPROXY_CLIENT", "EVPROXY_UPSTREAM", "EVPROXY_BYTES_IN",
                 "EVPROXY_BYTES_OUT", "EVPROXY_DURATION_MS", "EVPROXY_END", "EVPROXY_CONN_ID")


def parse_entry(data):
    """One native-protocol entry: {KEY: [values]} (a key may repeat). A field is KEY=value\\n,
    or KEY\\n, a little-endian 64-bit length, the value, \\n (values with newlines)."""
    fields = {}
    i = 0
    for _ in range(len(data) + 1):
        if i >= len(data):
            break
        nl = data.find(b"\n", i)
        check(nl >= 0, "entry field without a newline: %r" % data[i:i + 80])
        eq = data.find(b"=", i, nl)
        if eq >= 0:
            key, value, i = data[i:eq], data[eq + 1:nl], nl + 1
        else:
            key = data[i:nl]
            check(nl + 9 <= len(data), "binary field %r cut short" % key)
            n = int.from_bytes(data[nl + 1:nl + 9], "little")
            value = data[nl + 9:nl + 9 + n]
            check(len(value) == n and data[nl + 9 + n:nl + 10 + n] == b"\n",
                  "binary field %r: bad length or end" % key)
            i = nl + 10 + n
        check(re.fullmatch(rb"[A-Z0-9_]+", key), "bad field name %r" % key)
        fields.setdefault(key.decode(), []).append(value.decode("utf-8", "replace"))
    return fields


class Journal:
    """The journal's socket, bound by the test; a thread receives and parses every entry."""

    def __init__(self):
        self.entries = []
        self.cond = threading.Condition()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(SOCKET)
        self.sock.settimeout(0.1)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="journal", daemon=True)
        self.thread.start()

    def _run(self):
        fd_size = socket.CMSG_SPACE(4 * 16)
        for _ in range(10 ** 7):
            if self.stopping.is_set():
                return
            try:
                data, anc, _, _ = self.sock.recvmsg(1 << 18, fd_size)
            except socket.timeout:
                continue
            except OSError:
                return
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    # A big entry comes as a sealed memfd and an empty datagram.
                    for k in range(0, len(payload) - len(payload) % 4, 4):
                        fd = int.from_bytes(payload[k:k + 4], sys.byteorder)
                        try:
                            data += os.pread(fd, 1 << 24, 0)
                        finally:
                            os.close(fd)
            entry = parse_entry(data)
            with self.cond:
                self.entries.append(entry)
                self.cond.notify_all()

    def wait(self, pred, what, timeout=10.0):
        """The first entry pred(entry) accepts."""
        dl = ev.deadline(timeout)
        with self.cond:
            for _ in range(10 ** 6):
                for e in self.entries:
                    if pred(e):
                        return e
                if time.monotonic() >= dl:
                    break
                self.cond.wait(ev.left(dl))
        raise ev.TestFailure("journal: no %s within %.0fs; got %s" % (what, timeout,
                                                                       self.messages()))

    def messages(self):
        with self.cond:
            return [e.get("MESSAGE") for e in self.entries]

    def close(self, unlink=True):
        """Stop receiving: the socket file stays (connections refused) unless unlink."""
        self.stopping.set()
        self.sock.close()
        self.thread.join(2)
        if unlink:
            try:
                os.unlink(SOCKET)
            except FileNotFoundError:
                pass


def one(entry, key):
    v = entry.get(key, [])
    check(len(v) == 1, "field %s: %r in %s" % (key, v, entry))
    return v[0]


def private_journal_dir():
    """Mount a tmpfs at the deepest existing directory of /run/systemd/journal (this process is
    alone in its mount namespace), and make the directory."""
    if os.path.ismount(JOURNAL_DIR) and os.environ.get("EVTEST_JOURNAL_MOUNTED"):
        return
    at = JOURNAL_DIR
    while not os.path.isdir(at):
        at = os.path.dirname(at)
    rc = subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "evtest-journal", at],
                        stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    check(rc.returncode == 0, "mount tmpfs on %s: %s" % (at, rc.stderr))
    os.makedirs(JOURNAL_DIR, exist_ok=True)
    os.environ["EVTEST_JOURNAL_MOUNTED"] = "1"


def needs_namespace():
    if os.environ.get(NS_ENV) != "1":
        ev.skip("the journal tests need root and unshare(1) (a private mount namespace)")
        return False
    private_journal_dir()
    return True


class FileDaemon:
    """evproxyd with stderr to a file (whose dev:ino JOURNAL_STREAM can name)."""

    def __init__(self, ctx, conf, stream=True):
        self.conf = os.path.join(ctx.tmpdir, "evproxyd.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.err_path = os.path.join(ctx.tmpdir, "stderr")
        self.err = open(self.err_path, "wb")
        st = os.fstat(self.err.fileno())
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        if stream:
            env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        wrapper = os.environ.get("EVTEST_WRAPPER", "").split()
        self.proc = subprocess.Popen(wrapper + [ctx.evproxyd, "-c", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.err, env=env)
        ctx.defer(self.kill)

    def stderr_lines(self):
        with open(self.err_path, "rb") as f:
            return [l for l in f.read().decode("utf-8", "replace").splitlines()
                    if not l.startswith("==")]  # a checker's own lines (valgrind)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(ev.STOP_TIMEOUT)
        check(rc == 0, "evproxyd exited %d" % rc)
        self.err.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def normal_and_reset(listen):
    """One connection closed normally, one reset by the client: [(client address, bytes)]."""
    out = []
    c = ev.connect(listen)
    ev.echo_roundtrip(c, b"n" * 1234)
    out.append(("127.0.0.1:%d" % c.getsockname()[1], 1234))
    c.close()
    c = ev.connect(listen)
    ev.echo_roundtrip(c, b"r" * 777)
    out.append(("127.0.0.1:%d" % c.getsockname()[1], 777))
    ev.set_rst_on_close(c)
    c.close()
    return out


def expected(clients):
    """The sorted (client, bytes, end) of normal_and_reset()'s two connections."""
    return sorted((c, n, e) for (c, n), e in zip(clients, ("client_closed", "reset")))


def config(ctx, listen, upstream):
    return ev.make_config([{"name": "web", "listen": [listen], "upstreams": [upstream]}])


def start(ctx):
    """The journal's socket, then a daemon with route web to an echo server whose stderr is
    the journal's stream: (journal, echo server, listen address, daemon, its ready entry)."""
    j = Journal()
    ctx.defer(j.close)
    echo = ctx.server("tcp4", ev.echo_handler)
    listen = ctx.addr("tcp4")
    d = FileDaemon(ctx, config(ctx, listen, echo.addr))
    ready = j.wait(lambda e: "ready:" in one(e, "MESSAGE"), "ready line", ev.READY_TIMEOUT)
    return j, echo, listen, d, ready


@ev.test
def fields(ctx):
    if not needs_namespace():
        return
    j, echo, listen, d, ready = start(ctx)
    check(one(ready, "PRIORITY") == "5" and one(ready, "SYSLOG_IDENTIFIER") == "evproxyd",
          "ready entry: %s" % ready)
    clients = normal_and_reset(listen)
    ids = set()
    for (client, n), end in zip(clients, ("client_closed", "reset")):
        e = j.wait(lambda e, c=client: e.get("EVPROXY_CLIENT") == [c], "access entry of " + client)
        for k in ACCESS_FIELDS + ("MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER"):
            one(e, k)
        check(one(e, "PRIORITY") == "6", "PRIORITY %s" % e)
        check(one(e, "SYSLOG_IDENTIFIER") == "evproxyd", "SYSLOG_IDENTIFIER %s" % e)
        check(one(e, "EVPROXY_ROUTE") == "web", "route %s" % e)
        check(one(e, "EVPROXY_UPSTREAM") == echo.addr.conf, "upstream %s" % e)
        check(one(e, "EVPROXY_BYTES_IN") == str(n) and one(e, "EVPROXY_BYTES_OUT") == str(n),
              "bytes %s" % e)
        check(one(e, "EVPROXY_END") == end, "end %s, want %s" % (e, end))
        dur = one(e, "EVPROXY_DURATION_MS")
        check(dur.isdigit() and int(dur) < 60000, "duration %s" % e)
        cid = one(e, "EVPROXY_CONN_ID")
        check(cid.isdigit() and int(cid) > 0 and cid not in ids, "conn id %s" % e)
        ids.add(cid)
        msg = one(e, "MESSAGE")
        want = ("access route=web client=%s upstream=%s bytes_in=%d bytes_out=%d "
                "duration_ms=%s end=%s" % (client, echo.addr.conf, n, n, dur, end))
        check(msg == want, "MESSAGE %r, want %r" % (msg, want))
        check(ev.ACCESS_RE.fullmatch("<6>" + msg), "MESSAGE is not an access line: %r" % msg)
    d.stop()
    for text in ("stopping: no new connections", "evproxyd stopped"):
        e = j.wait(lambda e, t=text: one(e, "MESSAGE").startswith(t), "line " + text)
        check(one(e, "PRIORITY") == "5" and "EVPROXY_END" not in e, "entry %s" % e)
    bad = [l for l in d.stderr_lines() if l.startswith("<")]
    check(not bad, "lines went to stderr as well: %s" % bad)


@ev.test
def startup_error(ctx):
    """A start-up failure with an errno: PRIORITY=3, ERRNO=, the same words, exit status 1."""
    if not needs_namespace():
        return
    j = Journal()
    ctx.defer(j.close)
    taken = socket.socket()
    ctx.defer(taken.close)
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    d = FileDaemon(ctx, ev.make_config([{"name": "web", "listen": ["127.0.0.1:%d" % port],
                                         "upstreams": ["127.0.0.1:9"]}]))
    rc = d.proc.wait(ev.READY_TIMEOUT)
    check(rc == 1, "evproxyd exited %d, want 1" % rc)
    e = j.wait(lambda e: "ERRNO" in e, "entry with ERRNO")
    check(one(e, "ERRNO") == "98" and one(e, "PRIORITY") == "3", "entry %s" % e)
    check(one(e, "MESSAGE").endswith(": " + os.strerror(98)) and str(port) in one(e, "MESSAGE"),
          "MESSAGE %r" % one(e, "MESSAGE"))
    check(not [l for l in d.stderr_lines() if l.startswith("<")],
          "lines on stderr: %s" % d.stderr_lines())


@ev.test
def fallback(ctx):
    if not needs_namespace():
        return
    j, echo, listen, d, _ = start(ctx)
    c = ev.connect(listen)
    ev.echo_roundtrip(c, b"x" * 10)
    c.close()
    j.wait(lambda e: "EVPROXY_END" in e, "first access entry")
    # journald went away: its socket refuses (the file is left), then is not there at all.
    for unlink in (False, True):
        j.close(unlink)
        clients = normal_and_reset(listen)
        dl = ev.deadline(10)
        for _ in range(1000):
            lines = d.stderr_lines()
            got = [l for l in lines if ev.ACCESS_RE.fullmatch(l)][2 if unlink else 0:]
            if len(got) >= 2 or time.monotonic() >= dl:
                break
            time.sleep(0.05)
        check(len(got) == 2, "want 2 more access lines on stderr, have: %s" % lines)
        # The two connections may end in either order.
        have = sorted((m["client"], int(m["bytes_in"]), m["end"])
                      for m in (ev.ACCESS_RE.fullmatch(l) for l in got))
        check(have == expected(clients), "stderr lines %s" % got)
    d.stop()
    check("<5>evproxyd stopped" in d.stderr_lines(), "no last line on stderr: %s"
          % d.stderr_lines())
    check(all(ev.PRIO_RE.match(l) for l in d.stderr_lines()), "bad lines %s" % d.stderr_lines())


@ev.test
def no_journal(ctx):
    if not needs_namespace():
        return
    j = Journal()
    ctx.defer(j.close)
    echo = ctx.server("tcp4", ev.echo_handler)
    for stream in (None, "1:1"):
        listen = ctx.addr("tcp4")
        env = {} if stream is None else {"JOURNAL_STREAM": stream}
        saved = os.environ.pop("JOURNAL_STREAM", None)
        try:
            d = ctx.daemon(config(ctx, listen, echo.addr), name="plain%s" % bool(stream))
            d.start(env=env)
        finally:
            if saved is not None:
                os.environ["JOURNAL_STREAM"] = saved
        clients = normal_and_reset(listen)
        acc = d.wait_access(2)
        check(sorted((a["client"], a["bytes_in"], a["end"]) for a in acc) == expected(clients),
              "access lines %s" % acc)
        d.stop()
    check(not j.messages(), "the journal got entries: %s" % j.messages())


if __name__ == "__main__":
    if os.environ.get(NS_ENV) is None and os.geteuid() == 0 and shutil.which("unshare"):
        # Again, alone in a mount namespace: the tmpfs over /run/systemd/journal is ours only.
        os.environ[NS_ENV] = "1"
        os.execvp("unshare", ["unshare", "--mount", "--propagation", "private", sys.executable]
                  + sys.argv)
    ev.main(__doc__.splitlines()[0])
