"""admin_util: helpers of the admin socket tests (test_admin*.py) on top of evtest.

A daemon with admin = { listen = "unix:<tmp>/<name>.admin.sock"; state_file = "<tmp>/state/state" }
(every daemon of one test shares the state file, as a restarted service would), evproxyctl
($EVPROXYCTL, or the one built beside evproxyd) run with a timeout, the state file read back, and a check of which
upstream server new connections reach.
"""

import json
import os
import subprocess
import urllib.request

import evtest as ev
from evtest import check


def ctl_path(ctx):
    """$EVPROXYCTL (CTest sets it), else the evproxyctl built beside evproxyd."""
    return os.environ.get("EVPROXYCTL") or os.path.join(
        os.path.dirname(os.path.abspath(ctx.evproxyd)), "evproxyctl")


def ctl(ctx, sock, *args, timeout=90):
    """Run evproxyctl -s sock ARGS: (exit status, stdout, stderr)."""
    return ev.run_cmd([ctl_path(ctx), "-s", sock] + list(args), timeout=timeout)


def ctl_json(ctx, sock, *args, timeout=90):
    """evproxyctl --json ARGS: (exit status, the parsed answer)."""
    rc, out, err = ctl(ctx, sock, "--json", *args, timeout=timeout)
    try:
        return rc, json.loads(out)
    except ValueError:
        raise ev.TestFailure("evproxyctl %s: not JSON (rc %d): %r %r" % (args, rc, out, err))


def state_dir(ctx):
    path = os.path.join(ctx.tmpdir, "state")
    os.makedirs(path, exist_ok=True)
    return path


def state_path(ctx):
    return os.path.join(state_dir(ctx), "state")


def state_file(ctx):
    """{(route, server): state} as the state file has it; {} when there is none."""
    try:
        with open(state_path(ctx)) as f:
            doc = json.load(f)
    except FileNotFoundError:
        return {}
    check(doc["version"] == 1, "state file version: %s" % doc)
    return {(e["route"], e["server"]): e["state"] for e in doc["servers"]}


def sock_path(ctx, name):
    return os.path.join(ctx.tmpdir, name + ".admin.sock")


def config(ctx, routes, name="evproxyd", admin=None, **glob):
    a = {"listen": "unix:" + sock_path(ctx, name), "state_file": state_path(ctx)}
    a.update(admin or {})
    return ev.make_config(routes, admin=a, **glob)


def start(ctx, routes, name="evproxyd", admin=None, **glob):
    """Start a daemon with an admin socket: (daemon, socket path)."""
    d = ctx.daemon(config(ctx, routes, name, admin, **glob), name=name).start()
    return d, sock_path(ctx, name)


def check_goes_to(listen, target, avoid, n, at_least=None):
    """Make n echo connections through listen: target gets all of them (or at_least), the
    servers in avoid none."""
    before = {id(s): len(s.records) for s in [target] + list(avoid)}
    for i in range(n):
        c = ev.connect(listen)
        ev.echo_roundtrip(c, b"probe %d" % i)
        c.close()
    got = len(target.records) - before[id(target)]
    check(got == n if at_least is None else got >= at_least,
          "%s got %d of %d connections" % (target.name, got, n))
    for s in avoid:
        check(len(s.records) == before[id(s)],
              "%s got %d new connections" % (s.name, len(s.records) - before[id(s)]))


def metrics(maddr):
    url = "http://127.0.0.1:%d/metrics" % maddr.value
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()
