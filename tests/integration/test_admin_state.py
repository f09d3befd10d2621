#!/usr/bin/env python3
"""Admin states under traffic, across reloads and restarts, and `evproxyctl reload`.

drain_under_load: 200 connections exchange data through two servers; server A is drained in
  the middle; A gets no new connection (40 more all reach B), not one byte is lost (sha256 of
  each connection's stream, both ways), and A's open connections go to zero once they end. With
  every server drained or in maintenance a new client is closed: neither is a last resort.
states_survive_reloads_and_restart: maint on A and drain on B survive a reload through
  evproxyctl, a SIGHUP reload and a restart of the daemon (state file); traffic only reaches C
  meanwhile. A reload that removes B drops its state (the state file no longer has it), and B
  comes back ready when it is added again.
reload_bad_file: `evproxyctl reload` of a broken file prints file:line, exits 1, and the daemon
  keeps serving the old configuration; status shows the failure. (Waiting for the workers:
  test_admin_reload.py.)
reload_port_in_use: `evproxyctl reload` of a file that passes the check but adds a listen port
  another socket holds prints "reload failed: listen ADDR: Address already in use", exits 1, and
  status says the same; the daemon keeps serving; once the port is free the reload works.
state_file_errors: a state file that is not JSON, or names an unknown state, stops the start
  (exit 1, the file and the reason); entries for servers no longer configured are dropped
  (logged, and gone from the rewritten file) while the others apply; a state file that cannot
  be written fails the command (exit 1, why) and leaves the server as it was; a socket path
  whose directory is missing fails the start with exit 1.
"""

import hashlib
import json
import os
import re
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402
import admin_util as au  # noqa: E402

N_CONNS = 200
PIECE = 16 * ev.KiB
ROUNDS = 6


def server_info(ctx, sock, route, server):
    rc, res = au.ctl_json(ctx, sock, "servers", route)
    check(rc == 0, "servers: %s" % res)
    for s in res["servers"]:
        if s["server"] == server:
            return s
    raise ev.TestFailure("no server %s in %s" % (server, res))


def flow(conns, progress, idx, gate):
    """Each connection echoes ROUNDS pieces of its own stream; returns [(sent sha, got sha)].
    The last two rounds wait for gate, so every connection is still open at the drain."""
    streams = [ev.Stream(1000 + idx * 100 + k, PIECE * ROUNDS) for k in range(len(conns))]
    got = [hashlib.sha256() for _ in conns]
    for rnd in range(ROUNDS):
        if rnd == ROUNDS - 2:
            check(gate.wait(60), "the drain never came")
        for k, c in enumerate(conns):
            piece = streams[k].bytes(rnd * PIECE, PIECE)
            c.sendall(piece)
            got[k].update(ev.recv_exact(c, PIECE))
        progress[idx] = rnd + 1
    for c in conns:
        c.shutdown(1)
        check(c.recv(1) == b"", "bytes after the stream")
        c.close()
    return [(s.sha256(), g.hexdigest()) for s, g in zip(streams, got)]


@ev.test
def drain_under_load(ctx):
    a = ctx.server("tcp4", ev.echo_handler, name="a")
    b = ctx.server("tcp4", ev.echo_handler, name="b")
    listen = ctx.addr("tcp4")
    route = {"name": "web", "listen": [listen], "upstreams": [a.addr, b.addr]}
    d, sock = au.start(ctx, [route], max_connections=1000)
    conns = []
    for i in range(N_CONNS):
        c = ev.connect(listen)
        ev.echo_roundtrip(c, b"hello")
        conns.append(c)
    on_a = server_info(ctx, sock, "web", a.addr.conf)["active"]
    check(on_a > 0 and len(a.records) == on_a, "a has %d (%d records)" % (on_a, len(a.records)))
    progress = [0] * 10
    gate = threading.Event()
    tasks = [ev.Task(flow, conns[i * 20:(i + 1) * 20], progress, i, gate, name="flow%d" % i)
             for i in range(10)]
    dl = ev.deadline(60)
    while min(progress) < 2 and ev.left(dl) > 0.02:
        time.sleep(0.02)
    check(min(progress) >= 2, "no flow: %s" % progress)
    rc, out, err = au.ctl(ctx, sock, "drain", "web", a.addr.conf)
    check(rc == 0 and "drain (was ready)" in out, "drain: %s %s" % (out, err))
    a_seen = len(a.records)
    info = server_info(ctx, sock, "web", a.addr.conf)
    check(info["state"] == "drain" and info["active"] == on_a, "after drain: %s" % info)
    au.check_goes_to(listen, b, [a], 40)
    gate.set()
    results = []
    for t in tasks:
        results += t.join(120)
    bad = [i for i, (s, g) in enumerate(results) if s != g]
    check(len(results) == N_CONNS and not bad, "hash mismatch on %d connections" % len(bad))
    check(len(a.records) == a_seen, "a got %d connections after the drain"
          % (len(a.records) - a_seen))
    dl = ev.deadline(10)
    while server_info(ctx, sock, "web", a.addr.conf)["active"] and ev.left(dl) > 0.05:
        time.sleep(0.05)
    check(server_info(ctx, sock, "web", a.addr.conf)["active"] == 0, "a's connections stay")
    # Neither drain nor maint is a last resort: with both out, a new client is closed.
    rc, _, _ = au.ctl(ctx, sock, "maint", "web", b.addr.conf)
    check(rc == 0, "maint b")
    n_a, n_b = len(a.records), len(b.records)
    c = ev.connect(listen)
    how, _ = ev.wait_closed(c, 5)
    c.close()
    check(len(a.records) == n_a and len(b.records) == n_b, "a drained/maint server was used")
    d.wait_access(1, route="web", end="connect_failed")
    d.wait_line(r"<4>route web: client \S+: no upstream to try \(every server is drained or in "
                r"maintenance\)$", 5)
    d.stop()


def states(ctx, sock):
    rc, res = au.ctl_json(ctx, sock, "servers")
    check(rc == 0, "servers: %s" % res)
    return {s["server"]: s["admin"] for s in res["servers"]}


@ev.test
def states_survive_reloads_and_restart(ctx):
    a, b, c = (ctx.server("tcp4", ev.echo_handler, name=n) for n in "abc")
    listen, other = ctx.addr("tcp4"), ctx.addr("unix")
    web = {"name": "web", "listen": [listen], "upstreams": [a.addr, b.addr, c.addr]}
    d, sock = au.start(ctx, [web])
    for cmd, srv in (("maint", a), ("drain", b)):
        rc, out, err = au.ctl(ctx, sock, cmd, "web", srv.addr.conf)
        check(rc == 0, "%s: %s" % (cmd, err))
    want = {a.addr.conf: "maint", b.addr.conf: "drain", c.addr.conf: "ready"}
    # Reload 1, through evproxyctl, adding a route.
    d.rewrite(au.config(ctx, [web, {"name": "other", "listen": [other],
                                    "upstreams": [c.addr]}]))
    rc, out, err = au.ctl(ctx, sock, "reload")
    check(rc == 0, "reload 1: %s" % err)
    check(states(ctx, sock) == want, "after reload 1: %s" % states(ctx, sock))
    au.check_goes_to(listen, c, [a, b], 6)
    # Reload 2, by SIGHUP, changing the route.
    web2 = dict(web, idle_timeout=60)
    d.rewrite(au.config(ctx, [web2]))
    start = len(d.lines)
    os.kill(d.pid, signal.SIGHUP)
    d.wait_line(r"reloaded ", 10, start=start)
    check(states(ctx, sock) == want, "after reload 2: %s" % states(ctx, sock))
    au.check_goes_to(listen, c, [a, b], 6)
    # A restart reads the state file.
    d.stop()
    check(au.state_file(ctx) == {("web", a.addr.conf): "maint", ("web", b.addr.conf): "drain"},
          "state file: %s" % au.state_file(ctx))
    d, sock = au.start(ctx, [web2], name="again")
    d.wait_line(r"admin: route web server %s: maint \(from the state file\)" % a.addr.conf, 5)
    check(states(ctx, sock) == want, "after restart: %s" % states(ctx, sock))
    au.check_goes_to(listen, c, [a, b], 6)
    # B leaves the configuration: its state goes; back again, it is ready.
    web3 = dict(web2, upstreams=[a.addr, c.addr])
    d.rewrite(au.config(ctx, [web3], name="again"))
    rc, out, err = au.ctl(ctx, sock, "reload")
    check(rc == 0, "reload 3: %s" % err)
    check(au.state_file(ctx) == {("web", a.addr.conf): "maint"}, "b's state kept in the file")
    d.rewrite(au.config(ctx, [web2], name="again"))
    rc, out, err = au.ctl(ctx, sock, "reload")
    check(rc == 0, "reload 4: %s" % err)
    want[b.addr.conf] = "ready"
    check(states(ctx, sock) == want, "after reload 4: %s" % states(ctx, sock))
    d.stop()


@ev.test
def reload_bad_file(ctx):
    a, b = ctx.server("tcp4", ev.echo_handler, name="a"), ctx.server("tcp4", ev.echo_handler,
                                                                     name="b")
    listen = ctx.addr("tcp4")
    route = {"name": "web", "listen": [listen], "upstreams": [a.addr]}
    d, sock = au.start(ctx, [route])
    good = au.config(ctx, [dict(route, upstreams=[b.addr])])
    text = good.replace("routes = (", "max_connections = 0;\nroutes = (")
    line = text.splitlines().index("max_connections = 0;") + 1
    d.rewrite(text)
    rc, out, err = au.ctl(ctx, sock, "reload")
    where = "%s:%d: max_connections: 0 is out of range" % (d.conf_path, line)
    check(rc == 1 and out == "" and "reload failed: " + where in err,
          "bad reload: rc %d %r %r" % (rc, out, err))
    au.check_goes_to(listen, a, [b], 3)
    rc, st = au.ctl_json(ctx, sock, "status")
    check(st["last_reload"]["ok"] is False and where in st["last_reload"]["error"],
          "status: %s" % st["last_reload"])
    rc, res = au.ctl_json(ctx, sock, "reload")
    check(rc == 1 and res["ok"] is False and where in res["error"], "json: %s" % res)
    d.rewrite(good)
    rc, out, err = au.ctl(ctx, sock, "reload")
    check(rc == 0 and "applied by every worker" in out, "good reload: %r" % err)
    au.check_goes_to(listen, b, [a], 3)
    rc, st = au.ctl_json(ctx, sock, "status")
    check(st["last_reload"]["ok"] is True and st["last_reload"]["error"] is None, "status ok")
    d.stop()


@ev.test
def reload_port_in_use(ctx):
    a = ctx.server("tcp4", ev.echo_handler, name="a")
    listen = ctx.addr("tcp4")
    route = {"name": "web", "listen": [listen], "upstreams": [a.addr]}
    d, sock = au.start(ctx, [route])
    busy = ev.Addr("tcp4", ev.free_port())
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ctx.defer(holder.close)
    holder.bind(busy.sockaddr)
    holder.listen(1)
    d.rewrite(au.config(ctx, [dict(route, listen=[listen, busy])]))
    rc, out, err = au.ctl(ctx, sock, "reload")
    why = "listen %s: Address already in use" % busy.conf
    check(rc == 1 and out == "" and "reload failed: " + why in err,
          "reload with a port in use: rc %d %r %r" % (rc, out, err))
    rc, st = au.ctl_json(ctx, sock, "status")
    check(st["last_reload"]["ok"] is False and st["last_reload"]["error"] == why,
          "status: %s" % st["last_reload"])
    au.check_goes_to(listen, a, [], 2)
    holder.close()
    rc, out, err = au.ctl(ctx, sock, "reload")
    check(rc == 0 and "applied by every worker" in out, "reload once free: %r" % err)
    au.check_goes_to(busy, a, [], 2)
    d.stop()


def start_fails(ctx, routes, name, pattern, **kw):
    d = ctx.daemon(au.config(ctx, routes, name, **kw), name=name).start(wait_ready=False)
    rc = d.proc.wait(ev.READY_TIMEOUT)
    d.stopped = True
    d.reader.join(2)
    check(rc == 1, "%s: exit %s, want 1" % (name, rc))
    d.wait_line(pattern, 1)
    check(d.count_lines(r"ready:") == 0, "%s: ready anyway" % name)


@ev.test
def state_file_errors(ctx):
    a, b = ctx.server("tcp4", ev.echo_handler, name="a"), ctx.server("tcp4", ev.echo_handler,
                                                                     name="b")
    listen = ctx.addr("tcp4")
    routes = [{"name": "web", "listen": [listen], "upstreams": [a.addr, b.addr]}]
    path = au.state_path(ctx)
    with open(path, "w") as f:
        f.write('{"version": 1,\n "servers": [ oops ]}\n')
    start_fails(ctx, routes, "d1", r"<3>admin: state file %s:2: .*\(fix or remove the file\)"
                % re.escape(path))
    with open(path, "w") as f:
        json.dump({"version": 1, "servers": [{"route": "web", "server": a.addr.conf,
                                              "state": "asleep"}]}, f)
    start_fails(ctx, routes, "d2", r'<3>admin: state file .*: servers\[0\]: unknown state '
                r'"asleep"')
    os.unlink(path)
    start_fails(ctx, routes, "d3", r"<3>admin: listen unix:.*/nodir/x.sock: bind: No such file",
                admin={"listen": "unix:" + os.path.join(ctx.tmpdir, "nodir", "x.sock")})
    with open(path, "w") as f:
        json.dump({"version": 1, "servers": [
            {"route": "web", "server": "127.0.0.1:1", "state": "maint"},
            {"route": "gone", "server": a.addr.conf, "state": "maint"},
            {"route": "web", "server": b.addr.conf, "state": "drain"}]}, f)
    d, sock = au.start(ctx, routes, name="d4")
    d.wait_line(r"<5>admin: state file: route gone server %s is no longer configured"
                % re.escape(a.addr.conf), 5)
    check(states(ctx, sock) == {a.addr.conf: "ready", b.addr.conf: "drain"}, "applied")
    check(au.state_file(ctx) == {("web", b.addr.conf): "drain"}, "stale entries kept")
    au.check_goes_to(listen, a, [b], 4)
    d.stop()
    # A state file in a directory that does not exist cannot be written: nothing changes.
    missing = os.path.join(ctx.tmpdir, "missing", "state")
    d, sock = au.start(ctx, routes, name="d5", admin={"state_file": missing})
    rc, out, err = au.ctl(ctx, sock, "maint", "web", a.addr.conf)
    check(rc == 1 and "creating the state file %s.tmp: No such file or directory (the state "
          "was not changed)" % missing in err, "unwritable: rc %d %r" % (rc, err))
    check(states(ctx, sock) == {a.addr.conf: "ready", b.addr.conf: "ready"}, "changed anyway")
    d.stop()


if __name__ == "__main__":
    ev.main(__doc__)
