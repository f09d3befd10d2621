"""netns: run an integration test script inside a network namespace of its own.

`reexec_in_netns()` at the top of main re-runs the script under `unshare -n` (root only) with
EVTEST_IN_NETNS=1 and brings `lo` up there, so a test may add addresses (IPv6 prefixes) and
firewall rules without touching the machine's own network. Returns only inside the namespace;
outside, it exits with the child's status, or skips (evtest.skip) when no namespace can be made.
"""

import os
import subprocess
import sys


def run(*args, timeout=10):
    p = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(args), p.returncode,
                                                p.stdout.decode(errors="replace")))
    return p.stdout.decode(errors="replace")


def reexec_in_netns(ev):
    if os.environ.get("EVTEST_IN_NETNS"):
        run("ip", "link", "set", "lo", "up")
        return
    probe = subprocess.run(["unshare", "-n", "true"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=10)
    if probe.returncode != 0:
        ev.skip("cannot create a network namespace (unshare -n needs root)")
        sys.exit(0)
    env = dict(os.environ, EVTEST_IN_NETNS="1")
    p = subprocess.run(["unshare", "-n", sys.executable] + sys.argv, env=env, timeout=3600)
    sys.exit(p.returncode)
