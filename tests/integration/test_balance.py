#!/usr/bin/env python3
"""Balancing and upstream health.

round_robin / least_conn / random: distribution over 3 echo upstreams (access log upstream=).
  least_conn holds connections open and checks that new ones go to the least loaded server;
  random (two choices, the less loaded wins) keeps held connections within a narrow band.
passive_health: a refusing upstream is skipped after `fails` failed connects (logged once),
  probed once per back-off (doubling), and back in use once it accepts again.
all_down_still_tried: when every upstream is down, connections still try them.
active_check: a down upstream comes back through health_check alone, with no client traffic.
"""

import collections
import os
import re
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402


def id_echo_handler(rec, server):
    """First line is the client's id (kept in rec.info), then echo everything."""
    s = rec.sock
    buf = b""
    while b"\n" not in buf:
        d = s.recv(4096)
        if not d:
            return
        buf += d
    rec.info["id"] = buf.split(b"\n", 1)[0].decode()
    s.sendall(buf)
    ev.echo_handler(rec, server)


def roundtrip(listen, cid):
    c = ev.connect(listen)
    ev.echo_roundtrip(c, b"%s\n" % cid.encode())
    return c


def upstream_counts(d, route, n):
    acc = d.wait_access(n, route=route)
    check(len(acc) == n, "%d access lines, want %d" % (len(acc), n))
    return collections.Counter(a["upstream"] for a in acc)


def three(ctx, handler=ev.echo_handler):
    return [ctx.server("tcp4", handler, name="echo%d" % i) for i in range(3)]


@ev.test
def round_robin(ctx):
    ups = three(ctx)
    listen = ctx.addr("tcp4")
    d = ctx.daemon(ev.make_config([{"name": "rr", "listen": [listen],
                                    "upstreams": [u.addr for u in ups]}])).start()
    for i in range(30):
        roundtrip(listen, "c%d" % i).close()
    counts = upstream_counts(d, "rr", 30)
    print("  round-robin:", dict(counts))
    for u in ups:
        check(counts[u.addr.conf] == 10, "round-robin: %s got %d of 30" % (u.addr, counts[u.addr.conf]))
    d.stop()


def where(ups, ids):
    """Map client id -> upstream index, from what the upstreams saw."""
    out = {}
    for k, u in enumerate(ups):
        with u.lock:
            recs = list(u.records)
        for r in recs:
            if "id" in r.info:
                out[r.info["id"]] = k
    check(all(i in out for i in ids), "not every client reached an upstream: %s" % out)
    return out


@ev.test
def least_conn(ctx):
    ups = three(ctx, id_echo_handler)
    listen = ctx.addr("tcp4")
    d = ctx.daemon(ev.make_config([{"name": "lc", "listen": [listen], "balance": "least-conn",
                                    "upstreams": [u.addr for u in ups]}])).start()
    held = {}
    for i in range(9):
        held["h%d" % i] = roundtrip(listen, "h%d" % i)
    at = where(ups, held)
    loads = collections.Counter(at.values())
    print("  least-conn, 9 held:", dict(loads))
    check(sorted(loads.values()) == [3, 3, 3], "9 held connections spread %s" % dict(loads))
    # Free server 0 entirely: the next three connections must all go there.
    for cid, k in at.items():
        if k == 0:
            held.pop(cid).close()
    d.wait_access(3, route="lc")
    new = {"n%d" % i: roundtrip(listen, "n%d" % i) for i in range(3)}
    at2 = where(ups, new)
    check(all(at2[c] == 0 for c in new), "least-conn sent new connections to %s, want all on "
          "the idle server 0" % {c: at2[c] for c in new})
    # Now 3/3/3 again: one more each way round.
    more = {"m%d" % i: roundtrip(listen, "m%d" % i) for i in range(3)}
    at3 = where(ups, more)
    check(sorted(at3[c] for c in more) == [0, 1, 2], "balanced load, next three went to %s"
          % {c: at3[c] for c in more})
    for c in list(held.values()) + list(new.values()) + list(more.values()):
        c.close()
    d.stop()


@ev.test
def random_two_choices(ctx):
    ups = three(ctx, id_echo_handler)
    listen = ctx.addr("tcp4")
    d = ctx.daemon(ev.make_config([{"name": "rnd", "listen": [listen], "balance": "random",
                                    "upstreams": [u.addr for u in ups]}])).start()
    for i in range(300):
        roundtrip(listen, "s%d" % i).close()
    counts = upstream_counts(d, "rnd", 300)
    print("  random, 300 sequential:", dict(counts))
    for u in ups:
        check(counts[u.addr.conf] >= 60, "random: %s got only %d of 300"
              % (u.addr, counts[u.addr.conf]))
    held = {"h%d" % i: roundtrip(listen, "h%d" % i) for i in range(30)}
    at = where(ups, held)
    loads = collections.Counter(at[c] for c in held)
    print("  random, 30 held:", dict(loads))
    check(all(7 <= loads[k] <= 13 for k in range(3)),
          "two random choices should keep 30 held connections near 10 each: %s" % dict(loads))
    for c in held.values():
        c.close()
    d.stop()


def failed_lines(d, addr):
    rx = re.compile(r"upstream %s failed" % re.escape(addr.conf))
    return [l for l in d.log_text().splitlines() if rx.search(l)]


def replace_with_echo(ctx, refuser):
    """Close a RefusingAddr and serve echo on the same address."""
    refuser.close()
    if refuser.addr.kind == "unix":
        os.unlink(refuser.addr.value)
    s = ev.Server(refuser.addr, id_echo_handler, name="revived")
    ctx.servers.append(s)
    return s


@ev.test
def passive_health(ctx):
    bad = ctx.refusing("tcp4")
    ups = [ctx.server("tcp4", id_echo_handler, name="echo%d" % i) for i in range(2)]
    listen = ctx.addr("tcp4")
    route = {"name": "ph", "listen": [listen], "upstreams": [bad.addr] + [u.addr for u in ups],
             "health": {"fails": 2, "backoff": 2.0, "backoff_max": 4.0}}
    d = ctx.daemon(ev.make_config([route], log_level="debug")).start()
    t0 = time.monotonic()
    for i in range(12):
        roundtrip(listen, "a%d" % i).close()
    check(time.monotonic() - t0 < 1.5, "12 connections took too long for this test's timing")
    d.wait_line(r"upstream %s is down after 2 failed connects" % re.escape(bad.addr.conf), 2)
    n = len(failed_lines(d, bad.addr))
    check(n == 2, "down upstream was tried %d times, want 2 (then skipped)" % n)
    # Back-off over: exactly one connection probes it (fails: back-off doubles to 4 s).
    time.sleep(2.3)
    for i in range(6):
        roundtrip(listen, "b%d" % i).close()
    n = len(failed_lines(d, bad.addr))
    check(n == 3, "after the back-off the down upstream was tried %d times in all, want 3" % n)
    d.wait_line(r"upstream %s still down; next probe in 4s" % re.escape(bad.addr.conf), 2)
    revived = replace_with_echo(ctx, bad)
    for i in range(6):
        roundtrip(listen, "c%d" % i).close()
    check(revived.count() == 0, "revived upstream used during its back-off")
    time.sleep(4.3)
    for i in range(9):
        roundtrip(listen, "e%d" % i).close()
    d.wait_line(r"upstream %s is up again" % re.escape(bad.addr.conf), 2)
    check(revived.count() >= 3, "revived upstream got %d of 9 connections, want >= 3"
          % revived.count())
    downs = [l for l in d.log_text().splitlines() if "is down after" in l]
    check(len(downs) == 1, "state change logged %d times: %s" % (len(downs), downs))
    d.stop()


@ev.test
def all_down_still_tried(ctx):
    r1 = ctx.refusing("tcp4")
    r2 = ctx.refusing("unix")
    listen = ctx.addr("tcp4")
    route = {"name": "ad", "listen": [listen], "upstreams": [r1.addr, r2.addr],
             "health": {"fails": 1, "backoff": 60}}
    d = ctx.daemon(ev.make_config([route])).start()
    c = ev.connect(listen)
    ev.wait_closed(c, 5)
    c.close()
    d.wait_line(r"upstream %s is down" % re.escape(r1.addr.conf), 3)
    d.wait_line(r"upstream %s is down" % re.escape(r2.addr.conf), 3)
    replace_with_echo(ctx, r2)
    for i in range(3):
        roundtrip(listen, "x%d" % i).close()  # both down and in back-off: tried anyway
    d.wait_line(r"upstream %s is up again" % re.escape(r2.addr.conf), 3)
    acc = d.wait_access(4, route="ad")
    check([a["end"] for a in acc].count("connect_failed") == 1, "ends: %s" % acc)
    d.stop()


@ev.test
def active_check(ctx):
    bad = ctx.refusing("tcp4")
    echo = ctx.server("tcp4", id_echo_handler, name="echo")
    listen = ctx.addr("tcp4")
    route = {"name": "ac", "listen": [listen], "upstreams": [bad.addr, echo.addr],
             "health": {"fails": 1, "backoff": 600}, "health_check": {"interval": 0.3}}
    d = ctx.daemon(ev.make_config([route])).start()
    d.wait_line(r"upstream %s is down after 1 failed connects \(health check\)"
                % re.escape(bad.addr.conf), 5)
    echo.wait_conns(1, 3)  # the healthy one is checked too
    for i in range(4):
        roundtrip(listen, "a%d" % i).close()
    acc = upstream_counts(d, "ac", 4)
    check(acc[echo.addr.conf] == 4, "down upstream used: %s" % dict(acc))
    revived = replace_with_echo(ctx, bad)
    t0 = time.monotonic()
    d.wait_line(r"upstream %s is up again \(health check connected\)"
                % re.escape(bad.addr.conf), 5)
    print("  back up %.2fs after it started accepting (no client traffic)"
          % (time.monotonic() - t0))
    for i in range(4):
        roundtrip(listen, "b%d" % i).close()
    acc = upstream_counts(d, "ac", 8)
    check(acc[bad.addr.conf] == 2, "revived upstream got %d of 4 connections"
          % acc[bad.addr.conf])
    check(revived.count() >= 3, "health checks did not reach the revived upstream")
    d.stop()


if __name__ == "__main__":
    ev.main(__doc__)
