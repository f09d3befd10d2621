#!/usr/bin/env python3
"""Clients held while no server can take them (queue_timeout, queue_size; issue 16).

late_upstream: the only upstream starts listening 2 s after the client connected and sent
  256 KiB (queue_timeout = 5): every byte arrives intact (hash) and the echo comes back.
expiry: with nobody listening, a queued client is closed after queue_timeout = 1 with
  end=no_server; counted in evproxy_route_queue_timeouts_total, the queue is empty again.
full: queue_size = 2: two clients wait, three more are closed at once (end=no_server) and
  counted in evproxy_route_queue_full_total and in evproxyctl status (QUEUED, NO_SERVER); the two are served once the upstream listens.
slot_freed_wakes: max_connections = 1 on the only upstream: a second client waits, and is
  woken (debug line) and served at once, well before its next back-off retry, when the first
  one closes.
reload_adds_server: three clients queued on a route whose only server refuses; a reload adds
  a live server: they retry at once under the new configuration (debug line) and it serves
  them (before, a queued client kept the server set it was queued under until queue_timeout).
slot_freed_wakes_other_worker: the same across workers: the holder on one of 2 workers, the only
  queued client on the other: woken at once when the holder ends.
off_by_default: without queue_timeout a refused connect still ends connect_failed at once.
name_resolves_while_queued: the only upstream is a name that does not resolve yet (an empty
  server set, dnsmasq): a client with queue_timeout waits, and is served once the name has an
  address (test_dns's appears_later: without queue_timeout it ends no_server at once).
name_never_resolves: queue_timeout = 1 and the name never resolves: end=no_server after 1 s,
  logged with the name that has no address.
"""

import hashlib
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
import admin_util as au  # noqa: E402

# test_dns's dnsmasq helpers, without its tests: importing it registers them, so they are
# taken off the list again.
_n_tests = len(ev._TESTS)
import test_dns as dnst  # noqa: E402

del ev._TESTS[_n_tests:]


def listen_late(ctx, refuser):
    """Close a RefusingAddr and serve echo on its address."""
    refuser.close()
    s = ev.Server(refuser.addr, ev.echo_handler, name="late")
    ctx.servers.append(s)
    return s


def route(listen, upstreams, **kw):
    r = {"name": "q", "listen": [listen], "upstreams": upstreams}
    r.update(kw)
    return r


def queued_now(maddr):
    return ev.metric_value(ev.fetch_metrics(maddr), "evproxy_route_queued", route="q")


def wait_queued(maddr, n, timeout=5):
    dl = ev.deadline(timeout)
    while queued_now(maddr) != n:
        check(time.monotonic() < dl, "queued %s, want %d" % (queued_now(maddr), n))
        time.sleep(0.05)


def wait_out_queue_timeout(listen, maddr):
    """A client of route q (queue_timeout = 1) that no server takes: queued, then closed
    after about a second."""
    c = ev.connect(listen)
    c.sendall(b"never read")
    t0 = time.monotonic()
    wait_queued(maddr, 1)
    ev.wait_closed(c, 4)
    waited = time.monotonic() - t0
    c.close()
    check(0.9 <= waited < 2.5, "closed after %.2fs, queue_timeout is 1s" % waited)


@ev.test
def late_upstream(ctx):
    bad = ctx.refusing("tcp4")
    listen = ctx.addr("tcp4")
    stream = ev.Stream(16, 256 * ev.KiB)
    stream.sha256()  # makes the random pool now: it holds the GIL for a while
    d = ctx.daemon(ev.make_config([route(listen, [bad.addr], queue_timeout=5)])).start()
    c = ev.connect(listen)
    t0 = time.monotonic()
    sender = ev.Task(ev.send_stream, c, stream, name="send")
    time.sleep(2.0)
    up = listen_late(ctx, bad)
    back = ev.recv_exact(c, stream.length)
    served = time.monotonic() - t0
    check(hashlib.sha256(back).hexdigest() == stream.sha256(), "echo differs from what was sent")
    sender.join(10)
    c.shutdown(socket.SHUT_WR)
    check(ev.wait_closed(c, 5)[0] == "eof", "no EOF after the echo")
    c.close()
    rec = up.wait_conns(1)[0]
    check(rec.done.wait(5), "upstream connection did not end")
    check(rec.sha256 == stream.sha256() and rec.received == stream.length,
          "upstream got %d bytes, not the client's" % rec.received)
    acc = d.wait_access(1, route="q")
    check(acc[0]["end"] == "client_closed" and acc[0]["duration_ms"] >= 1900,
          "access line: %s" % acc[0])
    print("  echo back %.2fs after connecting (upstream listening after 2 s)" % served)
    d.stop()


@ev.test
def reload_adds_server(ctx):
    """Queued clients walk the route as a reload has it: the server the reload adds serves
    them (not the set they were queued under), and they retry as soon as the reload applied
    instead of at their next back-off."""
    bad = ctx.refusing("tcp4")
    listen, maddr = ctx.addr("tcp4"), ctx.addr("tcp4", "m")
    glob = {"metrics": {"listen": maddr}, "log_level": "debug"}
    d = ctx.daemon(ev.make_config([route(listen, [bad.addr], queue_timeout=20)], **glob)).start()
    clients = [ev.connect(listen) for _ in range(3)]
    for i, c in enumerate(clients):
        c.sendall(b"queued %d" % i)
    wait_queued(maddr, 3)
    time.sleep(1.6)  # the back-off is at its 1 s ceiling now
    up = ctx.server("tcp4", ev.echo_handler, name="added")
    d.rewrite(ev.make_config([route(listen, [bad.addr, up.addr], queue_timeout=20)], **glob))
    start = len(d.lines)
    t0 = time.monotonic()
    os.kill(d.pid, signal.SIGHUP)
    d.wait_line(r"reloaded ", 10, start=start)
    d.wait_line(r"<7>\d+ queued clients retry under the new configuration", 5, start=start)
    for i, c in enumerate(clients):
        got = ev.recv_exact(c, len(b"queued %d" % i))
        check(got == b"queued %d" % i, "client %d got %r" % (i, got))
    print("  3 queued clients served by the added server %.2fs after the SIGHUP"
          % (time.monotonic() - t0))
    check(len(up.wait_conns(3)) == 3, "the added server did not get the 3 clients")
    wait_queued(maddr, 0)
    for c in clients:
        c.close()
    acc = d.wait_access(3, route="q")
    check(all(a["end"] == "client_closed" and a["upstream"] == up.addr.conf for a in acc),
          "access lines: %s" % acc)
    d.stop()


@ev.test
def expiry(ctx):
    bad = ctx.refusing("tcp4")
    listen, maddr = ctx.addr("tcp4"), ctx.addr("tcp4", "m")
    d = ctx.daemon(ev.make_config([route(listen, [bad.addr], queue_timeout=1)],
                                  metrics={"listen": maddr})).start()
    wait_out_queue_timeout(listen, maddr)
    acc = d.wait_access(1, route="q")
    check(acc[0]["end"] == "no_server" and acc[0]["bytes_in"] == 0, "access: %s" % acc[0])
    d.wait_line(r"client \S+: no server within queue_timeout \(1s\)", 2)
    text = ev.fetch_metrics(maddr)
    check(ev.metric_value(text, "evproxy_route_queue_timeouts_total", route="q") == 1,
          "queue_timeouts_total")
    check(ev.metric_value(text, "evproxy_route_queued", route="q") == 0, "queued")
    check(ev.metric_value(text, "evproxy_route_no_server_total", route="q") == 1,
          "no_server_total")
    d.stop()


@ev.test
def full(ctx):
    bad = ctx.refusing("tcp4")
    listen, maddr = ctx.addr("tcp4"), ctx.addr("tcp4", "m")
    d, sock = au.start(ctx, [route(listen, [bad.addr], queue_timeout=10, queue_size=2)],
                       metrics={"listen": maddr})
    waiting = [ev.connect(listen) for _ in range(2)]
    for i, c in enumerate(waiting):
        c.sendall(b"waiting %d\n" % i)
    wait_queued(maddr, 2)
    for _ in range(3):
        c = ev.connect(listen)
        t0 = time.monotonic()
        ev.wait_closed(c, 2)
        check(time.monotonic() - t0 < 1.0, "an overflowing client was held")
        c.close()
    acc = d.wait_access(3, route="q", end="no_server")
    check(len(acc) == 3, "no_server lines: %s" % acc)
    d.wait_line(r"the queue is full \(queue_size 2\)", 2)
    check(ev.metric_value(ev.fetch_metrics(maddr), "evproxy_route_queue_full_total",
                          route="q") == 3, "queue_full_total")
    check(ev.metric_value(ev.fetch_metrics(maddr), "evproxy_route_no_server_total",
                          route="q") == 3, "no_server_total")
    # evproxyctl status shows the queue too: 2 waiting, 3 turned away (no_server, queue_full)
    rc, st = au.ctl_json(ctx, sock, "status")
    r = st["routes"][0]
    check(rc == 0 and (r["queued"], r["queue_full"], r["no_server"]) == (2, 3, 3),
          "evproxyctl status: %s" % r)
    rc, out, _ = au.ctl(ctx, sock, "status")
    check(rc == 0 and re.search(r"^q\s+1\s+2\s+2\s+5\s+0\s+3\s", out, re.M),
          "evproxyctl status table (QUEUED 2, NO_SERVER 3): %s" % out)
    listen_late(ctx, bad)
    for i, c in enumerate(waiting):
        want = b"waiting %d\n" % i
        check(ev.recv_exact(c, len(want)) == want, "queued client %d not served" % i)
        c.close()
    d.wait_access(5, route="q")
    wait_queued(maddr, 0)
    d.stop()


def woken_by_freed_slot(d, holder, waiter, line, logged):
    """The holder ends; the queued waiter (which sent line) must be served at once, by a
    wake-up the daemon logs. Called ~1.9 s after the waiter queued: its back-off retries came
    at +50, +150, +350, +750, +1550 ms and the next is at +2550 ms, which leaves at least 0.6 s
    to tell a wake-up from a retry even if it was queued 0.3 s late."""
    holder.close()
    t0 = time.monotonic()
    check(ev.recv_exact(waiter, len(line)) == line, "the queued client was not served")
    took = time.monotonic() - t0
    print("  served %.0f ms after the slot freed" % (took * 1000))
    d.wait_line(logged, 2)
    check(took < 0.6, "served %.2fs after the slot freed: not woken by it" % took)
    waiter.close()


@ev.test
def slot_freed_wakes(ctx):
    up = ctx.server("tcp4", ev.echo_handler)
    listen = ctx.addr("tcp4")
    # One worker: a freed slot wakes the oldest waiting client of its own worker at once
    # (slot_freed_wakes_other_worker: across workers).
    conf = ev.make_config([route(listen, [{"address": up.addr, "max_connections": 1}],
                                 queue_timeout=5)], workers=1, log_level="debug")
    d = ctx.daemon(conf).start()
    a = ev.connect(listen)
    ev.echo_roundtrip(a, b"first\n")
    b = ev.connect(listen)
    b.sendall(b"second\n")
    time.sleep(1.9)  # see woken_by_freed_slot
    check(up.count() == 1, "the second client reached the upstream past max_connections")
    woken_by_freed_slot(d, a, b, b"second\n",
                        r"route q: a connection ended: the oldest queued client retries now")
    d.wait_access(2, route="q")
    d.stop()


def accepted_by(maddr):
    text = ev.fetch_metrics(maddr)
    return [ev.metric_value(text, "evproxy_worker_accepted_total", worker=str(i)) for i in (0, 1)]


def connect_on_worker(listen, maddr, line):
    """Connect, send line, and say which of the 2 workers accepted (accepted_total grew)."""
    before = accepted_by(maddr)
    c = ev.connect(listen)
    c.sendall(line)
    dl = ev.deadline(5)
    while True:
        now = accepted_by(maddr)
        grew = [i for i in (0, 1) if now[i] > before[i]]
        if grew:
            return c, grew[0]
        check(time.monotonic() < dl, "no worker counted the connection")
        time.sleep(0.02)


@ev.test
def slot_freed_wakes_other_worker(ctx):
    """max_connections = 1, 2 workers: the holder on one worker, the only queued client on the
    other. When the holder ends, the other worker's client is woken at once (a credit on the
    route's counters and a task posted to that worker), not at its next back-off retry."""
    up = ctx.server("tcp4", ev.echo_handler)
    listen, maddr = ctx.addr("tcp4"), ctx.addr("tcp4", "m")
    conf = ev.make_config([route(listen, [{"address": up.addr, "max_connections": 1}],
                                 queue_timeout=10)], workers=2, log_level="debug",
                          metrics={"listen": maddr})
    d = ctx.daemon(conf).start()
    holder, hw = connect_on_worker(listen, maddr, b"holder\n")
    check(ev.recv_exact(holder, 7) == b"holder\n", "the holder is not served")
    for attempt in range(30):  # SO_REUSEPORT: each connection lands on either worker
        b, bw = connect_on_worker(listen, maddr, b"waiter\n")
        wait_queued(maddr, 1)
        if bw != hw:
            break
        # Same worker: b becomes the holder (served locally), and another one is tried.
        holder.close()
        check(ev.recv_exact(b, 7) == b"waiter\n", "local waiter not served")
        holder = b
    else:
        raise ev.TestFailure("30 connections all on worker %d" % hw)
    print("  holder on worker %d, the queued client on worker %d (attempt %d)"
          % (hw, bw, attempt + 1))
    time.sleep(1.9)  # see woken_by_freed_slot
    check(queued_now(maddr) == 1, "queued %s" % queued_now(maddr))
    woken_by_freed_slot(d, holder, b, b"waiter\n",
                        r"a slot freed on another worker: the oldest queued client here retries now")
    d.stop()


@ev.test
def off_by_default(ctx):
    bad = ctx.refusing("tcp4")
    listen = ctx.addr("tcp4")
    d = ctx.daemon(ev.make_config([route(listen, [bad.addr])])).start()
    c = ev.connect(listen)
    t0 = time.monotonic()
    ev.wait_closed(c, 5)
    c.close()
    check(time.monotonic() - t0 < 2, "held without queue_timeout")
    check(d.wait_access(1, route="q")[0]["end"] == "connect_failed", "end")
    d.stop()


def late_name(ctx, queue_timeout):
    """dnsmasq that does not know late.test yet, an echo server on 127.0.0.2 and a daemon whose
    route q has only late.test:port and queue_timeout as given: (dns, listen, maddr, d)."""
    port = ev.free_port()
    dnst.server_on(ctx, "127.0.0.2", port)
    dns = dnst.Dns(ctx).start()
    listen, maddr = ctx.addr("tcp4"), ctx.addr("tcp4", "m")
    d = dnst.start_daemon(ctx, [route(listen, ["late.test:%d" % port],
                                      queue_timeout=queue_timeout)], dns,
                          metrics={"listen": maddr})
    d.wait_line(r"resolving late\.test:%d fails" % port, 5 * dnst.SLOW)
    return dns, listen, maddr, d


@ev.test
def name_resolves_while_queued(ctx):
    if not dnst.need_dnsmasq():
        return
    dns, listen, maddr, d = late_name(ctx, 8)
    c = ev.connect(listen)
    c.sendall(b"early\n")
    t0 = time.monotonic()
    wait_queued(maddr, 1)
    time.sleep(1.0)
    check(ev.metric_value(ev.fetch_metrics(maddr), "evproxy_route_queued", route="q") == 1,
          "the client left the queue before the name resolved")
    dns.set_hosts(["127.0.0.2 late.test"])
    check(ev.recv_exact(c, 6) == b"early\n", "queued client not served")
    print("  served %.2fs after connecting (name resolvable after 1 s)"
          % (time.monotonic() - t0))
    c.close()
    acc = d.wait_access(1, route="q")
    check(acc[0]["end"] == "client_closed" and acc[0]["duration_ms"] >= 900,
          "access: %s" % acc[0])
    wait_queued(maddr, 0)
    d.stop()


@ev.test
def name_never_resolves(ctx):
    if not dnst.need_dnsmasq():
        return
    dns, listen, maddr, d = late_name(ctx, 1)
    wait_out_queue_timeout(listen, maddr)
    check(d.wait_access(1, route="q")[0]["end"] == "no_server", "end")
    d.wait_line(r"route q: client \S+: no server: late\.test:\d+ has no address", 2)
    d.wait_line(r"route q: client \S+: no server within queue_timeout \(1s\)", 2)
    check(ev.metric_value(ev.fetch_metrics(maddr), "evproxy_route_queue_timeouts_total",
                          route="q") == 1, "queue_timeouts_total")
    d.stop()


if __name__ == "__main__":
    ev.main(__doc__)
