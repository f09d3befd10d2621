#!/usr/bin/env python3
"""Weights, consistent hashing and per-server max_connections (issue 16), against the daemon.

weights_1_3: upstreams of weight 1 and 3, 400 connections: shares within 5 % of 25/75.
hash_sticky: balance = "hash"; 20 clients bound to 127.0.0.10..29 each land on one server over
  three rounds, and the 20 spread over more than one server.
hash_remove_by_reload: a reload drops one of 5 servers: only its clients move.
hash_health_ejected: a server that stops listening is ejected by health: its clients move,
  nobody else does; once it listens again (active health check) its clients come back.
max_connections: max_connections = 3 on the heavier server: 12 held connections put exactly 3
  there; the skips are counted in evproxy_upstream_refused_max_total.
"""

import collections
import os
import re
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402

SOURCES = ["127.0.0.%d" % (10 + i) for i in range(20)]


def roundtrip(listen, src=None, payload=b"ping\n"):
    """One echo round trip from source address src (None: any); returns the closed socket's
    local address."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(ev.IO_TIMEOUT)
    try:
        if src:
            s.bind((src, 0))
        s.connect(listen.sockaddr)
        ev.echo_roundtrip(s, payload)
        return s.getsockname()
    finally:
        s.close()


def served_by(d, route, n_before, n):
    """{client ip: set of upstreams} of access lines n_before..n_before+n of route."""
    acc = d.wait_access(n_before + n, route=route, timeout=10)[n_before:n_before + n]
    out = collections.defaultdict(set)
    for a in acc:
        check(a["end"] == "client_closed", "unexpected end: %s" % a)
        out[a["client"].rsplit(":", 1)[0]].add(a["upstream"])
    return out


def one_round(d, listen, route, rounds=1):
    """Every source connects `rounds` times; returns {source: upstream}, checking that each
    source always got the same one."""
    n0 = len(d.access(route=route))
    for _ in range(rounds):
        for src in SOURCES:
            roundtrip(listen, src)
    got = served_by(d, route, n0, rounds * len(SOURCES))
    check(sorted(got) == sorted(SOURCES), "sources seen: %s" % sorted(got))
    for src, ups in got.items():
        check(len(ups) == 1, "client %s went to %s" % (src, sorted(ups)))
    return {src: next(iter(ups)) for src, ups in got.items()}


def reload_and_wait(d, timeout=10.0):
    start = len(d.lines)
    os.kill(d.pid, signal.SIGHUP)
    _, m = d.wait_line(r"reloaded |reload failed", timeout, start=start)
    check("reloaded" in m.string, "reload: %s" % m.string)


@ev.test
def weights_1_3(ctx):
    ups = [ctx.server("tcp4", ev.echo_handler, name="w%d" % w) for w in (1, 3)]
    listen = ctx.addr("tcp4")
    route = {"name": "w", "listen": [listen],
             "upstreams": [{"address": ups[0].addr, "weight": 1},
                           {"address": ups[1].addr, "weight": 3}]}
    d = ctx.daemon(ev.make_config([route])).start()
    for _ in range(400):
        roundtrip(listen)
    acc = d.wait_access(400, route="w", timeout=10)
    counts = collections.Counter(a["upstream"] for a in acc)
    print("  shares over 400:", dict(counts))
    for u, share in ((ups[0], 0.25), (ups[1], 0.75)):
        got = counts[u.addr.conf] / 400.0
        check(abs(got - share) <= 0.05, "%s: share %.3f, want %.2f +- 0.05" % (u.addr, got, share))
    d.stop()


def five(ctx):
    return [ctx.server("tcp4", ev.echo_handler, name="h%d" % i) for i in range(5)]


@ev.test
def hash_sticky(ctx):
    ups = five(ctx)
    listen = ctx.addr("tcp4")
    route = {"name": "h", "listen": [listen], "balance": "hash", "upstreams": [u.addr for u in ups]}
    d = ctx.daemon(ev.make_config([route])).start()
    where = one_round(d, listen, "h", rounds=3)
    spread = collections.Counter(where.values())
    print("  20 clients over 5 servers:", sorted(spread.values()))
    check(len(spread) >= 3, "20 clients on only %d servers" % len(spread))
    d.stop()


@ev.test
def hash_remove_by_reload(ctx):
    ups = five(ctx)
    listen = ctx.addr("tcp4")

    def conf(servers):
        return ev.make_config([{"name": "h", "listen": [listen], "balance": "hash",
                                "upstreams": [u.addr for u in servers]}])
    d = ctx.daemon(conf(ups)).start()
    before = one_round(d, listen, "h")
    busiest = collections.Counter(before.values()).most_common(1)[0][0]
    gone = [u for u in ups if u.addr.conf == busiest][0]
    d.rewrite(conf([u for u in ups if u is not gone]))
    reload_and_wait(d)
    after = one_round(d, listen, "h")
    moved = [s for s in SOURCES if after[s] != before[s]]
    print("  removed %s (%d clients): %d moved" % (busiest, list(before.values()).count(busiest),
                                                  len(moved)))
    for s in SOURCES:
        if before[s] == busiest:
            check(after[s] != busiest, "client %s still on the removed server" % s)
        else:
            check(after[s] == before[s], "client %s moved from %s to %s though its server stayed"
                  % (s, before[s], after[s]))
    d.stop()


@ev.test
def hash_health_ejected(ctx):
    ups = five(ctx)
    listen = ctx.addr("tcp4")
    route = {"name": "h", "listen": [listen], "balance": "hash",
             "upstreams": [u.addr for u in ups],
             "health": {"fails": 1, "backoff": 60}, "health_check": {"interval": 0.2}}
    d = ctx.daemon(ev.make_config([route])).start()
    before = one_round(d, listen, "h")
    busiest = collections.Counter(before.values()).most_common(1)[0][0]
    k = [i for i, u in enumerate(ups) if u.addr.conf == busiest][0]
    ups[k].close()  # refuses from now on
    d.wait_line(r"upstream %s is down" % re.escape(busiest), 5)
    during = one_round(d, listen, "h")
    for s in SOURCES:
        if before[s] == busiest:
            check(during[s] != busiest, "client %s still on the ejected server" % s)
        else:
            check(during[s] == before[s], "client %s moved from %s to %s though its server was up"
                  % (s, before[s], during[s]))
    revived = ev.Server(ups[k].addr, ev.echo_handler, name="revived")
    ctx.servers.append(revived)
    d.wait_line(r"upstream %s is up again" % re.escape(busiest), 5)
    after = one_round(d, listen, "h")
    check(after == before, "after recovery: %s, before: %s" % (
        {s: after[s] for s in SOURCES if after[s] != before[s]}, before))
    d.stop()


@ev.test
def max_connections(ctx):
    ups = [ctx.server("tcp4", ev.echo_handler, name=n) for n in ("capped", "other")]
    listen, maddr = ctx.addr("tcp4"), ctx.addr("tcp4", "m")
    route = {"name": "m", "listen": [listen],
             "upstreams": [{"address": ups[0].addr, "weight": 10, "max_connections": 3},
                           {"address": ups[1].addr, "weight": 1}]}
    d = ctx.daemon(ev.make_config([route], metrics={"listen": maddr})).start()
    held = []
    for i in range(12):
        c = ev.connect(listen)
        ev.echo_roundtrip(c, b"held %d\n" % i)
        held.append(c)
    check(ups[0].count() == 3, "capped server has %d connections, max 3" % ups[0].count())
    check(ups[1].count() == 9, "other server has %d connections, want 9" % ups[1].count())
    text = ev.fetch_metrics(maddr)
    refused = ev.metric_value(text, "evproxy_upstream_refused_max_total", route="m",
                     upstream=ups[0].addr.conf)
    active = ev.metric_value(text, "evproxy_upstream_connections_active", route="m",
                    upstream=ups[0].addr.conf)
    check(refused >= 9, "refused_max %s, want >= 9" % refused)
    check(active == 3, "capped server active %s" % active)
    # One closes: the next connection may take its slot, and still no more than 3.
    held.pop(0).close()
    d.wait_access(1, route="m", timeout=5)
    for i in range(3):
        c = ev.connect(listen)
        ev.echo_roundtrip(c, b"more %d\n" % i)
        held.append(c)
    first = ups[0].records[0]
    check(first.done.wait(5), "the closed connection's upstream side did not end")
    open_there = sum(1 for r in ups[0].records if not r.done.is_set())
    check(open_there <= 3, "%d open on the capped server" % open_there)
    check(ups[0].count() == 4, "capped server: %d connections in all, want 4" % ups[0].count())
    for c in held:
        c.close()
    d.stop()


if __name__ == "__main__":
    ev.main(__doc__)
