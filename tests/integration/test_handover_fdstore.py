#!/usr/bin/env python3
"""Restart without a drop through systemd's fd store (handover = { fdstore = true; }), with a
fake service manager: a NOTIFY_SOCKET receiver that keeps the fds sent with FDSTORE=1 (and
drops them on FDSTOREREMOVE=1, by name), and relaunches evproxyd with them at fds 3.. and
LISTEN_FDS / LISTEN_FDNAMES / LISTEN_PID exactly as systemd does (LISTEN_PID is the exec'd
process's own pid: the launcher places the fds, sets it and execs in the same process).

inflight: bytes in flight both ways (splice and copy), a half-closed connection, a unix and a
TCP listener; SIGTERM the old one (it must hand over, not drain, and exit 0), start a new one
with a bad configuration (exit 1, the store keeps everything), then a good one: every byte
arrives, the new one removes what it took from the store (else finished connections would stay
open in the store and clients would never see EOF).
"""

import array
import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
import test_handover as th  # noqa: E402
ev._TESTS.clear()  # its helpers only: not its tests
from evtest import check  # noqa: E402

LAUNCH = r"""
import fcntl, os, sys
fds = [int(x) for x in sys.argv[1].split(",")] if sys.argv[1] else []
names = sys.argv[2]
high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 3 + len(fds)) for fd in fds]  # out of the way of 3..
for fd in fds:
    os.close(fd)
for i, fd in enumerate(high):
    os.dup2(fd, 3 + i)  # dup2: the copy is not close-on-exec
    os.close(fd)
os.environ["LISTEN_FDS"] = str(len(fds))
os.environ["LISTEN_FDNAMES"] = names
os.environ["LISTEN_PID"] = str(os.getpid())
os.execvp(sys.argv[3], sys.argv[3:])  # a checker (EVTEST_WRAPPER) may come first
"""


class FakeStore:
    """The service manager's side of NOTIFY_SOCKET: messages, and the fd store."""

    def __init__(self, tmpdir):
        self.path = os.path.join(tmpdir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.settimeout(0.1)
        self.lock = threading.Lock()
        self.store = []  # (name, fd)
        self.messages = []
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                msg, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(253 * 4))
            except socket.timeout:
                continue
            except OSError:
                return
            fds = array.array("i")
            for level, typ, data in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
            kv = dict(l.split("=", 1) for l in msg.decode().split("\n") if "=" in l)
            with self.lock:
                self.messages.append(kv)
                if kv.get("FDSTORE") == "1":
                    self.store += [(kv.get("FDNAME", "stored"), fd) for fd in fds]
                    fds = []
                elif kv.get("FDSTOREREMOVE") == "1":
                    keep = []
                    for name, fd in self.store:
                        if name == kv.get("FDNAME"):
                            os.close(fd)
                        else:
                            keep.append((name, fd))
                    self.store = keep
            for fd in fds:
                os.close(fd)

    def names(self):
        with self.lock:
            return [n for n, _ in self.store]

    def launch(self, daemon, env=None):
        """Start `daemon` as systemd would with the store's fds."""
        with self.lock:
            fds = [fd for _, fd in self.store]
            names = ":".join(n for n, _ in self.store)
        prefix = [sys.executable, "-c", LAUNCH, ",".join(map(str, fds)), names]
        e = {"NOTIFY_SOCKET": self.path}
        e.update(env or {})
        return prefix, e, fds

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()
        with self.lock:
            for _, fd in self.store:
                os.close(fd)
            self.store = []


def start_with_store(store, d, wait_ready=True):
    prefix, env, fds = store.launch(d)
    return d.start(prefix=prefix, env=env, pass_fds=fds, wait_ready=wait_ready,
                   timeout=10 * th.SLOW)


def inflight(ctx, mode):
    store = FakeStore(ctx.tmpdir)
    ctx.defer(store.close)
    conf, cases = th.setup(ctx, mode)
    conf += "handover = { fdstore = true; };\n"
    old = ctx.daemon(conf, name="old").start(env={"NOTIFY_SOCKET": store.path})
    clients = th.start_clients(cases)
    th.wait_in_flight(clients)
    for name, c, srv, back in clients:
        check(c.got[0] < back.length, "%s: finished before the handover: test too fast" % name)
    old.stop(15 * th.SLOW)
    _, m = old.wait_line(r"handover: gave 3 listeners and (\d) connections \((\d+) bytes in "
                         r"flight\) to the fd store", 1)
    print("  %s: %s connections, %s bytes in flight at the handover"
          % (mode, m.group(1), m.group(2)))
    n = int(m.group(1))
    check(n >= 2 and int(m.group(2)) > 0, "too little in flight at the handover")
    names = store.names()
    # Listener sockets: 2 TCP listeners of one per worker (2), a unix one; 2 per connection.
    check(names.count("evproxy-handover") == 1 and names.count("evproxy-fd") == 2 + 2 + 1 + 2 * n,
          "store after the stop: %s" % names)
    # A new process whose configuration does not load: exit 1, the store untouched.
    bad = ctx.daemon("routes = ( {", name="bad")
    start_with_store(store, bad, wait_ready=False)
    check(bad.proc.wait(10 * th.SLOW) == 1, "bad config: exit %s" % bad.proc.returncode)
    check(sorted(store.names()) == sorted(names), "the store changed: %s" % store.names())
    new = ctx.daemon(conf, name="new")
    start_with_store(store, new)
    new.wait_line(r"took over 3 listeners and %d connections .*; %d resumed" % (n, n), 1)
    dl = ev.deadline(5)
    while store.names():
        check(time.monotonic() < dl, "store not emptied: %s" % store.names())
        time.sleep(0.05)
    th.finish_clients(clients)
    th.check_access_once(old, new, clients)
    new.stop()


@ev.test
def fdstore_splice(ctx):
    inflight(ctx, "splice")


@ev.test
def fdstore_copy(ctx):
    inflight(ctx, "copy")


if __name__ == "__main__":
    ev.main(__doc__)
