#!/usr/bin/env python3
"""Start-up failures after the configuration file was accepted, and signals during start-up.

Every failure case runs evproxyd on a config that `-t` accepts, but that cannot start on this
machine: it must exit with status exactly 1 (no signal, no core) within a few seconds, never
log `ready:`, log a `<3>` line naming what failed (listed per case), write only `<N>`-prefixed
lines, and leave no unix socket file behind (each config also listens on a unix path, opened
before the step that fails where the order allows).
  port_in_use: a TCP listen address another socket holds (bind: Address already in use).
  low_port_as_nobody: a port below 1024 with the daemon started as `nobody` (bind: Permission
    denied).
  unix_missing_dir: a unix path in a directory that does not exist.
  systemd_name_missing: `systemd:web` with no LISTEN_FDS.
  metrics_port_in_use: the metrics endpoint's port is held by another socket.
  no_such_user: `user` names no user.
  out_of_fds_listeners / out_of_fds_workers: RLIMIT_NOFILE too small for the listeners of 64
    workers, or for the workers' drivers after the listeners opened (half-built workers).
sigterm_during_startup: SIGTERM as soon as the daemon blocks its signals (and a few ms later),
  with 100 listeners x 8 workers to open, sent while the daemon is frozen (SIGSTOP/SIGCONT) so
  it is pending at that point of start-up: exit 0, no crash.
sighup_during_startup: the same with SIGHUP: the daemon comes up, reloads, serves, exits 0.
  (These two run the daemon without EVTEST_WRAPPER: under valgrind its mask is not visible.)
sighup_pairs: two SIGHUPs 1 ms apart (the second lands during the first reload or coalesces
  with it), ten times, alternating two configs: the last file read is the one served (its
  listener accepts, the other one is closed), no reload fails, SIGTERM exits 0.
"""

import contextlib
import os
import pwd
import re
import resource
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402

EXIT_TIMEOUT = 10.0
if os.environ.get("EVTEST_WRAPPER"):
    EXIT_TIMEOUT *= 4


def held_port():
    """A TCP port on 127.0.0.1 held by a listening socket of ours (no SO_REUSEPORT)."""
    port = ev.free_port()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", port))
    s.listen(1)
    return port, s


def run_failing(ctx, name, config, want, env=None, preexec=None):
    """Run evproxyd on config to its exit; check the failure contract; return stderr."""
    path = os.path.join(ctx.tmpdir, name + ".conf")
    with open(path, "w") as f:
        f.write(config)
    os.chmod(path, 0o644)
    rc, out, err = ev.run_cmd([ctx.evproxyd, "-t", "-c", path], timeout=EXIT_TIMEOUT)
    check(rc == 0, "%s: -t rejects the config (%d): %s" % (name, rc, err.strip()))
    full_env = dict(os.environ)
    for k, v in (env or {}).items():
        if v is None:
            full_env.pop(k, None)
        else:
            full_env[k] = v
    wrapper = os.environ.get("EVTEST_WRAPPER", "").split()
    p = ev.subprocess.run(wrapper + [ctx.evproxyd, "-c", path], stdin=ev.subprocess.DEVNULL,
                          stdout=ev.subprocess.PIPE, stderr=ev.subprocess.PIPE, env=full_env,
                          timeout=EXIT_TIMEOUT, preexec_fn=preexec)
    err = p.stderr.decode("utf-8", "replace")
    print("  %s -> rc=%d: %s" % (name, p.returncode, err.strip().replace("\n", " | ")[:300]))
    check(p.returncode == 1, "%s: exit status %d, wanted 1 (negative: killed by a signal)"
          % (name, p.returncode))
    check("ready:" not in err, "%s: logged ready:" % name)
    bad = [l for l in err.splitlines() if not ev.PRIO_RE.match(l)]
    check(not bad, "%s: lines without a <N> prefix: %r" % (name, bad[:3]))
    check(re.search(r"^<3>.*" + want, err, re.M), "%s: no <3> line matching %r in %r"
          % (name, want, err))
    check("AddressSanitizer" not in err and "runtime error" not in err,
          "%s: sanitizer report: %s" % (name, err))
    return err


def check_gone(path):
    check(not os.path.exists(path), "stale unix socket file left behind: %s" % path)


def base_routes(ctx, listen):
    """One route on `listen` plus a unix path (returned) opened before it."""
    up = ctx.addr("tcp4", "u")
    sock = ctx.addr("unix")
    return [{"name": "web", "listen": [sock] + listen, "upstreams": [up]}], sock.value


@ev.test
def port_in_use(ctx):
    port, holder = held_port()
    ctx.defer(holder.close)
    routes, path = base_routes(ctx, [ev.Addr("tcp4", port)])
    run_failing(ctx, "busy", ev.make_config(routes),
                r"listen 127\.0\.0\.1:%d: bind: Address already in use" % port)
    check_gone(path)


@ev.test
def low_port_as_nobody(ctx):
    if os.geteuid() != 0:
        ev.skip("needs root to become nobody (CI runs as root)")
        return
    nobody = pwd.getpwnam("nobody")
    os.chmod(ctx.tmpdir, 0o777)  # nobody reads its config, creates and removes its socket
    port = ev.low_port()
    routes, path = base_routes(ctx, [ev.Addr("tcp4", port)])

    def become_nobody():
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)

    run_failing(ctx, "lowport", ev.make_config(routes),
                r"listen 127\.0\.0\.1:%d: bind: Permission denied" % port, preexec=become_nobody)
    check_gone(path)


@ev.test
def unix_missing_dir(ctx):
    path = os.path.join(ctx.tmpdir, "no-such-dir", "s.sock")
    routes, first = base_routes(ctx, [ev.Addr("unix", path)])
    run_failing(ctx, "nodir", ev.make_config(routes),
                r"listen unix:%s: bind: No such file or directory" % re.escape(path))
    check_gone(first)
    check(not os.path.exists(os.path.dirname(path)), "the missing directory was created")


@ev.test
def systemd_name_missing(ctx):
    routes, path = base_routes(ctx, [])
    routes[0]["listen"].append("systemd:web")
    env = {"LISTEN_FDS": None, "LISTEN_PID": None, "LISTEN_FDNAMES": None}
    run_failing(ctx, "sdname", ev.make_config(routes),
                r'listen systemd:web: systemd passed no socket named "web"', env=env)
    check_gone(path)


@ev.test
def metrics_port_in_use(ctx):
    port, holder = held_port()
    ctx.defer(holder.close)
    routes, path = base_routes(ctx, [])
    run_failing(ctx, "metrics", ev.make_config(routes, metrics={"listen": ev.Addr("tcp4", port)}),
                r"metrics: listen 127\.0\.0\.1:%d: bind: Address already in use" % port)
    check_gone(path)


@ev.test
def no_such_user(ctx):
    routes, path = base_routes(ctx, [])
    run_failing(ctx, "user", ev.make_config(routes, user="evtest-no-such-user"),
                r"user evtest-no-such-user: no such user")
    check_gone(path)


def nofile(n):
    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    return limit


@ev.test
def out_of_fds_listeners(ctx):
    # 64 workers: 64 SO_REUSEPORT sockets for the TCP listener; 40 fds cannot hold them.
    routes, path = base_routes(ctx, [ctx.addr("tcp4")])
    run_failing(ctx, "fds1", ev.make_config(routes, workers=64),
                r"listen 127\.0\.0\.1:\d+: socket: Too many open files", preexec=nofile(40))
    check_gone(path)


@ev.test
def out_of_fds_workers(ctx):
    # The 64 listener sockets fit in 90 fds; the drivers of 64 workers (epoll + eventfd
    # each) do not: some workers exist, the rest fail.
    routes, path = base_routes(ctx, [ctx.addr("tcp4")])
    run_failing(ctx, "fds2", ev.make_config(routes, workers=64),
                r"worker \d+: creating driver: Too many open files", preexec=nofile(90))
    check_gone(path)


# --------------------------------------------------------------------------- signals

SIG_MASK_BITS = (1 << (signal.SIGHUP - 1)) | (1 << (signal.SIGTERM - 1))


def wait_signals_blocked(pid, timeout=5.0):
    """Wait until the daemon's main thread blocks SIGHUP and SIGTERM (it handles them from
    then on); returns False if it exited first."""
    dl = ev.deadline(timeout)
    while time.monotonic() < dl:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("SigBlk:") and \
                            int(line.split()[1], 16) & SIG_MASK_BITS == SIG_MASK_BITS:
                        return True
        except OSError:
            return False
        time.sleep(0.0005)
    raise ev.TestFailure("pid %d never blocked SIGHUP and SIGTERM" % pid)


@contextlib.contextmanager
def unwrapped():
    """Start daemons without EVTEST_WRAPPER: under valgrind, /proc's SigBlk is valgrind's own
    mask (everything blocked), not the daemon's, so the moment to signal cannot be seen."""
    saved = os.environ.pop("EVTEST_WRAPPER", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["EVTEST_WRAPPER"] = saved


def send_during_startup(d, sig, delay):
    """Once d blocks its signals (and `delay` later), freeze it (SIGSTOP), send sig, let it
    go on (SIGCONT): sig is pending wherever start-up was, not only after `ready:`."""
    check(wait_signals_blocked(d.pid), "%s exited before blocking signals" % d.name)
    time.sleep(delay)
    d.proc.send_signal(signal.SIGSTOP)
    d.proc.send_signal(sig)
    d.proc.send_signal(signal.SIGCONT)


def many_listeners(ctx, n, up):
    return [{"name": "r%d" % i, "listen": [ctx.addr("tcp4")], "upstreams": [up]}
            for i in range(n)]


@ev.test
def sigterm_during_startup(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    routes = many_listeners(ctx, 100, echo.addr)
    for delay in (0, 0.002, 0.005, 0.02):
        d = ctx.daemon(ev.make_config(routes, workers=8), name="term%d" % int(delay * 1000))
        with unwrapped():
            d.start(wait_ready=False)
        send_during_startup(d, signal.SIGTERM, delay)
        d.wait_exit(ev.STOP_TIMEOUT)  # exit 0, well-formed log
        print("  SIGTERM %g ms after signals were blocked: exit 0" % (delay * 1000))


@ev.test
def sighup_during_startup(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    routes = many_listeners(ctx, 100, echo.addr)
    for delay in (0, 0.005):
        d = ctx.daemon(ev.make_config(routes, workers=8), name="hup%d" % int(delay * 1000))
        with unwrapped():
            d.start(wait_ready=False)
        send_during_startup(d, signal.SIGHUP, delay)
        d.wait_line(r"ready:", ev.READY_TIMEOUT)
        d.wait_line(r"reloaded ", ev.READY_TIMEOUT)
        c = ev.connect(routes[-1]["listen"][0])
        ev.echo_roundtrip(c, b"after a SIGHUP at start-up")
        c.close()
        check(d.count_lines(r"reload failed") == 0, "a reload failed")
        d.stop()


def refused(addr):
    """True once addr refuses; False while it accepts (or, while it closes, resets a connection
    that landed in its backlog)."""
    try:
        ev.connect(addr, 2).close()
        return False
    except (ConnectionRefusedError, FileNotFoundError):
        return True
    except ConnectionResetError:
        return False


@ev.test
def sighup_pairs(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    a, b = ctx.addr("tcp4"), ctx.addr("tcp4")
    cfgs = [ev.make_config([{"name": "r", "listen": [x], "upstreams": [echo.addr]}])
            for x in (a, b)]
    d = ctx.daemon(cfgs[0]).start()
    for i in range(10):
        want, gone = (b, a) if i % 2 == 0 else (a, b)
        d.rewrite(cfgs[(i + 1) % 2])
        d.proc.send_signal(signal.SIGHUP)
        time.sleep(0.001)
        d.proc.send_signal(signal.SIGHUP)
        dl = ev.deadline(10)
        while not refused(gone):
            check(time.monotonic() < dl, "round %d: %s still accepts" % (i, gone))
            time.sleep(0.01)
        c = ev.connect(want)
        ev.echo_roundtrip(c, b"round %d" % i)
        c.close()
    check(d.count_lines(r"reload failed") == 0, "a reload failed")
    print("  %d reloads for 20 SIGHUPs" % d.count_lines(r"reloaded "))
    d.stop()


if __name__ == "__main__":
    ev.main(__doc__)
