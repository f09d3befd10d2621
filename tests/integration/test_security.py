#!/usr/bin/env python3
"""Privileges and socket permissions.

drop_privileges: started as root with user = "nobody", the daemon binds a port below 1024 and
then runs with every uid and gid of nobody and no capabilities left; the low port forwards.
unix_socket_modes: a unix listener's file gets unix_mode (default 0660, never world-writable
unless configured), an explicit 0600 is honoured.
"""

import os
import pwd
import socket
import stat
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


@ev.test
def drop_privileges(ctx):
    if os.geteuid() != 0:
        ev.skip("needs root (CI runs as root)")
        return
    nobody = pwd.getpwnam("nobody")
    os.chmod(ctx.tmpdir, 0o755)  # nobody must be able to remove its socket file at exit
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    port = ev.low_port()
    listen = ev.Addr("tcp4", port)
    d = ctx.daemon(ev.make_config([{"name": "low", "listen": [listen],
                                    "upstreams": [echo.addr]}], user="nobody")).start()
    st = proc_status(d.pid)
    want_uid, want_gid = str(nobody.pw_uid), str(nobody.pw_gid)
    check(st["Uid"] == [want_uid] * 4, "Uid not all nobody: %s" % st["Uid"])
    check(st["Gid"] == [want_gid] * 4, "Gid not all nobody's group: %s" % st["Gid"])
    for cap in ("CapEff", "CapPrm", "CapAmb"):
        check(int(st[cap][0], 16) == 0, "%s not empty: %s" % (cap, st[cap]))
    # Every thread, not just the main one.
    for tid in os.listdir("/proc/%d/task" % d.pid):
        tst = proc_status(int(tid)) if os.path.exists("/proc/%s/status" % tid) else st
        check(tst["Uid"] == [want_uid] * 4, "thread %s kept uid %s" % (tid, tst["Uid"]))
    c = ev.connect(listen)
    ev.echo_roundtrip(c, b"through port %d as nobody" % port)
    c.close()
    d.stop()


@ev.test
def unix_socket_modes(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    default = ctx.addr("unix", "d")
    private = ctx.addr("unix", "p")
    d = ctx.daemon(ev.make_config([
        {"name": "dflt", "listen": [default], "upstreams": [echo.addr]},
        {"name": "priv", "listen": [private], "upstreams": [echo.addr], "unix_mode": "0600"},
    ])).start()
    m_default = stat.S_IMODE(os.stat(default.value).st_mode)
    m_private = stat.S_IMODE(os.stat(private.value).st_mode)
    print("  default %04o, configured 0600 -> %04o" % (m_default, m_private))
    check(m_default == 0o660, "default unix_mode is %04o, want 0660" % m_default)
    check(not m_default & 0o002, "unix socket world-writable by default")
    check(m_private == 0o600, "unix_mode 0600 gave %04o" % m_private)
    for addr in (default, private):
        c = ev.connect(addr)
        ev.echo_roundtrip(c, b"hello")
        c.close()
    d.stop()


if __name__ == "__main__":
    ev.main(__doc__)
