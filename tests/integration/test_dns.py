#!/usr/bin/env python3
"""Upstreams given by name (issue 14), against a real DNS server: dnsmasq on a free loopback
port (--no-resolv, answers from an addn-hosts file re-read on SIGHUP; SRV records from
--srv-host, restarted to change them), TTL 1 s.

several_a_balanced: a name with 3 A records is 3 servers, balanced; evproxyctl servers names it.
aaaa: family = "ipv6" connects to the AAAA record.
srv_ports: each SRV target and port is a server.
answer_change: a new answer is used within TTL + 1 s, with no connection refused meanwhile.
dns_killed_keeps_last: the DNS server dies; the last good answer stays in use.
nxdomain_then_no_server: the name disappears; after nxdomain_hold clients end with
  end=no_server; it comes back when the name does.
appears_later: a name that does not exist at start: no_server, then the route fills in.
search_domain: a short name resolved through the search domain of the test's resolv.conf.
etc_hosts: a name only in /etc/hosts (bind-mounted in a private mount namespace).
drain_removed: an established connection keeps flowing after its address left the answer.
reload_keeps_state: drain state and counters of an address survive a reload.
reload_new_nameservers: a reload with other resolver.nameservers rebuilds the resolver.
restart_keeps_named_maint: maint of a name's address, in the state file, applies once it resolves.
all_failed_refresh_now: every address of a name failed: looked up again at once.
check_warns: evproxyd -t warns about a name that does not resolve, and exits 0.
stuck_dns_no_latency: a DNS server that never answers adds no latency to a literal route
  (p99 of new connections measured with and without, bounded).
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402

DNSMASQ = "/usr/sbin/dnsmasq"
TTL = 1
# Under a checker (CI's valgrind pass) the daemon is several times slower: time bounds grow,
# and latency figures are printed but not compared (the ASan and plain runs compare them).
SLOW = 4 if os.environ.get("EVTEST_WRAPPER") else 1


class IpAddr(ev.Addr):
    """A TCP address on any loopback IP (127.0.0.2, ::1, ...)."""

    def __init__(self, host, port):
        super().__init__("tcp6" if ":" in host else "tcp4", port)
        self.host = host

    @property
    def sockaddr(self):
        return (self.host, self.value)

    @property
    def conf(self):
        return ("[%s]:%d" if ":" in self.host else "%s:%d") % (self.host, self.value)


class Dns:
    """dnsmasq for one test: hosts-file answers with TTL 1, SRV records from srv lines."""

    def __init__(self, ctx, srv=(), ttl=TTL, tag=""):
        self.ctx = ctx
        self.port = ev.free_port()
        self.hosts = os.path.join(ctx.tmpdir, "dns-hosts" + tag)
        self.log = os.path.join(ctx.tmpdir, "dnsmasq%s.log" % tag)
        self.srv = list(srv)
        self.ttl = ttl
        self.proc = None
        self.set_hosts([])
        ctx.defer(self.kill)

    def args(self):
        a = [DNSMASQ, "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
             "--bind-interfaces", "--listen-address=127.0.0.1", "--port=%d" % self.port,
             "--local=/test/", "--pid-file=", "--user=root", "--local-ttl=%d" % self.ttl,
             "--addn-hosts=%s" % self.hosts, "--log-facility=%s" % self.log, "--log-queries"]
        return a + ["--srv-host=%s" % s for s in self.srv]

    def start(self):
        self.proc = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        dl = ev.deadline(5)
        while time.monotonic() < dl:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                check(self.proc.poll() is None, "dnsmasq exited; see %s" % self.log)
                time.sleep(0.05)
        raise ev.TestFailure("dnsmasq did not start")

    def set_hosts(self, lines):
        tmp = self.hosts + ".tmp"
        with open(tmp, "w") as f:
            f.write("".join(l + "\n" for l in lines))
        os.rename(tmp, self.hosts)
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGHUP)
            time.sleep(0.1)

    def restart(self, srv):
        self.kill()
        self.srv = list(srv)
        self.start()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def resolver(self, **more):
        r = {"nameservers": ["127.0.0.1:%d" % self.port], "timeout": 0.3, "attempts": 2,
             "refresh": {"min": 0.5, "max": 2}, "nxdomain_hold": 1}
        r.update(more)
        return r


def need_dnsmasq():
    if not os.access(DNSMASQ, os.X_OK):
        ev.skip("dnsmasq is not installed (apt-get install dnsmasq-base)")
        return False
    return True


def server_on(ctx, host, port, name="echo"):
    s = ev.Server(IpAddr(host, port), ev.echo_handler, name=name)
    ctx.servers.append(s)
    return s


def roundtrip(listen, payload=b"ping\n"):
    c = ev.connect(listen, timeout=5)
    try:
        ev.echo_roundtrip(c, payload)
    finally:
        c.close()


def start_daemon(ctx, routes, dns=None, **glob):
    if dns is not None and "resolver" not in glob:
        glob["resolver"] = dns.resolver()
    d = ctx.daemon(ev.make_config(routes, **glob))
    d.start()
    return d


def wait_for(cond, timeout, what):
    dl = ev.deadline(timeout)
    while time.monotonic() < dl:
        if cond():
            return
        time.sleep(0.05)
    raise ev.TestFailure("timed out after %.1fs waiting for %s" % (timeout, what))


def upstreams_seen(d, route, n):
    acc = d.wait_access(n, route=route)
    return [a["upstream"] for a in acc]


def try_roundtrip(listen):
    try:
        roundtrip(listen)
        return True
    except (OSError, ev.TestFailure):
        return False


def admin(ctx, d, *args):
    return ev.run_cmd([os.path.join(os.path.dirname(ctx.evproxyd), "evproxyctl"), "-s",
                       d.admin_sock, "--json"] + list(args))


def one_name(ctx, route, spare=False):
    """An echo server on 127.0.0.2, dnsmasq answering ROUTE.test with it, and a daemon whose
    route ROUTE has the upstream "ROUTE.test:port", once it resolved: (port, dns, listen, d).
    spare: a second echo server on 127.0.0.3, the same port, for the answer to move to."""
    port = ev.free_port()
    server_on(ctx, "127.0.0.2", port, name="old")
    if spare:
        server_on(ctx, "127.0.0.3", port, name="new")
    dns = Dns(ctx)
    dns.set_hosts(["127.0.0.2 %s.test" % route])
    dns.start()
    listen = ctx.addr("tcp4")
    d = start_daemon(ctx, [{"name": route, "listen": [listen],
                            "upstreams": ["%s.test:%d" % (route, port)]}], dns)
    wait_for(lambda: try_roundtrip(listen), 5, "the name to resolve")
    return port, dns, listen, d


@ev.test
def several_a_balanced(ctx):
    if not need_dnsmasq():
        return
    port = ev.free_port()
    ups = [server_on(ctx, "127.0.0.%d" % i, port) for i in (2, 3, 4)]
    dns = Dns(ctx)
    dns.set_hosts(["127.0.0.%d web.test" % i for i in (2, 3, 4)])
    dns.start()
    listen = ctx.addr("tcp4")
    sock = os.path.join(ctx.tmpdir, "admin.sock")
    maddr = ctx.addr("tcp4", "m")
    d = start_daemon(ctx, [{"name": "web", "listen": [listen],
                            "upstreams": ["web.test:%d" % port]}], dns,
                     admin={"listen": "unix:" + sock, "state_file":
                            os.path.join(ctx.tmpdir, "state")}, metrics={"listen": maddr})
    d.admin_sock = sock
    d.metrics = maddr
    wait_for(lambda: try_roundtrip(listen), 5, "the name to resolve")
    d.wait_line(r"route web: web\.test:%d now resolves to \[127\.0\.0\.2:%d, 127\.0\.0\.3:%d, "
                r"127\.0\.0\.4:%d\]" % (port, port, port, port), 5)
    k = len(d.access(route="web"))  # the tries before the answer: end=no_server
    for _ in range(30):
        roundtrip(listen)
    seen = upstreams_seen(d, "web", k + 30)[k:]
    counts = {u: seen.count(u) for u in set(seen)}
    check(sorted(counts) == ["127.0.0.%d:%d" % (i, port) for i in (2, 3, 4)],
          "upstreams used: %r" % counts)
    check(min(counts.values()) >= 8, "not balanced: %r" % counts)
    rc, out, err = admin(ctx, d, "servers", "web")
    check(rc == 0, "evproxyctl servers: %d %s" % (rc, err))
    servers = json.loads(out)["servers"]
    check(len(servers) == 3 and all(s["name"] == "web.test:%d" % port for s in servers),
          "servers: %r" % servers)
    rc, out, err = ev.run_cmd([os.path.join(os.path.dirname(ctx.evproxyd), "evproxyctl"), "-s",
                               sock, "servers", "web"])
    check(rc == 0 and re.search(r"127\.0\.0\.2:%d +web\.test:%d +ready" % (port, port), out),
          "evproxyctl servers table: %s" % out)
    text = scrape(d.metrics)
    for want in (r'evproxy_resolver_lookups_total\{result="ok"\} [1-9]',
                 r'evproxy_resolver_addresses\{route="web",name="web\.test:%d"\} 3' % port,
                 r'evproxy_resolver_seconds_since_success\{route="web",name="web\.test:%d"\} '
                 r'[0-9.]+\n' % port,
                 r'evproxy_upstream_up\{route="web",upstream="127\.0\.0\.4:%d"\} 1' % port):
        check(re.search(want, text), "metrics: no %s in\n%s" % (want, text))
    d.stop()


def scrape(maddr):
    c = ev.connect(maddr, timeout=5)
    try:
        c.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        return ev.recv_all(c, keep=True)[2].decode()
    finally:
        c.close()


@ev.test
def aaaa(ctx):
    if not need_dnsmasq():
        return
    port = ev.free_port()
    server_on(ctx, "::1", port, name="v6")
    dns = Dns(ctx)
    dns.set_hosts(["::1 six.test", "127.0.0.9 six.test"])
    dns.start()
    listen = ctx.addr("tcp4")
    d = start_daemon(ctx, [{"name": "six", "listen": [listen], "upstreams": ["six.test:%d" % port],
                            "resolver": {"family": "ipv6"}}], dns)
    wait_for(lambda: try_roundtrip(listen), 5, "the AAAA record")
    k = len(d.access(route="six"))
    for _ in range(5):
        roundtrip(listen)
    seen = upstreams_seen(d, "six", k + 5)[k:]
    check(set(seen) == {"[::1]:%d" % port}, "upstreams: %r" % seen)
    d.stop()


@ev.test
def srv_ports(ctx):
    if not need_dnsmasq():
        return
    p1, p2 = ev.free_port(), ev.free_port()
    server_on(ctx, "127.0.0.2", p1, name="a")
    server_on(ctx, "127.0.0.3", p2, name="b")
    dns = Dns(ctx, srv=["_app._tcp.svc.test,a.test,%d,0,10" % p1,
                        "_app._tcp.svc.test,b.test,%d,0,10" % p2])
    dns.set_hosts(["127.0.0.2 a.test", "127.0.0.3 b.test"])
    dns.start()
    listen = ctx.addr("tcp4")
    d = start_daemon(ctx, [{"name": "srv", "listen": [listen],
                            "upstreams": ["srv:_app._tcp.svc.test"]}], dns)
    wait_for(lambda: try_roundtrip(listen), 5, "the SRV records")
    d.wait_line(r"srv:_app\._tcp\.svc\.test now resolves to \[127\.0\.0\.2:%d, 127\.0\.0\.3:%d\]"
                % (p1, p2), 5)
    k = len(d.access(route="srv"))  # the tries before the answer: end=no_server
    for _ in range(10):
        roundtrip(listen)
    seen = upstreams_seen(d, "srv", k + 10)[k:]
    check(set(seen) == {"127.0.0.2:%d" % p1, "127.0.0.3:%d" % p2}, "upstreams: %r" % seen)
    d.stop()


class Traffic:
    """New connections in a loop (one at a time, each a roundtrip) until stopped; records
    failures and which upstream the daemon logged for them."""

    def __init__(self, listen):
        self.listen = listen
        self.ok = 0
        self.failures = []
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        dl = ev.deadline(60)
        while not self.stop_ev.is_set() and time.monotonic() < dl:
            try:
                roundtrip(self.listen)
                self.ok += 1
            except OSError as e:
                self.failures.append(repr(e))
            time.sleep(0.01)

    def stop(self):
        self.stop_ev.set()
        self.t.join(10)


@ev.test
def answer_change(ctx):
    if not need_dnsmasq():
        return
    port, dns, listen, d = one_name(ctx, "app", spare=True)
    traffic = Traffic(listen)
    time.sleep(0.5)
    dns.set_hosts(["127.0.0.3 app.test"])
    t0 = time.monotonic()
    n = d.count_lines(r"<6>access route=app")
    # Within TTL + 1 s (+ the refresh's 10% jitter and the access-log round trip).
    line = d.wait_line(r"access route=app .*upstream=127\.0\.0\.3:%d" % port, (TTL + 1.5) * SLOW)
    took = time.monotonic() - t0
    time.sleep(0.3)
    traffic.stop()
    check(not traffic.failures, "connections failed during the change: %r" % traffic.failures[:3])
    check(traffic.ok >= 5, "only %d connections went through" % traffic.ok)
    check(took <= (TTL + 1.5) * SLOW, "new answer used after %.2fs" % took)
    d.wait_line(r"app\.test:%d now resolves to \[127\.0\.0\.3:%d\] \(added: 127\.0\.0\.3:%d; "
                r"removed: 127\.0\.0\.2:%d\)" % (port, port, port, port), 2)
    print("  new answer used %.2fs after the change (%d connections, %d before)" %
          (took, traffic.ok, n))
    d.stop()


@ev.test
def all_failed_refresh_now(ctx):
    """Every address of a name refuses: the name is looked up again at once, long before its
    TTL (60 s here) would have it."""
    if not need_dnsmasq():
        return
    port = ev.free_port()
    server_on(ctx, "127.0.0.3", port)  # nothing listens on 127.0.0.2:port
    dns = Dns(ctx, ttl=60)
    dns.set_hosts(["127.0.0.2 flip.test"])
    dns.start()
    listen = ctx.addr("tcp4")
    d = start_daemon(ctx, [{"name": "flip", "listen": [listen], "health": {"fails": 2},
                            "upstreams": ["flip.test:%d" % port]}],
                     resolver=dns.resolver(refresh={"min": 30, "max": 60}))
    d.wait_line(r"flip\.test:%d now resolves to \[127\.0\.0\.2:%d\]" % (port, port), 5)
    dns.set_hosts(["127.0.0.3 flip.test"])
    wait_for(lambda: try_roundtrip(listen), 5 * SLOW, "a lookup after every address failed")
    d.wait_line(r"every address of flip\.test:%d failed; looking it up again" % port, 1)
    d.stop()


@ev.test
def dns_killed_keeps_last(ctx):
    if not need_dnsmasq():
        return
    port, dns, listen, d = one_name(ctx, "keep")
    before = d.count_lines(r"end=no_server")
    dns.kill()
    traffic = Traffic(listen)
    d.wait_line(r"resolving keep\.test:%d fails \((timeout|refused)" % port, 8)
    time.sleep(3)  # well past refresh.max (2 s): several failed lookups
    traffic.stop()
    check(not traffic.failures, "connections failed without DNS: %r" % traffic.failures[:3])
    check(traffic.ok >= 5, "only %d connections" % traffic.ok)
    check(d.count_lines(r"end=no_server") == before, "no_server while the last answer is kept")
    d.stop()


@ev.test
def nxdomain_then_no_server(ctx):
    if not need_dnsmasq():
        return
    port, dns, listen, d = one_name(ctx, "gone")
    dns.set_hosts([])
    d.wait_line(r"resolving gone\.test:%d fails \((nxdomain|nodata)" % port, TTL + 3)
    d.wait_line(r"gone\.test:%d now resolves to \[\] \(added: none; removed: 127\.0\.0\.2:%d\)"
                % (port, port), 4)
    c = ev.connect(listen)
    check(ev.wait_closed(c, 5), "client not closed")
    c.close()
    d.wait_access(1, route="gone", end="no_server")
    d.wait_line(r"route gone: client \S+: no server: gone\.test:%d has no address" % port, 2)
    dns.set_hosts(["127.0.0.2 gone.test"])
    wait_for(lambda: try_roundtrip(listen), TTL + 5, "the name to come back")
    d.wait_line(r"resolving gone\.test:%d works again" % port, 2)
    d.stop()


@ev.test
def appears_later(ctx):
    if not need_dnsmasq():
        return
    port = ev.free_port()
    server_on(ctx, "127.0.0.2", port)
    dns = Dns(ctx)
    dns.start()
    listen = ctx.addr("tcp4")
    d = start_daemon(ctx, [{"name": "late", "listen": [listen],
                            "upstreams": ["late.test:%d" % port]}], dns)
    c = ev.connect(listen)
    check(ev.wait_closed(c, 5), "client not closed")
    c.close()
    d.wait_access(1, route="late", end="no_server")
    dns.set_hosts(["127.0.0.2 late.test"])
    wait_for(lambda: try_roundtrip(listen), 6, "the name to appear")
    d.stop()


@ev.test
def search_domain(ctx):
    if not need_dnsmasq():
        return
    port = ev.free_port()
    server_on(ctx, "127.0.0.2", port)
    dns = Dns(ctx)
    dns.set_hosts(["127.0.0.2 short.test"])
    dns.start()
    rc = os.path.join(ctx.tmpdir, "resolv.conf")
    with open(rc, "w") as f:
        f.write("search test\nnameserver 127.0.0.1\noptions ndots:1\n")
    listen = ctx.addr("tcp4")
    d = start_daemon(ctx, [{"name": "s", "listen": [listen], "upstreams": ["short:%d" % port]}],
                     resolver=dns.resolver(resolv_conf=rc))
    wait_for(lambda: try_roundtrip(listen), 5, "the short name to resolve via search")
    d.wait_line(r"short:%d now resolves to \[127\.0\.0\.2:%d\]" % (port, port), 2)
    d.stop()


@ev.test
def etc_hosts(ctx):
    if not need_dnsmasq():
        return
    if os.geteuid() != 0 or not shutil_which("unshare"):
        ev.skip("needs root and unshare for a private /etc/hosts")
        return
    port = ev.free_port()
    server_on(ctx, "127.0.0.5", port)
    dns = Dns(ctx)  # answers nothing for this name: the hosts file alone must
    dns.start()
    hosts = os.path.join(ctx.tmpdir, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost\n127.0.0.5 only-in-hosts.test\n")
    listen = ctx.addr("tcp4")
    d = ctx.daemon(ev.make_config([{"name": "h", "listen": [listen],
                                    "upstreams": ["only-in-hosts.test:%d" % port]}],
                                  resolver=dns.resolver()))
    d.start(prefix=["unshare", "-m", "--propagation", "private", "sh", "-c",
                    'mount --bind "$0" /etc/hosts && exec "$@"', hosts])
    wait_for(lambda: try_roundtrip(listen), 5, "the /etc/hosts entry")
    d.stop()


def shutil_which(cmd):
    import shutil
    return shutil.which(cmd)


@ev.test
def drain_removed(ctx):
    if not need_dnsmasq():
        return
    port, dns, listen, d = one_name(ctx, "mv", spare=True)
    held = ev.connect(listen)
    ev.echo_roundtrip(held, b"before\n")
    held_client = "127.0.0.1:%d" % held.getsockname()[1]
    dns.set_hosts(["127.0.0.3 mv.test"])
    d.wait_line(r"mv\.test:%d now resolves to \[127\.0\.0\.3:%d\]" % (port, port), TTL + 3)
    new = ev.connect(listen)  # a new connection goes to the new address
    ev.echo_roundtrip(new, b"new\n")
    new_client = "127.0.0.1:%d" % new.getsockname()[1]
    new.close()
    for i in range(5):  # the old one still flows, to its old address
        ev.echo_roundtrip(held, b"after %d\n" % i)
    held.close()
    dl = ev.deadline(5)
    while time.monotonic() < dl:
        by_client = {a["client"]: a for a in d.access(route="mv")}
        if held_client in by_client and new_client in by_client:
            break
        time.sleep(0.05)
    check(by_client.get(new_client, {}).get("upstream") == "127.0.0.3:%d" % port,
          "new connection: %r" % by_client.get(new_client))
    h = by_client.get(held_client, {})
    check(h.get("upstream") == "127.0.0.2:%d" % port and h.get("bytes_in") == 7 + 5 * 8,
          "held connection: %r" % h)
    d.stop()


@ev.test
def reload_keeps_state(ctx):
    if not need_dnsmasq():
        return
    port = ev.free_port()
    server_on(ctx, "127.0.0.2", port)
    server_on(ctx, "127.0.0.3", port)
    dns = Dns(ctx)
    dns.set_hosts(["127.0.0.2 st.test", "127.0.0.3 st.test"])
    dns.start()
    listen = ctx.addr("tcp4")
    sock = os.path.join(ctx.tmpdir, "admin.sock")
    glob = dict(resolver=dns.resolver(),
                admin={"listen": "unix:" + sock, "state_file": os.path.join(ctx.tmpdir, "st")})
    route = {"name": "st", "listen": [listen], "upstreams": ["st.test:%d" % port]}
    d = start_daemon(ctx, [route], **glob)
    d.admin_sock = sock
    d.wait_line(r"st\.test:%d now resolves to \[127\.0\.0\.2:%d, 127\.0\.0\.3:%d\]"
                % (port, port, port), 5)
    rc, out, err = admin(ctx, d, "drain", "st", "127.0.0.2:%d" % port)
    check(rc == 0, "drain: %s %s" % (out, err))
    for _ in range(4):
        roundtrip(listen)
    route["idle_timeout"] = 99  # a change, so the reload makes a new generation
    d.rewrite(ev.make_config([route], **glob))
    with d.cond:
        start = len(d.lines)
    d.proc.send_signal(signal.SIGHUP)
    d.wait_line(r"reload applied", 5, start=start)
    for _ in range(4):
        roundtrip(listen)
    rc, out, err = admin(ctx, d, "servers", "st")
    servers = {s["server"]: s for s in json.loads(out)["servers"]}
    check(servers["127.0.0.2:%d" % port]["admin"] == "drain", "state lost: %r" % servers)
    check(servers["127.0.0.3:%d" % port]["connects"] == 8, "counters lost: %r" % servers)
    ups = upstreams_seen(d, "st", 8)
    check(set(ups) == {"127.0.0.3:%d" % port}, "drained address used: %r" % ups)
    d.stop()


@ev.test
def restart_keeps_named_maint(ctx):
    """maint on an address of a name is in the state file; after a restart it applies as soon
    as the name resolves to that address again (not dropped as unknown at start)."""
    if not need_dnsmasq():
        return
    port = ev.free_port()
    server_on(ctx, "127.0.0.2", port)
    server_on(ctx, "127.0.0.3", port)
    dns = Dns(ctx)
    dns.set_hosts(["127.0.0.2 rs.test", "127.0.0.3 rs.test"])
    dns.start()
    listen = ctx.addr("tcp4")
    sock = os.path.join(ctx.tmpdir, "admin.sock")
    text = ev.make_config([{"name": "rs", "listen": [listen], "upstreams": ["rs.test:%d" % port]}],
                          resolver=dns.resolver(),
                          admin={"listen": "unix:" + sock,
                                 "state_file": os.path.join(ctx.tmpdir, "st")})
    d = ctx.daemon(text)
    d.start()
    d.admin_sock = sock
    d.wait_line(r"rs\.test:%d now resolves to \[127\.0\.0\.2:%d, 127\.0\.0\.3:%d\]"
                % (port, port, port), 5)
    rc, out, err = admin(ctx, d, "maint", "rs", "127.0.0.3:%d" % port)
    check(rc == 0, "maint: %s %s" % (out, err))
    d.stop()
    d2 = ctx.daemon(text, name="again")
    d2.start()
    d2.admin_sock = sock
    d2.wait_line(r"route rs server 127\.0\.0\.3:%d \(rs\.test:%d\): maint \(from the state "
                 r"file, now that its name resolved\)" % (port, port), 5)
    for _ in range(4):
        roundtrip(listen)
    rc, out, err = admin(ctx, d2, "servers", "rs")
    servers = {s["server"]: s["admin"] for s in json.loads(out)["servers"]}
    check(servers == {"127.0.0.2:%d" % port: "ready", "127.0.0.3:%d" % port: "maint"},
          "after the restart: %r" % servers)
    ups = [a["upstream"] for a in d2.access(route="rs") if a["end"] != "no_server"]
    check(set(ups) == {"127.0.0.2:%d" % port}, "maint address used: %r" % ups)
    d2.stop()


@ev.test
def reload_new_nameservers(ctx):
    """A reload that changes resolver.nameservers rebuilds the resolver: the name is answered by
    the new server at once, and no connection is refused meanwhile."""
    if not need_dnsmasq():
        return
    port = ev.free_port()
    server_on(ctx, "127.0.0.2", port)
    server_on(ctx, "127.0.0.3", port)
    dns_a = Dns(ctx)
    dns_a.set_hosts(["127.0.0.2 ns.test"])
    dns_a.start()
    dns_b = Dns(ctx, tag="-b")
    dns_b.set_hosts(["127.0.0.3 ns.test"])
    dns_b.start()
    listen = ctx.addr("tcp4")
    route = {"name": "ns", "listen": [listen], "upstreams": ["ns.test:%d" % port]}
    d = start_daemon(ctx, [route], resolver=dns_a.resolver(refresh={"min": 60, "max": 60}))
    d.wait_line(r"ns\.test:%d now resolves to \[127\.0\.0\.2:%d\]" % (port, port), 5)
    traffic = Traffic(listen)
    d.rewrite(ev.make_config([route], resolver=dns_b.resolver(refresh={"min": 60, "max": 60})))
    with d.cond:
        start = len(d.lines)
    d.proc.send_signal(signal.SIGHUP)
    d.wait_line(r"resolver settings changed", 5, start=start)
    d.wait_line(r"ns\.test:%d now resolves to \[127\.0\.0\.3:%d\] \(added: 127\.0\.0\.3:%d; "
                r"removed: 127\.0\.0\.2:%d\)" % (port, port, port, port), 3 * SLOW, start=start)
    time.sleep(0.3)
    traffic.stop()
    check(not traffic.failures, "connections failed during the reload: %r" % traffic.failures[:3])
    d.stop()


@ev.test
def check_warns(ctx):
    if not need_dnsmasq():
        return
    dns = Dns(ctx)
    dns.set_hosts(["127.0.0.2 there.test"])
    dns.start()
    conf = os.path.join(ctx.tmpdir, "t.conf")
    with open(conf, "w") as f:
        f.write(ev.make_config([{"name": "t", "listen": [ctx.addr("tcp4")],
                                 "upstreams": ["there.test:80", "nothere.test:80"]}],
                               resolver=dns.resolver()))
    t0 = time.monotonic()
    rc, out, err = ev.run_cmd([ctx.evproxyd, "-t", "-c", conf], timeout=20)
    took = time.monotonic() - t0
    check(rc == 0, "evproxyd -t: %d\n%s" % (rc, err))
    check(re.search(r"nothere\.test:80 does not resolve now \(nxdomain", err), err)
    check(re.search(r"there\.test:80 resolves to 1 addresses", err), err)
    check(took < 10, "-t took %.1fs" % took)


def setup_ms(listen):
    """Setup latency of one new connection (connect + first echo), in ms."""
    t0 = time.monotonic()
    roundtrip(listen)
    return (time.monotonic() - t0) * 1000


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))]


class BlackHoleDns:
    """A UDP (and TCP) DNS server that reads queries and never answers."""

    def __init__(self, ctx):
        self.port = ev.free_port()
        self.u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.u.bind(("127.0.0.1", self.port))
        self.t = socket.socket()
        self.t.bind(("127.0.0.1", self.port))
        self.t.listen(64)
        self.stop = threading.Event()
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()
        ctx.defer(self.close)

    def run(self):
        self.u.settimeout(0.1)
        while not self.stop.is_set():
            try:
                self.u.recv(4096)
            except OSError:
                pass

    def close(self):
        self.stop.set()
        self.th.join(2)
        self.u.close()
        self.t.close()


@ev.test
def stuck_dns_no_latency(ctx):
    """Two daemons side by side, the same literal route each; one also has names whose lookups
    go to a DNS server that never answers. New connections alternate between them, so both
    see the same machine noise; their p99 setup latencies are compared."""
    hole = BlackHoleDns(ctx)
    up = ctx.server("tcp4", ev.echo_handler)
    base_l, stuck_l = ctx.addr("tcp4"), ctx.addr("tcp4")
    start_daemon(ctx, [{"name": "lit", "listen": [base_l], "upstreams": [up.addr]}],
                 access_log=False, workers=1)
    named = {"name": "stuck", "listen": [ctx.addr("tcp4")],
             "upstreams": ["stuck%d.test:80" % i for i in range(8)]}
    d = ctx.daemon(ev.make_config(
        [{"name": "lit", "listen": [stuck_l], "upstreams": [up.addr]}, named],
        access_log=False, workers=1,
        resolver={"nameservers": ["127.0.0.1:%d" % hole.port], "timeout": 0.2, "attempts": 1,
                  "refresh": {"min": 0.2, "max": 1}}), name="stuck")
    d.start()
    d.wait_line(r"resolving stuck0\.test:80 fails \(timeout", 5 * SLOW)
    base, stuck = [], []
    dl = ev.deadline(40)
    for _ in range(400):
        if time.monotonic() > dl:
            break
        base.append(setup_ms(base_l))
        stuck.append(setup_ms(stuck_l))
    check(len(base) >= 200, "only %d samples in 40 s" % len(base))
    check(d.count_lines(r"resolving stuck\d\.test:80 fails") == 8, "lookups not stuck")
    b, s = p99(base), p99(stuck)
    print("  p99 setup latency over %d connections each: %.2f ms without, %.2f ms with a stuck "
          "DNS server" % (len(base), b, s))
    # "No worse": within noise of a shared 2-core machine (x1.5 or +2 ms, whichever is larger).
    if SLOW == 1:
        check(s <= max(1.5 * b, b + 2.0), "p99 %.2f ms with a stuck DNS vs %.2f ms without"
              % (s, b))
    for x in ctx.daemons:
        x.stop()


if __name__ == "__main__":
    ev.main(__doc__)
