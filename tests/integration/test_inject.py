#!/usr/bin/env python3
"""Failure injection: evproxyd-fault (tests/fault/fault.c) fails the Nth call of the shimmed
functions (allocation, sockets, epoll, eventfd, signalfd, threads, timers, registrations), and
every N of a sweep must end cleanly: no crash or sanitizer report (exit status 0 or 1 only), a
<3>/<4> line after each injected failure (in the accept sweep: each that closed a client; those
without any effect are listed), nothing left behind. Run with --evproxyd pointing at
evproxyd-fault.

startup_sweep: EVPROXY_FAULT=*:N for N = 1, 2, ... until a run injects nothing before it is up
  (ready: and 0.1 s more): a config with a TCP and a unix listener, a metrics endpoint, health
  checks of two upstreams and 2 workers; a second route shares the TCP listener (match).
  Each run exits 1 (a <3> line, no `ready:`), or comes up and forwards; then SIGTERM exits 0.
  Either way the unix socket file is gone at the end.
reload_sweep: from the first SIGHUP on (EVPROXY_FAULT_ARM=sighup), N = 1, 2, ... until nothing
  is injected by the time every worker applied it (+0.1 s for the health checks' restart): the new file adds a route with a TCP and a unix listener. The old listener keeps
  serving; the reload either fails (logged; the new addresses refuse, no socket file) or
  succeeds and both new listeners serve 20 connections each (none hangs); SIGTERM exits 0.
accept_sweep(_shared): from the first accept4() on, N = 1, 2, ... (bounded) while 4 clients connect one
  after another and echo 64 KiB each: every client is either served or closed (never left
  hanging), at most one is not served, the daemon keeps serving, and each accepted connection
  gets exactly one access line whose end= is clean. Splice and copy forwarding; and (shared)
  splice on an address two routes share, so every connection is inspected before it connects.
health_check_arm_fails: the 2nd evio_timer_arm at start-up (the 2nd health probe) fails: exit 1
  with "starting health checks", no crash (issue 12 item 9).
reload_register_fails: 2 workers; during a reload that adds a TCP listener, the 1st or the 2nd
  evio_handle_register fails (one worker cannot accept on its SO_REUSEPORT socket); then 200
  connections to the new listener are all served, none hangs in a backlog nobody reads
  (issue 12 item 10).
sighup_during_reload: the workers take 0.5 s to apply a reload (EVPROXY_FAULT_STALL on their
  registrations); a second SIGHUP, for a file that swaps the new listener for another, comes
  meanwhile: it is logged as deferred, runs once the first is applied, and its file is the one
  served (its listener accepts, the first reload's one refuses); SIGTERM exits 0.
"""

import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import KiB, check  # noqa: E402

RUN_TIMEOUT = 10.0
if os.environ.get("EVTEST_WRAPPER"):
    RUN_TIMEOUT *= 4
MAX_SWEEP = 400  # bound on N for start-up and reload (both end well before: see the log)
ACCEPT_SWEEP = 40
INJECTED = r"^<5>fault: failing call"
CLEAN_ENDS = {"error", "connect_failed", "reset", "client_closed", "upstream_closed"}


def fault_daemon(ctx, name, config, spec, arm="start"):
    d = ctx.daemon(config, name=name)
    d.start(env={"EVPROXY_FAULT": spec, "EVPROXY_FAULT_ARM": arm}, wait_ready=False)
    return d


def injected(d):
    return d.count_lines(INJECTED) > 0


def ready_or_exit(d, timeout=RUN_TIMEOUT):
    """Wait for `ready:` (returns True) or the daemon's exit (returns False)."""
    dl = ev.deadline(timeout)
    while time.monotonic() < dl:
        if d.count_lines(r"ready:"):
            return True
        if d.proc.poll() is not None:
            d.reader.join(2)
            check(not d.count_lines(r"ready:"), "%s: exited after ready:" % d.name)
            return False
        time.sleep(0.005)
    raise ev.TestFailure("%s: neither ready nor exited within %.1fs" % (d.name, timeout))


def check_failed_start(d):
    """The run exited during start-up: status 1 with an error line after the injection."""
    rc = d.proc.wait(RUN_TIMEOUT)
    d.stopped = True
    d.reader.join(2)
    check(rc == 1, "%s: exit status %d during start-up, wanted 1" % (d.name, rc))
    d.check_log_format()
    check_reported(d)


def check_reported(d, silent=None):
    """Some <3> or <4> line follows the injected failure. A failure that changed nothing a
    client or the operator can see (best effort, e.g. TCP_NODELAY on an upstream socket) may
    go unreported when `silent` is given: its call is added to that set instead."""
    with d.cond:
        lines = [l for _, l in d.lines]
    at = next(i for i, l in enumerate(lines) if re.match(INJECTED, l))
    if any(re.match(r"^<[34]>", l) for l in lines[at + 1:]):
        return
    check(silent is not None,
          "%s: the injected failure was not reported: %r" % (d.name, lines[at:at + 6]))
    silent.add(re.search(r"\((\w+)\)", lines[at]).group(1))


def roundtrip(addr, payload, timeout=5.0):
    c = ev.connect(addr, timeout)
    try:
        ev.echo_roundtrip(c, payload, timeout)
    finally:
        c.close()


def refuses(addr):
    try:
        ev.connect(addr, 2).close()
        return False
    except (ConnectionRefusedError, FileNotFoundError):
        return True


def sweep_end(name, n, notes):
    print("  %s: %d runs, the last injected nothing; %s" % (name, n, notes))


# --------------------------------------------------------------------------- start-up

@ev.test
def startup_sweep(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    down = ctx.refusing("tcp4")
    la, lu, lm = ctx.addr("tcp4"), ctx.addr("unix"), ctx.addr("tcp4", "m")
    config = ev.make_config(
        [{"name": "a", "listen": [la, lu], "upstreams": [echo.addr, down.addr],
          "health_check": {"interval": 5}},
         # a, without a match, is the default of la, which b shares (listener groups)
         {"name": "b", "listen": [la], "upstreams": [echo.addr], "match": {"protocol": "ssh"}}],
        metrics={"listen": lm})
    failed = came_up = 0
    for n in range(1, MAX_SWEEP + 1):
        d = fault_daemon(ctx, "start%d" % n, config, "*:%d" % n)
        up = ready_or_exit(d)
        if up:
            time.sleep(0.1)  # what start-up does after `ready:` (STATUS= timer, ...)
            if not injected(d):  # N is past start-up: the sweep is complete
                d.stop()
                sweep_end("start-up", n, "%d failed to start (exit 1), %d came up despite the "
                          "failure" % (failed, came_up))
                check(not os.path.exists(lu.value), "%s: left %s behind" % (d.name, lu.value))
                return
            came_up += 1
            roundtrip(la, b"start-up sweep run %d" % n)
            roundtrip(lu, b"start-up sweep run %d (unix)" % n)
            d.stop()
            check_reported(d)
        else:
            check(injected(d), "%s: exited with no injected failure" % d.name)
            failed += 1
            check_failed_start(d)
        check(not os.path.exists(lu.value), "%s: left %s behind" % (d.name, lu.value))
    raise ev.TestFailure("start-up still injecting after %d runs" % MAX_SWEEP)


# --------------------------------------------------------------------------- reload

def reload_configs(ctx, echo):
    la, lb, lu = ctx.addr("tcp4"), ctx.addr("tcp4"), ctx.addr("unix")
    a = {"name": "a", "listen": [la], "upstreams": [echo.addr]}
    b = {"name": "b", "listen": [lb, lu], "upstreams": [echo.addr]}
    return ev.make_config([a]), ev.make_config([a, b]), la, lb, lu


def wait_reload(d, timeout=RUN_TIMEOUT):
    """After a SIGHUP: True once every worker applied the reload, False if it failed."""
    _, m = d.wait_line(r"reload applied by every worker|reload incomplete|reload failed", timeout)
    return m.group(0) != "reload failed"


@ev.test
def reload_sweep(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    old, new, la, lb, lu = reload_configs(ctx, echo)
    ok = failed = 0
    for n in range(1, MAX_SWEEP + 1):
        d = fault_daemon(ctx, "reload%d" % n, old, "*:%d" % n, arm="sighup")
        d.wait_line(r"ready:", RUN_TIMEOUT)
        d.rewrite(new)
        d.proc.send_signal(signal.SIGHUP)
        applied = wait_reload(d)
        time.sleep(0.1)  # what follows a reload on the main loop (health checks restart)
        if not injected(d):  # N is past the reload: the sweep is complete
            d.stop()
            sweep_end("reload", n, "%d reloads failed cleanly, %d succeeded despite the "
                      "failure" % (failed, ok))
            return
        if applied:
            ok += 1
            for i in range(20):
                roundtrip(lb, b"new tcp %d/%d" % (n, i))
                roundtrip(lu, b"new unix %d/%d" % (n, i))
        else:
            failed += 1
            check(refuses(lb), "%s: reload failed but %s accepts" % (d.name, lb))
            check(not os.path.exists(lu.value), "%s: reload failed, %s left" % (d.name, lu.value))
        roundtrip(la, b"old listener, run %d" % n)
        d.stop()
        check(not os.path.exists(lu.value), "%s: left %s behind" % (d.name, lu.value))
        check_reported(d)
    raise ev.TestFailure("reload still injecting after %d runs" % MAX_SWEEP)


# --------------------------------------------------------------------------- accept

def client(listen, i, payload):
    """'ok', or 'closed' if the daemon closed the connection without echoing."""
    try:
        roundtrip(listen, payload)
        return "ok"
    except (ConnectionResetError, BrokenPipeError, ev.TestFailure) as e:
        if isinstance(e, ev.TestFailure) and "EOF" not in str(e):
            raise
        return "closed"


def accept_sweep_mode(ctx, mode, shared=False):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    listen = ctx.addr("tcp4")
    routes = [{"name": "a", "listen": [listen], "upstreams": [echo.addr]}]
    if shared:  # routes share the address: each connection is inspected first (test_sni.py)
        routes.append({"name": "ssh", "listen": [listen], "upstreams": [echo.addr],
                       "match": {"protocol": "ssh"}})
    config = ev.make_config(routes, forwarding=mode)
    payload = os.urandom(64 * KiB)
    unserved = 0
    silent = set()
    for n in range(1, ACCEPT_SWEEP + 1):
        d = fault_daemon(ctx, "accept-%s%s%d" % (mode, "-shared" * shared, n), config, "*:%d" % n,
                         arm="accept4")
        d.wait_line(r"ready:", RUN_TIMEOUT)
        results = [client(listen, i, payload) for i in range(4)]
        check(results.count("closed") <= 1, "%s: clients %s" % (d.name, results))
        check(results[-1] == "ok", "%s: the daemon stopped serving: %s" % (d.name, results))
        unserved += results.count("closed")
        acc = d.wait_access(4, timeout=5)  # route "-": failed while inspected (shared)
        ends = [a["end"] for a in acc]
        check(len(acc) == 4, "%s: %d access lines for 4 clients: %s" % (d.name, len(acc), ends))
        check(set(ends) <= CLEAN_ENDS, "%s: end= reasons %s" % (d.name, ends))
        check(ends.count("client_closed") == results.count("ok"),
              "%s: clients %s, access log %s" % (d.name, results, ends))
        d.stop()
        if injected(d):
            check_reported(d, None if "closed" in results else silent)
        else:
            sweep_end("accept (%s)" % mode, n, "%d clients closed by a failure; unreported "
                      "without effect: %s" % (unserved, sorted(silent)))
            return
    print("  accept (%s): %d runs (bounded), %d clients closed by a failure; unreported "
          "without effect: %s" % (mode, ACCEPT_SWEEP, unserved, sorted(silent)))


@ev.test
def accept_sweep(ctx):
    for mode in ("splice", "copy"):
        accept_sweep_mode(ctx, mode)


@ev.test
def accept_sweep_shared(ctx):
    accept_sweep_mode(ctx, "splice", shared=True)


# --------------------------------------------------------------------------- targeted

@ev.test
def health_check_arm_fails(ctx):
    down = [ctx.refusing("tcp4") for _ in range(3)]
    listen = ctx.addr("tcp4")
    config = ev.make_config([{"name": "hc", "listen": [listen],
                              "upstreams": [x.addr for x in down],
                              "health_check": {"interval": 5}}])
    d = fault_daemon(ctx, "hc", config, "evio_timer_arm:2")
    check(not ready_or_exit(d), "came up although a health probe could not be armed")
    check_failed_start(d)
    d.wait_line(r"^<3>starting health checks: Cannot allocate memory", 1)


@ev.test
def reload_register_fails(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    la, lb = ctx.addr("tcp4"), ctx.addr("tcp4")
    a = {"name": "a", "listen": [la], "upstreams": [echo.addr]}
    b = {"name": "b", "listen": [lb], "upstreams": [echo.addr]}
    for n in (1, 2):
        d = fault_daemon(ctx, "register%d" % n, ev.make_config([a], workers=2),
                         "evio_handle_register:%d" % n, arm="sighup")
        d.wait_line(r"ready:", RUN_TIMEOUT)
        d.rewrite(ev.make_config([a, b], workers=2))
        d.proc.send_signal(signal.SIGHUP)
        d.wait_line(INJECTED, RUN_TIMEOUT)
        d.wait_line(r"^<3>worker \d: registering 127\.0\.0\.1:%d" % lb.value, RUN_TIMEOUT)
        d.wait_line(r"^<3>reload incomplete: 1 workers", RUN_TIMEOUT)  # all applied it
        t0 = time.monotonic()
        for i in range(200):
            roundtrip(lb, b"connection %d" % i, timeout=3.0)
        print("  register:%d: 200 connections to the new listener served in %.2fs"
              % (n, time.monotonic() - t0))
        roundtrip(la, b"old listener")
        d.stop()


@ev.test
def sighup_during_reload(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    la, lb, lc = ctx.addr("tcp4"), ctx.addr("tcp4"), ctx.addr("tcp4")
    a = {"name": "a", "listen": [la], "upstreams": [echo.addr]}
    cfg = [ev.make_config([a] + ([{"name": "x", "listen": [x], "upstreams": [echo.addr]}]
                                 if x else [])) for x in (None, lb, lc)]
    d = ctx.daemon(cfg[0], name="stall")
    d.start(env={"EVPROXY_FAULT_STALL": "evio_handle_register:500", "EVPROXY_FAULT_ARM": "sighup"})
    d.rewrite(cfg[1])
    d.proc.send_signal(signal.SIGHUP)
    i, _ = d.wait_line(r"reloaded ", RUN_TIMEOUT)  # posted; the workers stall 0.5 s applying it
    d.rewrite(cfg[2])
    d.proc.send_signal(signal.SIGHUP)
    j, _ = d.wait_line(r"SIGHUP during a reload", RUN_TIMEOUT, start=i)
    k, _ = d.wait_line(r"reload applied by every worker", RUN_TIMEOUT, start=j)
    d.wait_line(r"reload applied by every worker", RUN_TIMEOUT * 2, start=k + 1)
    roundtrip(lc, b"the file read by the deferred reload")
    roundtrip(la, b"kept all along")
    check(refuses(lb), "%s still accepts after the second reload" % lb)
    check(d.count_lines(r"reload failed|reload incomplete") == 0, "a reload went wrong")
    d.stop()


if __name__ == "__main__":
    ev.main(__doc__)
