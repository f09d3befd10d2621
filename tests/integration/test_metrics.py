#!/usr/bin/env python3
"""The Prometheus metrics endpoint (metrics.listen).

exposition: after known traffic (forwarded bytes, a refused upstream, an ACL denial), GET
  /metrics over HTTP/1.0 and 1.1 returns text format 0.0.4 whose samples parse, every family
  has HELP and TYPE, counters end in _total, and the values match the traffic; `promtool check
  metrics` agrees if promtool is installed (skipped with a message otherwise).
errors: other paths 404, other methods 405, garbage 400, HTTP/2.0 505.
cut_off: a request head over 4 KiB is closed without an answer; one that is not complete
  within 5 s is closed; at most 16 connections at once (the 17th is closed at once).
unix: the endpoint on a unix socket path.
per_worker: evproxy_worker_accepted_total{worker="i"} has one sample per worker, and they add
  up to the connections accepted (how evenly SO_REUSEPORT spreads them is printed, not judged).
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
                       r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*)?\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def request(addr, raw, timeout=5):
    status, headers, body = ev.http_request(addr, raw, timeout)
    return status, headers, body.decode()


def parse(text):
    """{(name, frozenset(labels)): value}, and the HELP/TYPE of every family."""
    samples, types, helps = {}, {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split(" ")[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            types[name] = typ
            continue
        m = SAMPLE_RE.match(line)
        check(m, "not a sample line: %r" % line)
        labels = frozenset(LABEL_RE.findall(m.group(3) or ""))
        samples[(m.group(1), labels)] = float(m.group(4))
    for name, _ in samples:
        check(name in types and name in helps, "%s lacks TYPE or HELP" % name)
        check((types[name] == "counter") == name.endswith("_total"),
              "%s: type %s vs name" % (name, types[name]))
    return samples


def get(samples, name, **labels):
    key = (name, frozenset(labels.items()))
    check(key in samples, "no sample %s%s" % (name, labels))
    return samples[key]


def config(ctx, maddr, routes):
    return ev.make_config(routes, metrics={"listen": maddr})


@ev.test
def exposition(ctx):
    echo = ctx.server("tcp4", ev.echo_handler)
    bad = ctx.refusing("tcp4")
    listen, maddr = ctx.addr("tcp4"), ctx.addr("tcp4", "m")
    route = {"name": "web", "listen": [listen], "upstreams": [bad.addr, echo.addr],
             "deny": ["127.0.0.9"], "health": {"fails": 1, "backoff": 60}}
    d = ctx.daemon(config(ctx, maddr, [route])).start()
    sent = 0
    for i in range(4):
        payload = b"x" * (1000 * (i + 1))
        c = ev.connect(listen)
        ev.echo_roundtrip(c, payload)
        c.close()
        sent += len(payload)
    s = socket.socket()
    s.bind(("127.0.0.9", 0))
    s.settimeout(5)
    s.connect(listen.sockaddr)
    ev.wait_closed(s, 3)
    s.close()
    d.wait_access(5, route="web")
    status, headers, text = request(maddr, b"GET /metrics HTTP/1.0\r\n\r\n")
    check(status == 200, "status %d" % status)
    check(headers["content-type"].startswith("text/plain; version=0.0.4"), "type %s" % headers)
    m = parse(text)
    check(get(m, "evproxy_route_connections_accepted_total", route="web") == 5, "accepted")
    check(get(m, "evproxy_route_connections_active", route="web") == 0, "active")
    check(get(m, "evproxy_route_connections_refused_total", route="web", reason="acl") == 1, "acl")
    check(get(m, "evproxy_route_connections_refused_total", route="web", reason="limit") == 0,
          "limit")
    check(get(m, "evproxy_route_upstream_connect_failures_total", route="web") == 1, "failures")
    check(get(m, "evproxy_route_received_bytes_total", route="web") == sent, "bytes in")
    check(get(m, "evproxy_route_sent_bytes_total", route="web") == sent, "bytes out")
    check(get(m, "evproxy_upstream_up", route="web", upstream=bad.addr.conf) == 0, "bad up")
    check(get(m, "evproxy_upstream_up", route="web", upstream=echo.addr.conf) == 1, "echo up")
    check(get(m, "evproxy_upstream_connect_failures_total", route="web",
              upstream=bad.addr.conf) == 1, "bad failures")
    check(get(m, "evproxy_driver_registered_fds_total") >= 10, "registered fds")
    check(get(m, "evproxy_driver_ready_events_total") > 0, "ready events")
    # One connection held open shows up in the gauges.
    c = ev.connect(listen)
    ev.echo_roundtrip(c, b"held")
    _, _, text = request(maddr, b"GET /metrics?x=1 HTTP/1.1\r\nHost: m\r\nAccept: */*\r\n\r\n")
    m = parse(text)
    check(get(m, "evproxy_route_connections_active", route="web") == 1, "active while held")
    check(get(m, "evproxy_upstream_connections_active", route="web",
              upstream=echo.addr.conf) == 1, "upstream active while held")
    check(get(m, "evproxy_connections_active") == 1, "global active")
    c.close()
    promtool = shutil.which("promtool")
    if promtool:
        p = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        out = p.stdout.decode()
        print("  promtool check metrics: rc=%d %s" % (p.returncode, out.strip() or "(clean)"))
        check(p.returncode == 0 and not out.strip(), "promtool: %s" % out)
    else:
        ev.skip("promtool check: promtool not installed (Debian package prometheus)")
    d.stop()


def start_one_route(ctx, metrics_kind):
    """A daemon with one echo route and its metrics endpoint on an address of metrics_kind."""
    listen, maddr = ctx.addr("tcp4"), ctx.addr(metrics_kind, "m")
    echo = ctx.server("tcp4", ev.echo_handler)
    d = ctx.daemon(config(ctx, maddr, [{"name": "r", "listen": [listen],
                                        "upstreams": [echo.addr]}])).start()
    return d, maddr


@ev.test
def errors(ctx):
    d, maddr = start_one_route(ctx, "tcp6")
    for raw, want in ((b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n", 404),
                      (b"GET /metricsX HTTP/1.0\r\n\r\n", 404),
                      (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
                      (b"HEAD /metrics HTTP/1.0\r\n\r\n", 405),
                      (b"hello there\r\n\r\n", 400),
                      (b"GET /metrics HTTP/1.1\r\nbad header line\r\n\r\n", 400),
                      (b"GET /metrics HTTP/2.0\r\n\r\n", 505),
                      (b"GET /metrics HTTP/1.1\n\n", 200)):
        status, headers, _ = request(maddr, raw)
        check(status == want, "%r: status %d, want %d" % (raw, status, want))
        if want == 405:
            check(headers.get("allow") == "GET", "405 without Allow: GET")
    d.stop()


@ev.test
def cut_off(ctx):
    d, maddr = start_one_route(ctx, "tcp4")
    s = ev.connect(maddr)
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\n" + b"X-Pad: " + b"p" * 5000 + b"\r\n\r\n")
    except OSError:
        pass
    how, got = ev.wait_closed(s, 3)
    check(got == 0, "oversized request answered (%d bytes)" % got)
    s.close()
    slow = ev.connect(maddr)
    slow.sendall(b"GET /metr")
    t0 = time.monotonic()
    # Fill up to the limit of 16 (the slow one counts): the 17th is closed at once.
    idle = [ev.connect(maddr) for _ in range(15)]
    time.sleep(0.2)
    extra = ev.connect(maddr)
    how, got = ev.wait_closed(extra, 2)
    extra.close()
    for s in idle:
        s.close()
    time.sleep(0.2)
    status, _, _ = request(maddr, b"GET /metrics HTTP/1.0\r\n\r\n")
    check(status == 200, "after the idle ones left: %d" % status)
    how, got = ev.wait_closed(slow, 8)
    waited = time.monotonic() - t0
    slow.close()
    check(got == 0 and 4.0 < waited < 7.0, "slow request closed after %.1fs (%d bytes)"
          % (waited, got))
    d.stop()


@ev.test
def unix(ctx):
    d, maddr = start_one_route(ctx, "unix")
    status, _, text = request(maddr, b"GET /metrics HTTP/1.0\r\n\r\n")
    check(status == 200 and "evproxy_upstream_up" in text, "unix endpoint: %d" % status)
    d.stop()
    check(not os.path.exists(maddr.value), "metrics socket file left behind")


@ev.test
def per_worker(ctx):
    listen, maddr = ctx.addr("tcp4"), ctx.addr("tcp4", "m")
    echo = ctx.server("tcp4", ev.echo_handler)
    d = ctx.daemon(ev.make_config([{"name": "r", "listen": [listen], "upstreams": [echo.addr]}],
                                  workers=3, metrics={"listen": maddr})).start()
    n = 60
    for i in range(n):
        c = ev.connect(listen)
        ev.echo_roundtrip(c, b"w%d" % i)
        c.close()
    d.wait_access(n, route="r")
    _, _, text = request(maddr, b"GET /metrics HTTP/1.0\r\n\r\n")
    m = parse(text)
    per = [get(m, "evproxy_worker_accepted_total", worker=str(i)) for i in range(3)]
    check(not any(k[0] == "evproxy_worker_accepted_total" and ("worker", "3") in k[1]
                  for k in m), "a sample for a fourth worker")
    print("  accepted per worker over %d connections: %s" % (n, per))
    check(sum(per) == n, "per-worker counts %s add up to %d, not %d" % (per, sum(per), n))
    d.stop()


if __name__ == "__main__":
    ev.main(__doc__)
