#!/usr/bin/env python3
"""Command line: -t, -V, -h, and a bad config without -t.

check_good: `-t` on a valid config exits 0 (and does not start serving: it returns by itself).
check_bad: `-t` on each of several bad configs exits non-zero and prints `FILE:LINE:` with the
line of the fault (and the setting's name where there is one): unknown key, port out of range,
syntax error, unknown enum word, empty upstream list; a missing file exits non-zero too.
version: `-V` exits 0 and prints the version (the CMake project version when given).
help: `-h` exits 0 and mentions -c.
bad_config_start: starting (no -t) with a bad config exits non-zero, never logs `ready:`.
access_log_default: with no access_log setting, a finished connection is logged (the default is
true).
"""

import os
import re
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402

GOOD = """# good
workers = 1;
max_connections = 100;
routes = (
  {
    name = "web";
    listen = [ "127.0.0.1:%(p1)d", "unix:%(sock)s", "unix:@%(abs)s" ];
    upstreams = [ "127.0.0.1:%(p2)d", "[::1]:%(p2)d" ];
    idle_timeout = 30;
    max_connections = 10;
  }
);
"""

# (name, text, fault line, words that must appear in the message)
BAD = [
    ("unknown_key", """workers = 1;
routes = (
  {
    name = "web";
    idle_timeoutt = 30;
    listen = [ "127.0.0.1:%(p1)d" ];
    upstreams = [ "127.0.0.1:%(p2)d" ];
  }
);
""", 5, ["idle_timeoutt"]),
    ("port_range", """workers = 1;
routes = (
  {
    name = "web";
    listen = [ "127.0.0.1:%(p1)d" ];
    upstreams = [ "127.0.0.1:%(p2)d",
                  "127.0.0.1:99999" ];
  }
);
""", 7, ["upstreams", "99999"]),
    ("syntax", """workers = 1;
max_connections = ;
routes = (
  {
    name = "web";
    listen = [ "127.0.0.1:%(p1)d" ];
    upstreams = [ "127.0.0.1:%(p2)d" ];
  }
);
""", 2, []),
    ("enum_word", """workers = 1;
forwarding = "teleport";
routes = (
  {
    name = "web";
    listen = [ "127.0.0.1:%(p1)d" ];
    upstreams = [ "127.0.0.1:%(p2)d" ];
  }
);
""", 2, ["forwarding"]),
    ("empty_upstreams", """workers = 1;
routes = (
  {
    name = "web";
    listen = [ "127.0.0.1:%(p1)d" ];

    upstreams = [ ];
  }
);
""", 7, ["upstreams"]),
]


def values(ctx):
    return {"p1": ev.free_port(), "p2": ev.free_port(),
            "sock": os.path.join(ctx.tmpdir, "good.sock"),
            "abs": "evtest-cli-%d" % os.getpid()}


def write(ctx, name, text):
    path = os.path.join(ctx.tmpdir, name + ".conf")
    with open(path, "w") as f:
        f.write(text % values(ctx))
    return path


@ev.test
def check_good(ctx):
    path = write(ctx, "good", GOOD)
    rc, out, err = ev.run_cmd([ctx.evproxyd, "-t", "-c", path], timeout=10)
    check(rc == 0, "-t on a good config exited %d: %s" % (rc, err.strip()))
    check("ready:" not in err, "-t started serving")


@ev.test
def check_bad(ctx):
    errors = []
    for name, text, line, words in BAD:
        path = write(ctx, name, text)
        rc, out, err = ev.run_cmd([ctx.evproxyd, "-t", "-c", path], timeout=10)
        msg = out + err
        print("  %s -> rc=%d: %s" % (name, rc, msg.strip().replace("\n", " | ")))
        if rc == 0:
            errors.append("%s: -t exited 0" % name)
            continue
        if not re.search(re.escape(os.path.basename(path)) + r":%d\b" % line, msg):
            errors.append("%s: no '%s:%d' in %r" % (name, os.path.basename(path), line, msg))
        for w in words:
            if w not in msg:
                errors.append("%s: %r not named in %r" % (name, w, msg))
    missing = os.path.join(ctx.tmpdir, "does-not-exist.conf")
    rc, out, err = ev.run_cmd([ctx.evproxyd, "-t", "-c", missing], timeout=10)
    print("  missing file -> rc=%d: %s" % (rc, (out + err).strip()))
    if rc == 0:
        errors.append("missing file: -t exited 0")
    if "does-not-exist.conf" not in out + err:
        errors.append("missing file: the message does not name the file")
    check(not errors, "; ".join(errors))


@ev.test
def version(ctx):
    rc, out, err = ev.run_cmd([ctx.evproxyd, "-V"], timeout=5)
    msg = out + err
    print("  -V -> rc=%d: %s" % (rc, msg.strip()))
    check(rc == 0, "-V exited %d" % rc)
    want = ctx.args.version
    if want:
        check(want in msg, "-V does not print version %s: %r" % (want, msg))
    else:
        check(re.search(r"\d+\.\d+\.\d+", msg), "-V prints no version: %r" % msg)


@ev.test
def help(ctx):
    rc, out, err = ev.run_cmd([ctx.evproxyd, "-h"], timeout=5)
    check(rc == 0, "-h exited %d" % rc)
    check("-c" in out + err, "-h does not mention -c: %r" % (out + err))


@ev.test
def bad_config_start(ctx):
    path = write(ctx, "bad", BAD[0][1])
    rc, out, err = ev.run_cmd([ctx.evproxyd, "-c", path], timeout=10)
    check(rc != 0, "started with a bad config and exited 0")
    check("ready:" not in err, "logged ready: with a bad config")
    check(re.search(r"bad\.conf:5\b", err), "no bad.conf:5 in %r" % err)


@ev.test
def access_log_default(ctx):
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    listen = ctx.addr("tcp4")
    routes = [{"name": "dflt", "listen": [listen], "upstreams": [echo.addr]}]
    d = ctx.daemon(ev.make_config(routes, access_log=None)).start()
    c = ev.connect(listen)
    ev.echo_roundtrip(c, b"log me")
    c.close()
    a = d.wait_access(1, route="dflt", timeout=3)
    check(a[0]["bytes_in"] == 6 and a[0]["end"] == "client_closed", "access line: %s" % a[0])
    d.stop()


if __name__ == "__main__":
    ev.main(__doc__)
