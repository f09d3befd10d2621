#!/usr/bin/env python3
"""PROXY protocol, both ways.

send_v1 / send_v2: with proxy_protocol the upstream's first bytes are a header naming the true
  client (v4 and v6 listeners; a unix client gives UNKNOWN / LOCAL), then the client's bytes.
accept_v1_v2: with accept_proxy_protocol the header's source is the client: in the access log,
  in the header we send upstream, and for allow/deny (checked again after the header). A
  header that arrives in pieces is fine.
bad_headers: malformed, oversized and slow headers close that connection only
  (end=bad_proxy_header / proxy_timeout) while another connection goes on meanwhile.
interop_haproxy / interop_nginx: real peers with accept-proxy / listen ... proxy_protocol
  report the client address they saw (skipped, with a message, if the binary is missing).
"""

import os
import shutil
import socket
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def read_header(s):
    """Read one PROXY header off s; returns (raw, parsed dict)."""
    first = ev.recv_exact(s, 6)
    if first.startswith(b"PROXY "):
        raw = first
        while not raw.endswith(b"\r\n"):
            raw += ev.recv_exact(s, 1)
            check(len(raw) <= 107, "v1 header too long: %r" % raw)
        f = raw[:-2].decode().split(" ")
        if f[1] == "UNKNOWN":
            return raw, {"v": 1, "local": True}
        return raw, {"v": 1, "fam": f[1], "src": f[2], "dst": f[3], "sport": int(f[4]),
                     "dport": int(f[5])}
    raw = first + ev.recv_exact(s, 10)
    check(raw[:12] == SIG, "neither v1 nor v2: %r" % raw)
    ver_cmd, fam, n = raw[12], raw[13], struct.unpack("!H", raw[14:16])[0]
    body = ev.recv_exact(s, n) if n else b""
    check(ver_cmd >> 4 == 2, "v2 version: %#x" % ver_cmd)
    if ver_cmd & 0xF == 0:
        return raw + body, {"v": 2, "local": True}
    if fam == 0x11:
        src, dst = socket.inet_ntop(socket.AF_INET, body[0:4]), socket.inet_ntop(socket.AF_INET, body[4:8])
        sp, dp = struct.unpack("!HH", body[8:12])
        return raw + body, {"v": 2, "fam": "TCP4", "src": src, "dst": dst, "sport": sp, "dport": dp}
    if fam == 0x21:
        src = socket.inet_ntop(socket.AF_INET6, body[0:16])
        dst = socket.inet_ntop(socket.AF_INET6, body[16:32])
        sp, dp = struct.unpack("!HH", body[32:36])
        return raw + body, {"v": 2, "fam": "TCP6", "src": src, "dst": dst, "sport": sp, "dport": dp}
    raise ev.TestFailure("v2 family %#x" % fam)


def header_echo_handler(rec, server):
    raw, h = read_header(rec.sock)
    rec.info["header"] = h
    ev.echo_handler(rec, server)


def v2_header(src, dst, sport, dport):
    if ":" in src:
        body = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
        fam = 0x21
    else:
        body = socket.inet_pton(socket.AF_INET, src) + socket.inet_pton(socket.AF_INET, dst)
        fam = 0x11
    body += struct.pack("!HH", sport, dport)
    return SIG + bytes([0x21, fam]) + struct.pack("!H", len(body)) + body


def through(listen, payload, prefix=b""):
    c = ev.connect(listen)
    try:
        if prefix:
            c.sendall(prefix)
        ev.echo_roundtrip(c, payload)
        return c.getsockname()
    finally:
        c.close()


def check_send(ctx, version):
    up = ctx.server("tcp4", header_echo_handler, name="pp-upstream")
    l4, l6, lu = ctx.addr("tcp4"), ctx.addr("tcp6"), ctx.addr("unix")
    d = ctx.daemon(ev.make_config([{"name": "send", "listen": [l4, l6, lu],
                                    "upstreams": [up.addr], "proxy_protocol": version}])).start()
    me4 = through(l4, b"data after the v4 header " * 100)
    me6 = through(l6, b"data after the v6 header")
    through(lu, b"data after the unix header")
    recs = up.wait_conns(3)
    for r in recs:
        check(r.done.wait(5), "upstream handler did not finish")
    hs = [r.info.get("header") for r in recs]
    want_v = 1 if version == "v1" else 2
    check(all(h and h["v"] == want_v for h in hs), "headers: %s" % hs)
    check(hs[0]["fam"] == "TCP4" and hs[0]["src"] == "127.0.0.1" and hs[0]["sport"] == me4[1]
          and hs[0]["dst"] == "127.0.0.1" and hs[0]["dport"] == l4.value, "v4: %s" % hs[0])
    check(hs[1]["fam"] == "TCP6" and hs[1]["src"] == "::1" and hs[1]["sport"] == me6[1]
          and hs[1]["dport"] == l6.value, "v6: %s" % hs[1])
    check(hs[2].get("local"), "unix client: %s" % hs[2])
    check(recs[0].received == len(b"data after the v4 header " * 100), "bytes after the header")
    d.stop()


@ev.test
def send_v1(ctx):
    check_send(ctx, "v1")


@ev.test
def send_v2(ctx):
    check_send(ctx, "v2")


@ev.test
def accept_v1_v2(ctx):
    up = ctx.server("tcp4", header_echo_handler, name="pp-upstream")
    listen = ctx.addr("tcp4")
    route = {"name": "acc", "listen": [listen], "upstreams": [up.addr], "proxy_protocol": "v1",
             "accept_proxy_protocol": True, "deny": ["203.0.113.0/24"]}
    d = ctx.daemon(ev.make_config([route])).start()
    through(listen, b"v1 client", b"PROXY TCP4 198.51.100.7 192.0.2.1 4321 80\r\n")
    through(listen, b"v2 client", v2_header("2001:db8::7", "2001:db8::1", 5432, 443))
    # A header in pieces, then the data.
    c = ev.connect(listen)
    for piece in (b"PROX", b"Y TCP4 198.51.100.8 ", b"192.0.2.1 ", b"999 80\r", b"\nrest"):
        c.sendall(piece)
        time.sleep(0.05)
    check(ev.recv_exact(c, 4) == b"rest", "data after a header in pieces")
    c.close()
    # Local / unknown: the connection's own address stays.
    through(listen, b"unknown", b"PROXY UNKNOWN\r\n")
    # The header's address is checked against deny.
    c = ev.connect(listen)
    c.sendall(b"PROXY TCP4 203.0.113.9 192.0.2.1 1111 80\r\nsecret")
    how, got = ev.wait_closed(c, 5)
    check(got == 0, "denied client got %d bytes" % got)
    c.close()
    acc = d.wait_access(5, route="acc")
    ends = {a["client"]: a["end"] for a in acc}  # lines come as connections close
    for who in ("198.51.100.7:4321", "[2001:db8::7]:5432", "198.51.100.8:999"):
        check(ends.get(who) in ("client_closed", "upstream_closed"), "%s: %s" % (who, acc))
    check(any(k.startswith("127.0.0.1:") for k in ends), "UNKNOWN client: %s" % acc)
    check(ends.get("203.0.113.9:1111") == "denied", "denied by header: %s" % acc)
    hs = [r.info.get("header") for r in up.wait_conns(4)]
    check(hs[0]["src"] == "198.51.100.7" and hs[0]["sport"] == 4321, "sent upstream: %s" % hs[0])
    check(hs[1]["fam"] == "TCP6" and hs[1]["src"] == "2001:db8::7", "sent upstream: %s" % hs[1])
    check(hs[2]["src"] == "198.51.100.8" and hs[2]["sport"] == 999, "in pieces: %s" % hs[2])
    check(up.count() == 4, "denied client reached the upstream")
    d.stop()


@ev.test
def bad_headers(ctx):
    echo = ctx.server("tcp4", ev.echo_handler)
    listen = ctx.addr("tcp4")
    route = {"name": "bad", "listen": [listen], "upstreams": [echo.addr],
             "accept_proxy_protocol": True, "proxy_protocol_timeout": 1.0}
    d = ctx.daemon(ev.make_config([route])).start()
    slow = ev.connect(listen)
    slow.sendall(b"PROXY TCP4 198.51.100.1 ")
    t0 = time.monotonic()
    cases = [b"PROXY TCP4 nonsense\r\n", b"GET / HTTP/1.0\r\n\r\n",
             SIG + bytes([0x21, 0x11]) + struct.pack("!H", 2000) + b"\0" * 200,
             b"PROXY " + b"x" * 200]
    for bad in cases:
        c = ev.connect(listen)
        c.sendall(bad)
        how, got = ev.wait_closed(c, 3)
        check(got == 0, "bad header %r: got %d bytes" % (bad[:20], got))
        c.close()
    # The slow one is still pending: another connection works meanwhile.
    through(listen, b"meanwhile", b"PROXY TCP4 198.51.100.2 192.0.2.1 2222 80\r\n")
    check(time.monotonic() - t0 < 0.9, "test too slow for the 1 s header timeout")
    how, got = ev.wait_closed(slow, 3)
    waited = time.monotonic() - t0
    slow.close()
    check(0.8 < waited < 2.5, "slow header closed after %.2fs, want ~1s" % waited)
    d.wait_access(6, route="bad")
    ends = [a["end"] for a in d.access(route="bad")]
    check(ends.count("bad_proxy_header") == 4, "ends: %s" % ends)
    check(ends.count("proxy_timeout") == 1, "ends: %s" % ends)
    check(echo.count() == 1, "bad headers reached the upstream: %d" % echo.count())
    d.stop()


# --------------------------------------------------------------------------- real peers

def interop(ctx, binary, make_conf, cmd, ask):
    path = shutil.which(binary) or ("/usr/sbin/" + binary if os.path.exists("/usr/sbin/" + binary)
                                    else None)
    if not path:
        ev.skip("%s is not installed (apt-get install %s)" % (binary, binary))
        return
    port = ev.free_port()
    conf = make_conf(ctx.tmpdir, port)
    log = open(os.path.join(ctx.tmpdir, binary + ".out"), "w")
    p = subprocess.Popen([path] + cmd(conf), stdin=subprocess.DEVNULL, stdout=log,
                         stderr=subprocess.STDOUT, cwd=ctx.tmpdir)
    ctx.defer(lambda: (p.kill(), p.wait(5)))
    up = ev.Addr("tcp4", port)
    dl = ev.deadline(10)
    while True:
        check(p.poll() is None, "%s exited: %s" % (binary, open(log.name).read()))
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            break
        except OSError:
            check(time.monotonic() < dl, "%s did not listen" % binary)
            time.sleep(0.1)
    for version in ("v1", "v2"):
        l4, l6 = ctx.addr("tcp4"), ctx.addr("tcp6")
        d = ctx.daemon(ev.make_config([{"name": "to_" + binary, "listen": [l4, l6],
                                        "upstreams": [up], "proxy_protocol": version}]),
                       name="evproxyd-%s-%s" % (binary, version)).start()
        for listen in (l4, l6):
            c = ev.connect(listen)
            me = c.getsockname()
            seen = ask(c)
            c.close()
            want = "%s:%d" % (me[0], me[1])
            print("  %s %s: client %s, %s saw %s" % (binary, version, want, binary, seen))
            check(seen == want, "%s (%s) saw %r, want %r" % (binary, version, seen, want))
        d.stop()


def read_to_eof(c):
    n, _, data = ev.recv_all(c, limit=65536, keep=True)
    return data.decode("latin-1")


@ev.test
def interop_haproxy(ctx):
    def conf(tmp, port):
        path = os.path.join(tmp, "haproxy.cfg")
        with open(path, "w") as f:
            f.write("""global
    maxconn 100
defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:%d accept-proxy
    http-request return status 200 content-type text/plain lf-string "seen=%%[src]:%%[src_port]\\n"
""" % port)
        return path

    def ask(c):
        c.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        text = read_to_eof(c)
        for line in text.splitlines():
            if line.startswith("seen="):
                return line[5:].replace("::ffff:", "")
        raise ev.TestFailure("haproxy answer without seen=: %r" % text)

    interop(ctx, "haproxy", conf, lambda c: ["-db", "-f", c], ask)


@ev.test
def interop_nginx(ctx):
    def conf(tmp, port):
        path = os.path.join(tmp, "nginx.conf")
        mod = "/usr/lib/nginx/modules/ngx_stream_module.so"
        with open(path, "w") as f:
            f.write("""%s
daemon off;
master_process off;
pid %s/nginx.pid;
error_log %s/nginx-error.log info;
events { worker_connections 64; }
stream {
    server {
        listen 127.0.0.1:%d proxy_protocol;
        return "seen=$proxy_protocol_addr:$proxy_protocol_port\\n";
    }
}
""" % ("load_module %s;" % mod if os.path.exists(mod) else "", tmp, tmp, port))
        return path

    def ask(c):
        text = read_to_eof(c)
        check(text.startswith("seen="), "nginx answer: %r" % text)
        return text.strip()[5:]

    interop(ctx, "nginx", conf, lambda c: ["-p", os.path.dirname(c), "-c", c], ask)


if __name__ == "__main__":
    ev.main(__doc__)
