#!/usr/bin/env python3
"""The admin socket and evproxyctl (issue 15): commands, their JSON, their errors and access.

status_and_servers: status (human and JSON) shows version, config, workers, connections and
  per-route totals that match the traffic; servers [ROUTE] lists every server with its state,
  health, connections and last error; an unknown route is an error (exit 1).
set_state: drain/maint/ready change a server's state (JSON answer, metrics series
  evproxy_upstream_admin_state, the state file), new connections avoid it, an unknown route or
  server or maint --kill is refused with exit 1 and a message; usage errors exit 2.
check_command: check on a good file exits 0; on a broken file prints file:line, exits 1, and
  nothing changes.
bad_requests: raw requests that are not JSON, not an object, name an unknown command, miss or
  add keys, or exceed 4 KiB get {"ok": false, "error": ...}; a client that sends nothing is cut
  off after about 5 s; a 17th concurrent client is closed unanswered.
access: with the socket file opened to everyone (mode 0666), `nobody` is still refused by the
  peer-credential check (closed unanswered, logged); with mode 0660 it cannot connect at all;
  as a member of the socket's group it is answered; and as the daemon's own user (user =
  "nobody") it may reload (the ExecReload case).
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402
import admin_util as au  # noqa: E402


@ev.test
def status_and_servers(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    bad = ctx.refusing("tcp4")
    listen = ctx.addr("tcp4")
    route = {"name": "web", "listen": [listen], "upstreams": [bad.addr, echo.addr],
             "health": {"fails": 1, "backoff": 60}}
    d, sock = au.start(ctx, [route])
    sent = 0
    for i in range(3):
        c = ev.connect(listen)
        ev.echo_roundtrip(c, b"y" * (100 * (i + 1)))
        sent += 100 * (i + 1)
        c.close()
    d.wait_access(3, route="web")
    held = ev.connect(listen)
    ev.echo_roundtrip(held, b"held")
    rc, st = au.ctl_json(ctx, sock, "status")
    check(rc == 0 and st["ok"] is True, "status: %s" % st)
    check(st["version"] and st["config"] == d.conf_path, "status: %s" % st)
    check(st["workers"] == 2 and st["connections"] == 1, "status counts: %s" % st)
    check(st["phase"] == "running" and st["last_reload"] is None, "status: %s" % st)
    check(st["pid"] == d.pid and st["uptime_s"] >= 0, "status pid/uptime: %s" % st)
    r = st["routes"][0]
    check(r["name"] == "web" and r["accepted"] == 4 and r["active"] == 1, "route: %s" % r)
    check(r["connect_failures"] == 1 and r["bytes_in"] == sent + 4, "route: %s" % r)
    rc, out, _ = au.ctl(ctx, sock, "status")
    check(rc == 0 and "evproxyd " in out and d.conf_path in out, "status text: %s" % out)
    check(all(r[k] == 0 for k in ("queued", "no_server", "refused_client_limit", "rate_limited",
                                  "queue_timeouts", "queue_full", "throttled")),
          "route policy counters: %s" % r)
    # ROUTE SERVERS ACTIVE QUEUED ACCEPTED ...
    check(re.search(r"^web\s+2\s+1\s+0\s+4\s", out, re.M), "status table: %s" % out)
    rc, sv = au.ctl_json(ctx, sock, "servers", "web")
    check(rc == 0 and len(sv["servers"]) == 2, "servers: %s" % sv)
    b, e = sv["servers"]
    check(b["server"] == bad.addr.conf and b["state"] == "down" and b["health"] == "down",
          "bad server: %s" % b)
    check(b["last_error"] == "Connection refused" and b["connect_failures"] == 1,
          "bad server error: %s" % b)
    check(e["state"] == "ready" and e["admin"] == "ready" and e["active"] == 1, "echo: %s" % e)
    check(e["connects"] == 4 and e["last_error"] is None, "echo totals: %s" % e)
    rc, out, _ = au.ctl(ctx, sock, "servers")
    check(rc == 0 and "Connection refused" in out, "servers text: %s" % out)
    check(re.search(r"^web\s+%s\s+-\s+ready\s+up\s+1\s+4\s+0\s+-$" % re.escape(echo.addr.conf), out,
                    re.M), "servers table: %s" % out)
    rc, out, err = au.ctl(ctx, sock, "servers", "nope")
    check(rc == 1 and 'no route "nope"' in err and out == "", "unknown route: %s %s" % (rc, err))
    held.close()
    d.stop()


@ev.test
def set_state(ctx):
    a = ctx.server("tcp4", ev.echo_handler, name="a")
    b = ctx.server("unix", ev.echo_handler, name="b")
    listen, maddr = ctx.addr("tcp4"), ctx.addr("tcp4", "m")
    route = {"name": "web", "listen": [listen], "upstreams": [a.addr, b.addr]}
    d, sock = au.start(ctx, [route], metrics={"listen": maddr})
    rc, res = au.ctl_json(ctx, sock, "drain", "web", a.addr.conf)
    check(rc == 0 and res == {"ok": True, "route": "web", "server": a.addr.conf,
                              "state": "drain", "previous": "ready", "active": 0},
          "drain: %s" % res)
    check(au.state_file(ctx) == {("web", a.addr.conf): "drain"}, "state file after drain")
    check(not os.path.exists(au.state_path(ctx) + ".tmp"), "temp file left")
    au.check_goes_to(listen, b, [a], 6)
    metrics = au.metrics(maddr)
    check('evproxy_upstream_admin_state{route="web",upstream="%s",state="drain"} 1'
          % a.addr.conf in metrics, "metrics drain:\n%s" % metrics)
    check('evproxy_upstream_admin_state{route="web",upstream="%s",state="ready"} 0'
          % a.addr.conf in metrics, "metrics ready 0")
    check('evproxy_upstream_admin_state{route="web",upstream="%s",state="ready"} 1'
          % b.addr.conf in metrics, "metrics b ready")
    # The same address spelt another way names the same server.
    rc, out, _ = au.ctl(ctx, sock, "maint", "web", "localhost:%d" % a.addr.value)
    check(rc == 0 and "maint (was drain)" in out, "maint by another spelling: %s" % out)
    check(au.state_file(ctx) == {("web", a.addr.conf): "maint"}, "state file after maint")
    rc, out, _ = au.ctl(ctx, sock, "ready", "web", a.addr.conf)
    check(rc == 0 and "ready (was maint)" in out, "ready: %s" % out)
    check(au.state_file(ctx) == {}, "state file after ready")
    au.check_goes_to(listen, a, [], 4, at_least=1)
    # Mistakes: exit 1 with the reason, nothing changed.
    for args, msg in ((("drain", "nope", a.addr.conf), 'no route "nope"'),
                      (("drain", "web", "127.0.0.1:1"), 'route web has no server "127.0.0.1:1"'),
                      (("maint", "--kill", "web", "127.0.0.1:1"), "has no server")):
        rc, out, err = au.ctl(ctx, sock, *args)
        check(rc == 1 and msg in err, "%s: rc %d, %r" % (args, rc, err))
    rc, res = au.ctl_json(ctx, sock, "drain", "web", "nowhere")
    check(rc == 1 and res["ok"] is False and "no server" in res["error"], "json error: %s" % res)
    for args, msg in (((), "no command given"), (("frobnicate",), "unknown command"),
                      (("drain", "web"), "wrong number of arguments"),
                      (("drain", "--kill", "web", "x"), "--kill goes with maint only"),
                      (("kill", "abc"), "not a connection id"),
                      (("-t", "0", "status"), "not a timeout")):
        rc, out, err = au.ctl(ctx, sock, *args)
        check(rc == 2 and msg in err, "usage %s: rc %d, %r" % (args, rc, err))
    rc, res = au.ctl_json(ctx, sock, "servers")
    check([s["state"] for s in res["servers"]] == ["ready", "ready"], "changed: %s" % res)
    rc, out, err = au.ctl(ctx, os.path.join(ctx.tmpdir, "none.sock"), "status")
    check(rc == 1 and "No such file or directory" in err, "no socket: %s" % err)
    d.stop()


@ev.test
def check_command(ctx):
    echo = ctx.server("tcp4", ev.echo_handler)
    listen = ctx.addr("tcp4")
    routes = [{"name": "web", "listen": [listen], "upstreams": [echo.addr]}]
    d, sock = au.start(ctx, routes)
    rc, out, err = au.ctl(ctx, sock, "check")
    check(rc == 0 and "is valid" in out, "check good: %s %s" % (out, err))
    text = au.config(ctx, routes).replace("workers = 2;", "workers = 2;\nbogus = 1;")
    d.rewrite(text)
    rc, out, err = au.ctl(ctx, sock, "check")
    line = text.splitlines().index("bogus = 1;") + 1
    check(rc == 1 and "%s:%d: bogus: unknown setting" % (d.conf_path, line) in err,
          "check bad: rc %d %r" % (rc, err))
    rc, res = au.ctl_json(ctx, sock, "check")
    check(rc == 1 and res["ok"] is False and ":%d:" % line in res["error"], "json: %s" % res)
    check(d.count_lines("reloading") == 0, "check reloaded")
    c = ev.connect(listen)
    ev.echo_roundtrip(c, b"still")
    c.close()
    d.stop()


@ev.test
def conns_and_kill(ctx):
    a = ctx.server("tcp4", ev.echo_handler, name="a")
    b = ctx.server("unix", ev.echo_handler, name="b")
    listen, other = ctx.addr("tcp4"), ctx.addr("tcp4")
    routes = [{"name": "web", "listen": [listen], "upstreams": [a.addr, b.addr]},
              {"name": "other", "listen": [other], "upstreams": [b.addr]}]
    d, sock = au.start(ctx, routes)
    clients = []
    for i in range(6):
        c = ev.connect(listen)
        ev.echo_roundtrip(c, b"z" * (10 * (i + 1)))
        clients.append(c)
    o = ev.connect(other)
    ev.echo_roundtrip(o, b"other")
    rc, res = au.ctl_json(ctx, sock, "conns")
    check(rc == 0 and res["ok"] and not res["partial"], "conns: %s" % res)
    conns = res["connections"]
    check(len(conns) == 7, "conns: %d of 7" % len(conns))
    ids = [c["id"] for c in conns]
    check(ids == sorted(ids) and len(set(ids)) == 7 and min(ids) > 0, "ids: %s" % ids)
    by_client = {c["client"]: c for c in conns}
    for i, s in enumerate(clients):
        c = by_client.get("127.0.0.1:%d" % s.getsockname()[1])
        check(c is not None, "client %d not listed: %s" % (i, list(by_client)))
        check(c["route"] == "web" and c["state"] == "forwarding", "conn: %s" % c)
        check(c["bytes_in"] == 10 * (i + 1) and c["bytes_out"] == 10 * (i + 1), "bytes: %s" % c)
        check(c["upstream"] in (a.addr.conf, b.addr.conf) and c["age_s"] >= c["idle_s"] >= 0,
              "conn: %s" % c)
    on_a = [c for c in conns if c["upstream"] == a.addr.conf]
    check(len(on_a) == 3, "round robin: %d on a" % len(on_a))
    rc, res = au.ctl_json(ctx, sock, "conns", "--route", "other")
    check([c["upstream"] for c in res["connections"]] == [b.addr.conf], "route filter: %s" % res)
    rc, res = au.ctl_json(ctx, sock, "conns", "--server", b.addr.conf)
    check(len(res["connections"]) == 4, "server filter: %s" % res)
    rc, res = au.ctl_json(ctx, sock, "conns", "--route", "web", "--server", a.addr.conf)
    check(sorted(c["id"] for c in res["connections"]) == sorted(c["id"] for c in on_a),
          "both filters: %s" % res)
    rc, out, _ = au.ctl(ctx, sock, "conns", "--route", "other")
    check(rc == 0 and re.search(r"^ID\s+ROUTE\s+CLIENT\s+UPSTREAM", out) and
          re.search(r"^\d+\s+other\s+127\.0\.0\.1:\d+\s+%s\s+forwarding\s" %
                    re.escape(b.addr.conf), out, re.M), "conns text: %s" % out)
    # kill ID: that client is reset, logged end=killed, and gone from the list.
    victim = on_a[0]
    rc, out, err = au.ctl(ctx, sock, "kill", str(victim["id"]))
    check(rc == 0 and "connection %d reset" % victim["id"] in out, "kill: %s %s" % (out, err))
    vsock = clients[[by_client.get("127.0.0.1:%d" % s.getsockname()[1]) for s in clients]
                    .index(victim)]
    how, _ = ev.wait_closed(vsock, 5)
    check(how == "reset", "killed client saw %s" % how)
    d.wait_access(1, route="web", end="killed")
    rc, res = au.ctl_json(ctx, sock, "conns")
    check(victim["id"] not in [c["id"] for c in res["connections"]], "killed one listed")
    rc, out, err = au.ctl(ctx, sock, "kill", str(victim["id"]))
    check(rc == 1 and "no connection %d" % victim["id"] in err, "kill again: %r" % err)
    # maint --kill: a's two others are reset, b's keep working.
    rc, res = au.ctl_json(ctx, sock, "maint", "--kill", "web", a.addr.conf)
    check(rc == 0 and res["state"] == "maint" and res["killed"] == 2, "maint --kill: %s" % res)
    d.wait_access(3, route="web", end="killed")
    for c in clients:
        info = by_client["127.0.0.1:%d" % c.getsockname()[1]]
        if info["upstream"] == a.addr.conf:
            if info is not victim:
                check(ev.wait_closed(c, 5)[0] == "reset", "a's client not reset")
        else:
            ev.echo_roundtrip(c, b"after")
        c.close()
    ev.echo_roundtrip(o, b"after")
    o.close()
    d.stop()


def raw_answer(sock_path, data, timeout=10):
    """Send data on a new admin connection; the JSON answer, or None if closed unanswered."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b""
        for _ in range(10000):
            try:
                k = s.recv(65536)
            except ConnectionResetError:
                break
            if not k:
                break
            out += k
    finally:
        s.close()
    if not out:
        return None
    check(out.endswith(b"\n") and out.count(b"\n") == 1, "answer not one line: %r" % out)
    return json.loads(out)


@ev.test
def bad_requests(ctx):
    echo = ctx.server("tcp4", ev.echo_handler)
    routes = [{"name": "web", "listen": [ctx.addr("tcp4")], "upstreams": [echo.addr]}]
    d, sock = au.start(ctx, routes)
    cases = (
        (b"not json\n", "bad request: not JSON"),
        (b"[1, 2]\n", "bad request: expected a JSON object"),
        (b'{"cmd": "nope"}\n', 'bad request: unknown command "nope"'),
        (b'{"cmd": 7}\n', 'bad request: "cmd" must be a string'),
        (b'{"route": "web"}\n', 'bad request: "cmd" is missing'),
        (b'{"cmd": "drain", "route": "web"}\n', 'bad request: "server" is missing'),
        (b'{"cmd": "status", "x": 1}\n', 'bad request: unexpected key "x"'),
        (b'{"cmd": "status", "cmd": "status"}\n', "bad request: not JSON: duplicate"),
        (b'{"cmd": "kill", "id": -3}\n', 'bad request: "id" must be a positive integer'),
        (b'{"cmd": "servers", "route": "' + b"r" * 64 + b'"}\n',
         'bad request: "route" must have 1 to 63 bytes'),
        (b'{"cmd": "status"} {}\n', "bad request: not JSON"),
        (b"{" + b" " * 5000 + b"}\n", "bad request: request too large"),
    )
    for data, msg in cases:
        res = raw_answer(sock, data)
        check(res is not None and res["ok"] is False and res["error"].startswith(msg),
              "%r: %s" % (data[:60], res))
    res = raw_answer(sock, b'{"cmd":"status"}\n')
    check(res["ok"] is True and res["routes"][0]["name"] == "web", "good raw: %s" % res)
    # A client that never finishes its line is cut off after ADMIN_REQUEST_TIMEOUT_MS.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.sendall(b'{"cmd":')
    t0 = time.monotonic()
    how, got = ev.wait_closed(s, 10)
    took = time.monotonic() - t0
    s.close()
    check(got == 0 and 4.0 <= took <= 8.0, "slow client: %s after %.1fs" % (how, took))
    # At most 16 clients at once: the 17th is closed unanswered, and room comes back.
    idle = []
    for _ in range(16):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sock)
        idle.append(s)
    time.sleep(0.3)
    check(raw_answer(sock, b'{"cmd":"status"}\n', timeout=3) is None, "17th client answered")
    d.wait_line(r"admin: 16 clients connected, closing a new one", 5)
    for s in idle:
        s.close()
    res = None
    for _ in range(50):
        res = raw_answer(sock, b'{"cmd":"status"}\n')
        if res is not None:
            break
        time.sleep(0.1)
    check(res and res["ok"], "no room after the idle clients left")
    d.stop()


def as_nobody():
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


def ctl_nobody(ctx, ctl, sock, *args):
    p = subprocess.run([ctl, "-s", sock] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=90,
                       preexec_fn=as_nobody)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


@ev.test
def access(ctx):
    if os.geteuid() != 0:
        ev.skip("needs root to run a client as nobody")
        return
    os.chmod(ctx.tmpdir, 0o755)  # nobody must reach the socket and the client
    ctl = os.path.join(ctx.tmpdir, "evproxyctl")
    shutil.copy(au.ctl_path(ctx), ctl)
    os.chmod(ctl, 0o755)
    echo = ctx.server("tcp4", ev.echo_handler)
    routes = [{"name": "web", "listen": [ctx.addr("tcp4")], "upstreams": [echo.addr]}]
    # 1. Everyone may open the file, but the peer check still says no.
    d, sock = au.start(ctx, routes, admin={"mode": "0666"})
    check(oct(os.stat(sock).st_mode & 0o777) == "0o666", "mode not applied")
    rc, out, err = ctl_nobody(ctx, ctl, sock, "status")
    check(rc == 1 and out == "" and "without an answer" in err, "nobody: %d %r" % (rc, err))
    d.wait_line(r"<4>admin: refused a client with uid 65534 gid 65534", 5)
    rc, out, err = ctl_nobody(ctx, ctl, sock, "reload")
    check(rc == 1 and d.count_lines("reloading") == 0, "nobody reloaded")
    d.stop()
    # 2. The default mode 0660 (root's group): nobody cannot even connect.
    d, sock = au.start(ctx, routes, name="d2")
    check(oct(os.stat(sock).st_mode & 0o777) == "0o660", "default mode")
    rc, out, err = ctl_nobody(ctx, ctl, sock, "status")
    check(rc == 1 and "Permission denied" in err, "nobody 0660: %d %r" % (rc, err))
    d.stop()
    # 3. A member of the socket's group is let in.
    d, sock = au.start(ctx, routes, name="d3", admin={"group": "nogroup"})
    check(os.stat(sock).st_gid == 65534, "group not applied")
    rc, out, err = ctl_nobody(ctx, ctl, sock, "status")
    check(rc == 0 and "evproxyd" in out, "group member: %d %r" % (rc, err))
    d.stop()
    # 4. The daemon's own user (ExecReload runs as User=evproxy): the socket is its own.
    os.chmod(au.state_dir(ctx), 0o777)
    d, sock = au.start(ctx, routes, name="d4", user="nobody", admin={"mode": "0600"})
    check(os.stat(sock).st_uid == 65534, "socket owner")
    rc, out, err = ctl_nobody(ctx, ctl, sock, "reload")
    check(rc == 0 and "applied by every worker" in out, "own user reload: %d %r" % (rc, err))
    rc, out, err = ctl_nobody(ctx, ctl, sock, "drain", "web", echo.addr.conf)
    check(rc == 0, "own user drain: %r" % err)
    rc, out, err = au.ctl(ctx, sock, "ready", "web", echo.addr.conf)
    check(rc == 0, "root on the daemon's socket: %r" % err)
    d.stop()


if __name__ == "__main__":
    ev.main(__doc__)
