#!/usr/bin/env python3
"""Unix socket paths: one rule for route listeners and the metrics endpoint (daemon/sock.c).

mode_race: while a thread stat()s two listener paths in a tight loop (and reads the daemon's
  Umask from /proc/PID/status), 12 reloads each add the two unix listeners (unix_mode "0440",
  and the default 0660, which the test's umask 022 would cut to 0640) and 12 take them away
  again. The files never have a bit outside their unix_mode at any instant seen, end with
  exactly unix_mode, and the daemon's umask never changes (worker threads run meanwhile).
stale_rule: for a route listener and for the metrics endpoint alike, a socket file nobody
  listens on is replaced; a socket in use makes the daemon refuse to start (exit 1, "another
  process is listening on PATH") and is left working; a file that is not a socket is refused
  ("exists and is not a socket") and left as it was. Refusing to start is a clean exit: status 1
  and nothing on stderr but log lines.
own_file_only: files put in place of the daemon's (a listener's and the metrics endpoint's)
  while it runs survive a reload that drops the listener and the daemon's exit; its own files
  are removed.
chown_to_user: started as root with user = "nobody" in a sticky world-writable directory, the
  listener's and the metrics endpoint's files belong to nobody, so the daemon, now nobody, can
  still remove both at exit.
"""

import os
import pwd
import re
import signal
import socket
import stat
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402

RELOADS = 20


def daemon_umask(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    raise ev.TestFailure("no Umask in /proc/%d/status" % pid)


# A separate process, so that the stat() loop runs flat out on the other CPU (no GIL shared with
# the test): prints the stat()s that found the file, then each mode seen with a bit outside the
# allowed ones.
WATCHER = r"""
import os, stat, sys, time
path, allowed, seconds = sys.argv[1], int(sys.argv[2], 8), float(sys.argv[3])
stop = sys.argv[4]
lstat, exists = os.lstat, os.path.exists
bad, seen, end = set(), 0, time.monotonic() + seconds
open(stop + ".started", "w").close()  # the test waits for this before it reloads
for i in range(500_000_000):
    if i % 4096 == 0 and (time.monotonic() > end or exists(stop)):
        break
    try:
        m = lstat(path).st_mode & 0o7777
    except FileNotFoundError:
        continue
    seen += 1
    if m & ~allowed:
        bad.add(m)
print(seen, *sorted("%04o" % m for m in bad))
"""


class ModeWatch:
    """stat()s `path` in a tight loop in a child process (bounded in count and time); meanwhile
    a thread reads pid's umask (bounded too)."""

    def __init__(self, ctx, path, allowed, pid, seconds):
        self.stopfile = os.path.join(ctx.tmpdir, "watch-%d.stop" % allowed)
        self.proc = ev.subprocess.Popen(
            [sys.executable, "-c", WATCHER, path, "%o" % allowed, str(seconds), self.stopfile],
            stdout=ev.subprocess.PIPE, stdin=ev.subprocess.DEVNULL)
        ctx.defer(self.proc.kill)
        # A loaded machine may take seconds to start an interpreter: the reloads it is meant to
        # watch must not be over before it looks.
        dl = ev.deadline(30)
        while not os.path.exists(self.stopfile + ".started") and time.monotonic() < dl:
            time.sleep(0.01)
        self.pid = pid
        self.umasks = set()
        self.stop = threading.Event()
        self.task = ev.Task(self._umasks, seconds, name="umaskwatch")

    def _umasks(self, seconds):
        dl = ev.deadline(seconds)
        for _ in range(10_000_000):
            if self.stop.is_set() or time.monotonic() >= dl:
                return
            self.umasks.add(daemon_umask(self.pid))

    def finish(self):
        """(stat()s that found the file, [modes seen outside the allowed ones])"""
        self.stop.set()
        open(self.stopfile, "w").close()
        out, _ = self.proc.communicate(timeout=20)
        self.task.join(10)
        words = out.decode().split()
        return int(words[0]), words[1:]


@ev.test
def mode_race(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    tcp = ctx.addr("tcp4")
    strict, dflt = ctx.addr("unix", "strict"), ctx.addr("unix", "dflt")
    base = [{"name": "tcp", "listen": [tcp], "upstreams": [echo.addr]}]
    with_unix = base + [
        {"name": "strict", "listen": [strict], "upstreams": [echo.addr], "unix_mode": "0440"},
        {"name": "dflt", "listen": [dflt], "upstreams": [echo.addr]}]
    old_umask = os.umask(0o022)  # the daemon inherits it: the default 0660 needs a fix-up
    try:
        d = ctx.daemon(ev.make_config(base, workers=2)).start()
    finally:
        os.umask(old_umask)
    umask0 = daemon_umask(d.pid)
    watch = ModeWatch(ctx, strict.value, 0o440, d.pid, 120)
    done = 0
    try:
        for i in range(RELOADS):
            for routes, present in ((with_unix, True), (base, False)):
                mark = len(d.lines)
                d.rewrite(ev.make_config(routes, workers=2))
                os.kill(d.pid, signal.SIGHUP)
                d.wait_line(r"reloaded ", 10, start=mark)
                dl = ev.deadline(5)
                while (os.path.exists(strict.value) != present or
                       os.path.exists(dflt.value) != present) and time.monotonic() < dl:
                    time.sleep(0.005)
                check(os.path.exists(strict.value) == present, "reload %d: %s %s" % (
                    i, strict.value, "missing" if present else "left behind"))
                if present:
                    got = (stat.S_IMODE(os.stat(strict.value).st_mode),
                           stat.S_IMODE(os.stat(dflt.value).st_mode))
                    check(got == (0o440, 0o660), "reload %d: modes %04o %04o, want 0440 0660"
                          % ((i,) + got))
                    c = ev.connect(strict)
                    ev.echo_roundtrip(c, b"reload %d" % i)
                    c.close()
            done += 1
    finally:
        seen, extra = watch.finish()
    print("  %d reload pairs; the watcher found the 0440 file %d times; modes outside 0440: %s; "
          "umasks seen %s" % (done, seen, extra or "none",
                              sorted("%04o" % u for u in watch.umasks)))
    check(seen > 0, "the watcher never saw the file")
    check(not extra, "%s was more open than its unix_mode 0440: %s" % (strict.value, extra))
    check(watch.umasks == {umask0}, "the daemon's umask changed while it ran: %s (was %04o)"
          % (sorted("%04o" % u for u in watch.umasks), umask0))
    d.stop()


def write_config(ctx, name, text):
    path = os.path.join(ctx.tmpdir, name + ".conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def start_fails(ctx, name, text, pattern):
    """evproxyd must refuse to start with `text`: exit status 1 and a log line matching
    pattern."""
    rc, _, err = ev.run_cmd([ctx.evproxyd, "-c", write_config(ctx, name, text)], timeout=30)
    print("  %s: rc=%d: %s" % (name, rc, " | ".join(err.strip().splitlines()[-2:])))
    check(re.search(pattern, err, re.M), "%s: no line matching %r in:\n%s" % (name, pattern, err))
    check(rc == 1, "%s: exit status %d, want 1; log:\n%s" % (name, rc, err))
    # Nothing but log lines (a sanitizer's report would exit 1 too).
    bad = [l for l in err.splitlines() if not ev.PRIO_RE.match(l)]
    check(not bad, "%s: lines that are not the daemon's log: %s" % (name, bad[:5]))


def stale_socket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()  # the file stays, nobody listens
    check(stat.S_ISSOCK(os.lstat(path).st_mode), "could not make a stale socket at %s" % path)


def configs(ctx, kind, path, echo):
    """A config whose route listener (kind "listener") or metrics endpoint (kind "metrics") is
    the unix path `path`."""
    upath = ev.Addr("unix", path)
    if kind == "listener":
        return ev.make_config([{"name": "u", "listen": [upath], "upstreams": [echo.addr]}])
    return ev.make_config([{"name": "t", "listen": [ctx.addr("tcp4")],
                            "upstreams": [echo.addr]}], metrics={"listen": upath})


def works(kind, path):
    c = ev.connect(ev.Addr("unix", path))
    try:
        if kind == "listener":
            ev.echo_roundtrip(c, b"through the replaced socket")
        else:
            c.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            n, _, data = ev.recv_all(c, limit=1 << 20, keep=True)
            check(data.startswith(b"HTTP/1.0 200"), "metrics answer %r" % data[:40])
    finally:
        c.close()


@ev.test
def stale_rule(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    for kind in ("listener", "metrics"):
        # A stale socket is replaced.
        path = os.path.join(ctx.tmpdir, "%s-stale.sock" % kind)
        stale_socket(path)
        d = ctx.daemon(configs(ctx, kind, path, echo), name="evproxyd-" + kind).start()
        works(kind, path)
        d.stop()
        check(not os.path.exists(path), "%s: %s left behind at exit" % (kind, path))
        # A socket in use is refused, and keeps working.
        path = os.path.join(ctx.tmpdir, "%s-busy.sock" % kind)
        busy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ctx.defer(busy.close)
        busy.bind(path)
        busy.listen(4)
        start_fails(ctx, kind + "-busy", configs(ctx, kind, path, echo),
                    r"<3>.*listen unix:%s: another process is listening on %s$"
                    % (re.escape(path), re.escape(path)))
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(5)
        c.connect(path)
        busy.settimeout(5)
        busy.accept()[0].close()
        c.close()
        # A file that is not a socket is refused, and left as it was.
        path = os.path.join(ctx.tmpdir, "%s-file" % kind)
        with open(path, "w") as f:
            f.write("not a socket\n")
        start_fails(ctx, kind + "-file", configs(ctx, kind, path, echo),
                    r"<3>.*listen unix:%s: %s exists and is not a socket; not replacing it$"
                    % (re.escape(path), re.escape(path)))
        with open(path) as f:
            check(f.read() == "not a socket\n", "%s: the regular file was changed" % kind)


def replace_with_socket(path):
    """Put a new (listening) socket at path in place of what is there; returns it."""
    os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    return s


@ev.test
def own_file_only(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    dropped, kept, mpath = ctx.addr("unix", "drop"), ctx.addr("unix", "keep"), ctx.addr("unix", "m")
    own = ctx.addr("unix", "own")
    routes = [{"name": "drop", "listen": [dropped], "upstreams": [echo.addr]},
              {"name": "keep", "listen": [kept, own], "upstreams": [echo.addr]}]
    d = ctx.daemon(ev.make_config(routes, metrics={"listen": mpath})).start()
    repl = {}
    for a in (dropped, kept, mpath):
        repl[a.value] = replace_with_socket(a.value)
        ctx.defer(repl[a.value].close)
    inodes = {p: os.lstat(p).st_ino for p in repl}
    mark = len(d.lines)
    d.rewrite(ev.make_config(routes[1:], metrics={"listen": mpath}))
    os.kill(d.pid, signal.SIGHUP)
    d.wait_line(r"reloaded ", 10, start=mark)
    time.sleep(0.5)  # the workers let go of the dropped listener after the reload line
    d.stop()
    for p, ino in inodes.items():
        check(os.path.exists(p) and os.lstat(p).st_ino == ino,
              "the socket put at %s during the run was removed" % p)
    check(not os.path.exists(own.value), "the daemon's own file %s was left behind" % own.value)
    for what in ("listen %s" % dropped.conf, "listen %s" % kept.conf,
                 "metrics: listen %s" % mpath.conf):
        check(d.count_lines(r"%s: .* is no longer our socket" % re.escape(what)) == 1,
              "no log line about leaving the replaced file of %s" % what)


@ev.test
def chown_to_user(ctx):
    if os.geteuid() != 0:
        ev.skip("needs root (CI runs as root)")
        return
    nobody = pwd.getpwnam("nobody")
    os.chmod(ctx.tmpdir, 0o1777)  # sticky, like /tmp: only a file's owner may remove it
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    listen, mpath = ctx.addr("unix", "l"), ctx.addr("unix", "m")
    d = ctx.daemon(ev.make_config([{"name": "u", "listen": [listen], "upstreams": [echo.addr]}],
                                  metrics={"listen": mpath}, user="nobody")).start()
    owners = {p: os.lstat(p).st_uid for p in (listen.value, mpath.value)}
    works("listener", listen.value)
    d.stop()
    check(all(uid == nobody.pw_uid for uid in owners.values()),
          "socket files not given to nobody: %s" % owners)
    left = [p for p in owners if os.path.exists(p)]
    check(not left, "left behind at exit (the daemon, now nobody, could not remove them): %s"
          % left)


if __name__ == "__main__":
    ev.main(__doc__)
