#!/usr/bin/env python3
"""Bandwidth limits (issue 16): rate (per connection) and route_rate (per route, shared by
every worker's connections), token buckets that shape the splice or copy lengths.

one_connection (--mode splice|copy): rate = { upload = "2M"; } (2 MiB/s); a client sends 10 MiB:
the upstream gets every byte (hash) at 2 MiB/s +- 10 %, while the daemon's CPU time (utime +
stime from /proc/PID/stat) stays under 15 % of the transfer's time (the figure is printed);
evproxy_route_throttled_total moved. The download direction is not limited (fast).
route_shared (--mode too): route_rate = { download = "4M"; }; 20 connections each receive 1 MiB from their
upstream at once: every client gets its bytes (hash), the aggregate is 4 MiB/s +- 10 %.
"""

import os
import sys
import time
import urllib.request

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402

MiB = ev.MiB


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric(port, name, route):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    want = '%s{route="%s"} ' % (name, route)
    for line in text.splitlines():
        if line.startswith(want):
            return int(line.split()[1])
    raise ev.TestFailure("no sample %s in /metrics" % want)


def pipes_made(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    return sum(int(l.split()[1]) for l in text.splitlines() if l.startswith("evproxy_pipes{"))


def within(what, got, want, tol=0.10):
    print("  %s: %.3f MiB/s (limit %.3f MiB/s, %+.1f %%)"
          % (what, got / MiB, want / MiB, 100.0 * (got - want) / want))
    check(abs(got - want) <= tol * want, "%s: %.0f B/s, want %.0f +- %d %%"
          % (what, got, want, int(tol * 100)))


@ev.test
def one_connection(ctx):
    mode = ctx.args.mode or "splice"
    sink = ctx.server("tcp4", ev.reply_after_eof_handler(ev.Stream(2, 4 * MiB)), name="sink")
    listen, mport = ctx.addr("tcp4"), ev.free_port()
    routes = [{"name": "bw", "listen": [listen], "upstreams": [sink.addr],
               "rate": {"upload": "2M"}}]
    d = ctx.daemon(ev.make_config(routes, forwarding=mode,
                                  metrics={"listen": "127.0.0.1:%d" % mport})).start()
    up = ev.Stream(1, 10 * MiB)
    up.sha256()  # hashed before the clock starts
    c = ev.connect(listen)
    cpu0, t0 = cpu_seconds(d.proc.pid), time.monotonic()
    ev.send_stream(c, up)
    c.shutdown(ev.socket.SHUT_WR)
    rec = sink.wait_conns(1)[0]
    check(rec.done.wait(30), "the upstream did not finish")
    n, sha, _ = ev.recv_all(c)
    cpu = cpu_seconds(d.proc.pid) - cpu0
    elapsed = rec.eof_at - t0
    check(rec.received == up.length and rec.sha256 == up.sha256(), "upload bytes differ")
    check(n == 4 * MiB and sha == ev.Stream(2, 4 * MiB).sha256(), "download bytes differ")
    within("upload, one connection (%s)" % mode, up.length / elapsed, 2 * MiB)
    print("  daemon CPU: %.3f s over %.2f s (%.1f %%)" % (cpu, elapsed, 100 * cpu / elapsed))
    if not os.environ.get("EVTEST_WRAPPER"):  # valgrind multiplies CPU time
        check(cpu < 0.15 * elapsed, "the daemon used %.2f s of CPU in %.2f s" % (cpu, elapsed))
    check(metric(mport, "evproxy_route_throttled_total", "bw") > 0, "never throttled")
    if mode == "splice":  # shaped, and still zero-copy: the pipes were used
        check(pipes_made(mport) > 0, "no splice pipe was used")
    c.close()
    d.stop()


def fetch(listen, want):
    c = ev.connect(listen)
    try:
        n, sha, _ = ev.recv_all(c, total_timeout=60)
        return n, sha, time.monotonic()
    finally:
        c.close()


@ev.test
def route_shared(ctx):
    each = ev.Stream(3, 1 * MiB)
    src = ctx.server("tcp4", ev.send_first_handler(each), name="source")
    listen = ctx.addr("tcp4")
    routes = [{"name": "rr", "listen": [listen], "upstreams": [src.addr],
               "route_rate": {"download": "4M"}}]
    d = ctx.daemon(ev.make_config(routes, forwarding=ctx.args.mode or "splice")).start()
    each.sha256()
    t0 = time.monotonic()
    tasks = [ev.Task(fetch, listen, each) for _ in range(20)]
    results = [t.join(90) for t in tasks]
    for n, sha, _ in results:
        check(n == each.length and sha == each.sha256(), "a client's bytes differ")
    elapsed = max(r[2] for r in results) - t0
    within("download, 20 connections sharing route_rate", 20 * each.length / elapsed, 4 * MiB)
    d.stop()


if __name__ == "__main__":
    ev.main(__doc__)
