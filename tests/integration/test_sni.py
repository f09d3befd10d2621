#!/usr/bin/env python3
"""Routing on a shared listen address by the client's first bytes (match = { ... }).

Real TLS stacks on loopback: `openssl s_server` backends, each with its own self-signed
certificate (made here), behind one evproxyd port; the certificate a client sees proves the
route it took.

tls_clients: curl --resolve, openssl s_client -servername (with and without SNI, ALPN h2 and
  http/1.1), Python's ssl: exact names, "*." wildcards, case and a trailing dot.
hello_shapes: a ClientHello written one byte per TCP segment, split into several TLS records,
  grown to ~8 KiB (a long ALPN list): each reaches its route and the handshake completes (the
  inspected bytes reach the server once, in order). Over inspect_max and garbage: the default
  route (on_bad_hello = "default") or closed (on_bad_hello = "close", end=bad_hello).
ssh_and_tls: an ssh client reaches a local sshd through the port TLS clients use.
server_first: a client that waits for a banner gets it from the default route once
  inspect_timeout passed; with no default, end=no_match.
plain_bytes: HTTP and other protocols reach their routes with their bytes exactly once.
proxy_and_acl: an accepted PROXY header comes first; the PROXY v2 header sent upstream names
  the true client, then the hello follows; the chosen route's allow/deny applies (end=denied).
reload_shares_address: reloads that turn a plain address into a shared one and back keep its
  listener (new connections all along, none fails) and a connection from before goes on.
metrics: evproxy_inspect_total and evproxy_route_matched_total count what happened.
"""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402

NAMES = ("api.example.com", "www.example.org", "default.test", "h2.example.net")


def make_cert(ctx, cn):
    key, crt = os.path.join(ctx.tmpdir, cn + ".key"), os.path.join(ctx.tmpdir, cn + ".crt")
    rc, _, err = ev.run_cmd(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                             "/CN=" + cn, "-keyout", key, "-out", crt], timeout=30)
    check(rc == 0, "openssl req: %s" % err)
    return key, crt


class TlsServer:
    """openssl s_server -www on a loopback port, answering with the certificate of cn."""

    def __init__(self, ctx, cn, alpn="h2,http/1.1"):
        key, crt = make_cert(ctx, cn)
        self.cn = cn
        self.port = ev.free_port()
        self.log = open(os.path.join(ctx.tmpdir, cn + ".s_server.log"), "w")
        self.proc = subprocess.Popen(
            ["openssl", "s_server", "-accept", "127.0.0.1:%d" % self.port, "-cert", crt,
             "-key", key, "-www", "-alpn", alpn, "-naccept", "1000"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        ctx.defer(self.close)
        dl = ev.deadline(10)
        while True:  # wait until it listens
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                break
            except OSError:
                check(time.monotonic() < dl and self.proc.poll() is None,
                      "s_server for %s did not start" % cn)
                time.sleep(0.05)

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def close(self):
        self.proc.kill()
        self.proc.wait(5)
        self.log.close()


def need(*tools):
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        ev.skip("not installed: %s" % ", ".join(missing))
        return False
    return True


def tls_routes(listen, servers, extra=None, default=True):
    """Routes on one address: api + *.example.org by SNI, ALPN h2 alone, and a default."""
    extra = extra or {}
    r = [dict(name="api", listen=[listen], upstreams=[servers["api.example.com"].addr],
              match={"sni": ["api.example.com"]}, **extra),
         dict(name="org", listen=[listen], upstreams=[servers["www.example.org"].addr],
              match={"sni": ["*.example.org"]}, **extra),
         dict(name="h2", listen=[listen], upstreams=[servers["h2.example.net"].addr],
              match={"alpn": ["h2"]}, **extra)]
    if default:
        r.append(dict(name="dflt", listen=[listen], upstreams=[servers["default.test"].addr],
                      **extra))
    return r


def start_servers(ctx):
    return {cn: TlsServer(ctx, cn) for cn in NAMES}


# --------------------------------------------------------------------------- Python TLS

def client_ctx(alpn=None):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    if alpn:
        c.set_alpn_protocols(alpn)
    return c


def tls_handshake(listen, sni, send_hello=None, alpn=None, prefix=b""):
    """Handshake through evproxyd with Python's ssl over a MemoryBIO, so the ClientHello can be
    written in any shape (send_hello(sock, hello)); returns the server certificate's DER and
    the ALPN protocol chosen."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx(alpn).wrap_bio(inc, out, server_hostname=sni)
    s = ev.connect(listen)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if prefix:
            s.sendall(prefix)
        first = True
        dl = ev.deadline(15)
        while True:
            try:
                obj.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            data = out.read()
            if data:
                if first and send_hello:
                    send_hello(s, data)
                else:
                    s.sendall(data)
                first = False
            if done:
                break
            check(time.monotonic() < dl, "no handshake within 15 s")
            s.settimeout(ev.left(dl))
            got = s.recv(65536)
            check(got, "connection closed during the handshake")
            inc.write(got)
        return obj.getpeercert(binary_form=True), obj.selected_alpn_protocol()
    finally:
        s.close()


def raw_hello(sni, alpn=None):
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx(alpn).wrap_bio(inc, out, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def cert_is(der, cn):
    return ("CN=" + cn).encode() in der or cn.encode() in der


def byte_per_segment(s, hello):
    for i in range(len(hello)):
        s.sendall(hello[i:i + 1])
        time.sleep(0.001)


def reframe(hello, size):
    """The handshake message of a one-record hello re-framed into records of `size` bytes."""
    check(hello[0] == 22, "not a handshake record")
    body = hello[5:]
    out = b""
    for k in range(0, len(body), size):
        part = body[k:k + size]
        out += bytes([22, 3, 1]) + len(part).to_bytes(2, "big") + part
    return out


def big_alpn(n=30):
    return ["x%02d" % i + "p" * 250 for i in range(n)] + ["http/1.1"]


# --------------------------------------------------------------------------- tests

@ev.test
def tls_clients(ctx):
    if not need("openssl", "curl"):
        return
    servers = start_servers(ctx)
    listen = ctx.addr("tcp4")
    d = ctx.daemon(ev.make_config(tls_routes(listen, servers))).start()
    port = listen.sockaddr[1]
    for name, cn in (("api.example.com", "api.example.com"), ("www.example.org", "www.example.org"),
                     ("deep.a.example.org", "www.example.org"), ("other.test", "default.test")):
        p = subprocess.run(["curl", "-sSvk", "--http1.1", "--max-time", "10", "--resolve",
                            "%s:%d:127.0.0.1" % (name, port), "https://%s:%d/" % (name, port)],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
        err = p.stderr.decode("utf-8", "replace")
        check(p.returncode == 0, "curl %s: rc=%d %s" % (name, p.returncode, err[-500:]))
        check("CN=%s" % cn in err, "curl %s: wanted the certificate of %s: %s" % (name, cn, err))
        check(b"s_server" in p.stdout or b"Ciphers" in p.stdout, "no -www page: %r" % p.stdout[:200])
    cases = [(["-servername", "API.Example.COM."], "api.example.com", None),
             (["-servername", "x.example.org", "-alpn", "http/1.1"], "www.example.org", "http/1.1"),
             (["-noservername", "-alpn", "h2"], "h2.example.net", "h2"),
             (["-noservername", "-alpn", "http/1.1"], "default.test", "http/1.1"),
             (["-noservername"], "default.test", None),
             (["-servername", "example.org"], "default.test", None)]  # "*." needs a label
    for args, cn, alpn in cases:
        p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + args,
                           input=b"", capture_output=True, timeout=20)
        out = p.stdout.decode("utf-8", "replace")
        check("subject=CN = %s" % cn in out, "s_client %s: wanted %s:\n%s" % (args, cn, out[:1500]))
        if alpn:
            check("ALPN protocol: %s" % alpn in out, "s_client %s: no ALPN %s" % (args, alpn))
    der, _ = tls_handshake(listen, "api.example.com")
    check(cert_is(der, "api.example.com"), "python: api route")
    lines = d.wait_access(11, timeout=10)
    api = [l for l in lines if l["route"] == "api"]
    check(api and api[0]["sni"] == "api.example.com" and api[0]["match"] == "sni:api.example.com",
          "api access lines: %s" % api)
    org = [l for l in lines if l["route"] == "org"]
    check(all(l["match"] == "sni:*.example.org" for l in org), "org: %s" % org)
    dflt = [l for l in lines if l["route"] == "dflt"]
    check(dflt and all(l["match"] == "default" for l in dflt), "dflt: %s" % dflt)
    check(any(l["sni"] == "-" for l in dflt), "a hello without SNI logs sni=-: %s" % dflt)
    d.stop()


@ev.test
def hello_shapes(ctx):
    if not need("openssl"):
        return
    servers = start_servers(ctx)
    listen, strict = ctx.addr("tcp4"), ctx.addr("tcp4")
    routes = tls_routes(listen, servers, {"inspect_max": 4096})
    routes += [dict(name="s_api", listen=[strict], upstreams=[servers["api.example.com"].addr],
                    match={"sni": ["api.example.com"]}, on_bad_hello="close"),
               dict(name="s_any", listen=[strict], upstreams=[servers["default.test"].addr],
                    match={"protocol": "any"}, on_bad_hello="close")]
    d = ctx.daemon(ev.make_config(routes)).start()
    # One byte per TCP segment.
    der, _ = tls_handshake(listen, "api.example.com", byte_per_segment)
    check(cert_is(der, "api.example.com"), "one byte per segment: wrong route")
    # Several records, and records of a few bytes sent in separate segments.
    for size in (40, 300):
        der, _ = tls_handshake(listen, "www.example.org",
                               lambda s, h: s.sendall(reframe(h, size)))
        check(cert_is(der, "www.example.org"), "records of %d bytes: wrong route" % size)

    def records_slowly(s, h):
        w = reframe(h, 50)
        for k in range(0, len(w), 7):
            s.sendall(w[k:k + 7])
            time.sleep(0.002)
    der, _ = tls_handshake(listen, "api.example.com", records_slowly)
    check(cert_is(der, "api.example.com"), "records in pieces: wrong route")
    # ~8 KiB: within the default 16 KiB on the strict address, over 4096 on the other.
    hello = raw_hello("api.example.com", big_alpn())
    check(len(hello) > 7800, "the big hello has %d bytes" % len(hello))
    der, _ = tls_handshake(strict, "api.example.com", alpn=big_alpn())
    check(cert_is(der, "api.example.com"), "8 KiB hello: wrong route")
    der, _ = tls_handshake(listen, "api.example.com", alpn=big_alpn())
    check(cert_is(der, "default.test"), "over inspect_max: the default route")
    n_strict = len(d.access(route="-", end="bad_hello"))
    s = ev.connect(strict)  # over the limit where bad hellos are closed: ~17 KiB
    s.sendall(raw_hello("api.example.com", big_alpn(66)))
    ev.wait_closed(s, 5)
    s.close()
    for junk in (b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00", b"\x80\x2e\x01\x03\x01" + b"z" * 45,
                 b"\x16\x03\x01\x00\x30" + b"\x01\x00\x00\x2c" + b"\xff" * 44):
        s = ev.connect(strict)
        s.sendall(junk)
        ev.wait_closed(s, 5)
        s.close()
    d.wait_access(n_strict + 4, route="-", end="bad_hello")
    # Garbage with on_bad_hello = "default" reaches the default route (s_server answers or
    # drops it: either way the route is logged).
    s = ev.connect(listen)
    s.sendall(b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00")
    ev.wait_closed(s, 10)
    s.close()
    dl = ev.deadline(10)
    while len([l for l in d.access(route="dflt") if l["match"] == "bad_hello"]) < 2:
        check(time.monotonic() < dl, "bad hellos sent to the default route: %s" % d.access())
        time.sleep(0.05)
    d.stop()


def start_sshd(ctx):
    key = os.path.join(ctx.tmpdir, "hostkey")
    rc, _, err = ev.run_cmd(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key])
    check(rc == 0, "ssh-keygen: %s" % err)
    port = ev.free_port()
    conf = os.path.join(ctx.tmpdir, "sshd_config")
    with open(conf, "w") as f:
        f.write("ListenAddress 127.0.0.1:%d\nHostKey %s\nPidFile none\nUsePAM no\n"
                "PasswordAuthentication no\nKbdInteractiveAuthentication no\n" % (port, key))
    os.makedirs("/run/sshd", exist_ok=True)
    p = subprocess.Popen([shutil.which("sshd") or "/usr/sbin/sshd", "-D", "-e", "-f", conf],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(ctx.tmpdir, "sshd.log"), "w"))
    ctx.defer(lambda: (p.kill(), p.wait(5)))
    dl = ev.deadline(10)
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return "127.0.0.1:%d" % port
        except OSError:
            check(time.monotonic() < dl and p.poll() is None, "sshd did not start")
            time.sleep(0.05)


@ev.test
def ssh_and_tls(ctx):
    if not need("openssl", "ssh", "ssh-keygen"):
        return
    if not (shutil.which("sshd") or os.path.exists("/usr/sbin/sshd")):
        ev.skip("not installed: sshd (openssh-server)")
        return
    servers = start_servers(ctx)
    listen = ctx.addr("tcp4")
    routes = tls_routes(listen, servers)
    routes.insert(0, dict(name="ssh", listen=[listen], upstreams=[start_sshd(ctx)],
                          match={"protocol": "ssh"}))
    d = ctx.daemon(ev.make_config(routes)).start()
    p = subprocess.run(["ssh", "-v", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                        "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10",
                        "-p", str(listen.sockaddr[1]), "nobody@127.0.0.1", "true"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    err = p.stderr.decode("utf-8", "replace")
    check("Remote protocol version 2.0, remote software version OpenSSH" in err,
          "ssh did not reach sshd:\n%s" % err[-2000:])
    check("Server host key: ssh-ed25519" in err, "no host key exchange:\n%s" % err[-2000:])
    der, _ = tls_handshake(listen, "api.example.com")
    check(cert_is(der, "api.example.com"), "TLS on the ssh port")
    lines = d.wait_access(2, timeout=10)
    check(any(l["route"] == "ssh" and l["match"] == "protocol:ssh" for l in lines),
          "ssh access line: %s" % lines)
    d.stop()


BANNER = b"220 evtest ESMTP ready\r\n"


def banner_handler(rec, server):
    """A server that speaks first (SMTP-like), then echoes."""
    rec.sock.sendall(BANNER)
    ev.echo_handler(rec, server)


@ev.test
def server_first(ctx):
    up = ctx.server("tcp4", banner_handler)
    echo = ctx.server("tcp4", ev.echo_handler)
    listen, lonely = ctx.addr("tcp4"), ctx.addr("tcp4")
    routes = [dict(name="tls", listen=[listen], upstreams=[echo.addr],
                   match={"sni": ["a.test"]}, inspect_timeout=0.5),
              dict(name="banner", listen=[listen], upstreams=[up.addr], inspect_timeout=0.5),
              dict(name="only", listen=[lonely], upstreams=[echo.addr],
                   match={"protocol": "any"}, inspect_timeout=0.3)]
    d = ctx.daemon(ev.make_config(routes)).start()
    s = ev.connect(listen)
    t0 = time.monotonic()
    got = ev.recv_exact(s, len(BANNER), io_timeout=5)
    waited = time.monotonic() - t0
    check(got == BANNER, "banner bytes differ: %r" % got)
    check(0.4 <= waited < 3, "banner after %.2fs, wanted inspect_timeout (0.5s)" % waited)
    ev.echo_roundtrip(s, b"EHLO client\r\n")  # then the client speaks, through the same route
    s.close()
    line = d.wait_access(1, route="banner")[0]
    check(line["match"] == "default" and line["sni"] == "-", "banner line: %s" % line)
    s = ev.connect(lonely)  # protocol "any" but no default: silence matches nothing
    ev.wait_closed(s, 5)
    s.close()
    d.wait_access(1, route="-", end="no_match")
    d.stop()


@ev.test
def plain_bytes(ctx):
    http = ctx.server("tcp4", ev.echo_handler, name="http")
    other = ctx.server("tcp4", ev.echo_handler, name="other")
    listen = ctx.addr("tcp4")
    routes = [dict(name="http", listen=[listen], upstreams=[http.addr],
                   match={"protocol": "http"}),
              dict(name="rest", listen=[listen], upstreams=[other.addr])]
    d = ctx.daemon(ev.make_config(routes)).start()
    for payload, route in ((b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"b" * 100000, "http"),
                           (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "http"),
                           (b"hello there\n" + bytes(range(256)) * 300, "rest"),
                           (b"G", "rest")):
        s = ev.connect(listen)
        ev.echo_roundtrip(s, payload)  # the echo proves each byte arrived once, in order
        s.close()
    lines = d.wait_access(4)
    check(len([l for l in lines if l["route"] == "http" and l["match"] == "protocol:http"]) == 2,
          "http lines: %s" % lines)
    check(len([l for l in lines if l["route"] == "rest" and l["match"] == "default"]) == 2,
          "default lines: %s" % lines)
    d.stop()


def proxy_v2(src, dst, sport, dport):
    import struct
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return sig + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def header_then_bytes(n_after):
    def handler(rec, server):
        head = ev.recv_exact(rec.sock, 16)
        body = ev.recv_exact(rec.sock, int.from_bytes(head[14:16], "big"))
        rec.info["src"] = socket.inet_ntoa(body[0:4])
        rec.info["sport"] = int.from_bytes(body[8:10], "big")
        rec.info["after"] = ev.recv_exact(rec.sock, n_after)
    return handler


@ev.test
def proxy_and_acl(ctx):
    hello = raw_hello("api.example.com")
    up = ctx.server("tcp4", header_then_bytes(len(hello)))
    echo = ctx.server("tcp4", ev.echo_handler)
    listen, pp = ctx.addr("tcp4"), ctx.addr("tcp4")
    routes = [dict(name="api", listen=[listen], upstreams=[up.addr], proxy_protocol="v2",
                   match={"sni": ["api.example.com"]}),
              dict(name="locked", listen=[listen], upstreams=[echo.addr],
                   match={"sni": ["locked.test"]}, allow=["10.0.0.0/8"]),
              dict(name="dflt", listen=[listen], upstreams=[echo.addr]),
              dict(name="papi", listen=[pp], upstreams=[up.addr], proxy_protocol="v2",
                   accept_proxy_protocol=True, match={"sni": ["api.example.com"]}),
              dict(name="pdflt", listen=[pp], upstreams=[echo.addr],
                   accept_proxy_protocol=True)]
    d = ctx.daemon(ev.make_config(routes)).start()
    s = ev.connect(listen)
    s.sendall(hello)
    rec = up.wait_conns(1)[0]
    check(rec.done.wait(10), "upstream did not get the hello")
    check(rec.info.get("after") == hello, "the hello did not follow the PROXY header once")
    check(rec.info["src"] == "127.0.0.1" and rec.info["sport"] == s.getsockname()[1],
          "PROXY header names %s:%s" % (rec.info.get("src"), rec.info.get("sport")))
    s.close()
    s = ev.connect(pp)  # a PROXY header first, then the hello: the header's client goes on
    s.sendall(proxy_v2("203.0.113.7", "127.0.0.1", 4242, 443) + hello)
    rec = up.wait_conns(2)[1]
    check(rec.done.wait(10), "upstream did not get the hello after an accepted header")
    check(rec.info["src"] == "203.0.113.7" and rec.info["sport"] == 4242,
          "PROXY header after inspection names %s" % rec.info.get("src"))
    check(rec.info.get("after") == hello, "hello after the accepted header")
    s.close()
    s = ev.connect(listen)
    s.sendall(raw_hello("locked.test"))
    ev.wait_closed(s, 5)
    s.close()
    line = d.wait_access(1, route="locked", end="denied")[0]
    check(line["match"] == "sni:locked.test", "denied line: %s" % line)
    d.stop()


def reload_and_wait(d, timeout=10.0):
    start = len(d.lines)
    d.proc.send_signal(signal.SIGHUP)
    _, m = d.wait_line(r"reloaded |reload failed", timeout, start=start)
    check("reload failed" not in m.string, "reload failed: %s" % m.string)


@ev.test
def reload_shares_address(ctx):
    plain = ctx.server("tcp4", ev.echo_handler, name="plain")
    sshu = ctx.server("tcp4", ev.echo_handler, name="ssh-upstream")
    listen = ctx.addr("tcp4")
    a = ev.make_config([dict(name="dflt", listen=[listen], upstreams=[plain.addr])])
    b = ev.make_config([dict(name="dflt", listen=[listen], upstreams=[plain.addr]),
                        dict(name="ssh", listen=[listen], upstreams=[sshu.addr],
                             match={"protocol": "ssh"})])
    d = ctx.daemon(a).start()
    held = ev.connect(listen)
    ev.echo_roundtrip(held, b"before")
    stop, errors = threading.Event(), []

    def client():  # new connections all along: the listener is kept, none is refused
        dl = ev.deadline(60)
        while not stop.is_set() and ev.left(dl) > 0.1:
            try:
                s = ev.connect(listen)
                ev.echo_roundtrip(s, b"SSH-2.0-loop\r\n")
                s.close()
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(repr(e))
    t = threading.Thread(target=client, daemon=True)
    t.start()
    for text in (b, a, b):
        time.sleep(0.2)
        d.rewrite(text)
        reload_and_wait(d)
    time.sleep(0.2)
    stop.set()
    t.join(10)
    check(not errors, "connections failed during reloads: %s" % errors[:3])
    ev.echo_roundtrip(held, b"after")  # a connection from before the first reload goes on
    held.close()
    n = sshu.count()
    s = ev.connect(listen)
    ev.echo_roundtrip(s, b"SSH-2.0-x\r\n")
    s.close()
    check(sshu.count() == n + 1, "after the reload SSH goes to its route")
    check(plain.count() > 1 and n > 0, "both routes served during the reloads: %d/%d"
          % (plain.count(), n))
    d.stop()


def scrape(maddr):
    """{(name, label value): value} of a /metrics page (the labels used here: one each)."""
    s = ev.connect(maddr)
    s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
    _, _, data = ev.recv_all(s, limit=16 << 20, keep=True, io_timeout=5)
    s.close()
    out = {}
    for line in data.decode().split("\r\n\r\n", 1)[1].splitlines():
        m = re.match(r'^(\w+)\{\w+="([^"]*)"\} (\S+)$', line)
        if m:
            out[(m.group(1), m.group(2))] = float(m.group(3))
    return out


@ev.test
def metrics(ctx):
    echo = ctx.server("tcp4", ev.echo_handler)
    listen, maddr = ctx.addr("tcp4"), ctx.addr("tcp4", "m")
    routes = [dict(name="ssh", listen=[listen], upstreams=[echo.addr], match={"protocol": "ssh"},
                   inspect_timeout=0.3),
              dict(name="d", listen=[listen], upstreams=[echo.addr], inspect_timeout=0.3)]
    d = ctx.daemon(ev.make_config(routes, metrics={"listen": maddr})).start()
    for payload in (b"SSH-2.0-test\r\n", b"SSH-2.0-again\r\n", b"\x16\x03\x01\x00\x01\x07"):
        s = ev.connect(listen)
        ev.echo_roundtrip(s, payload)
        s.close()
    s = ev.connect(listen)  # silence: the default route after the timeout
    time.sleep(0.5)
    ev.echo_roundtrip(s, b"late")
    s.close()
    d.wait_access(3)
    m = scrape(maddr)
    want = {("evproxy_inspect_total", "ssh"): 2, ("evproxy_inspect_total", "bad_hello"): 1,
            ("evproxy_inspect_total", "timeout"): 1, ("evproxy_inspect_total", "no_match"): 0,
            ("evproxy_route_matched_total", "ssh"): 2, ("evproxy_route_matched_total", "d"): 2,
            ("evproxy_route_connections_accepted_total", "ssh"): 2}
    for k, v in want.items():
        check(m.get(k) == v, "%s{%s} = %s, wanted %s" % (k[0], k[1], m.get(k), v))
    d.stop()


if __name__ == "__main__":
    ev.main(__doc__)
