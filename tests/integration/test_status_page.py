#!/usr/bin/env python3
"""The live status page on the metrics listener (GET /, /status.js, /status.css, /status.json).

headers: every answer of the listener (the page, its script and style, the data, /metrics, 404,
  405) carries the strict Content-Security-Policy and X-Content-Type-Options: nosniff; the page's
  files are served exactly as in daemon/status/ with their types; HEAD and unknown paths answer
  as before (405, 404).
data: /status.json after known traffic (two routes, one server drained with evproxyctl, one
  refusing) holds the right totals, routes and servers.
browser: a real headless Chromium (browser.py, over the DevTools protocol) with a phone's screen
  (390x844) loads the page; the test checks in the rendered DOM the numbers of what it did
  (connections, bytes, active, connect failures, the drained server, the refusing one's health
  and last error), that rates appear (conns/s and bytes/s between two samples while traffic
  flows), that the stylesheet applied and the page reported no CSP violation, error or
  exception, that nothing overflows the phone's width, and saves a screenshot under the build
  directory ($EVTEST_SCREENSHOT). Without chromium it skips (fails under EVTEST_NO_SKIP).
"""

import json
import os
import struct
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_util as au  # noqa: E402
import browser  # noqa: E402
import evtest as ev  # noqa: E402
from evtest import check  # noqa: E402

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self'")
STATUS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "daemon",
                          "status")
WEB_SIZES = [1000, 2000, 3000, 4000, 5000]  # one echo connection each on route web
API_SIZES = [300, 300, 300]
HELD_SIZE = 50  # api, the connection held open
LATE_SIZES = [2048] * 4  # web, while the browser watches: the rates


def request(addr, raw, timeout=5):
    return ev.http_request(addr, raw, timeout)


def get(maddr, path):
    return request(maddr, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())


def echo(listen, size):
    c = ev.connect(listen)
    ev.echo_roundtrip(c, os.urandom(size))
    c.close()


class Setup:
    """Two routes: web (two echo servers, the second drained through evproxyctl before any
    traffic) and api (a refusing address, then an echo server; a failed connect marks the
    refusing one down for 60 s), the metrics listener and an admin socket."""

    def __init__(self, ctx):
        self.ws1 = ctx.server("tcp4", ev.echo_handler, name="ws1")
        self.ws2 = ctx.server("tcp4", ev.echo_handler, name="ws2")
        self.as1 = ctx.server("tcp4", ev.echo_handler, name="as1")
        self.bad = ctx.refusing("tcp4")
        self.web, self.api = ctx.addr("tcp4"), ctx.addr("tcp4")
        self.maddr = ctx.addr("tcp4", "m")
        routes = [{"name": "web", "listen": [self.web], "upstreams": [self.ws1.addr,
                                                                      self.ws2.addr]},
                  {"name": "api", "listen": [self.api], "upstreams": [self.bad.addr,
                                                                      self.as1.addr],
                   "health": {"fails": 1, "backoff": 60}}]
        self.d, self.sock = au.start(ctx, routes, metrics={"listen": self.maddr})
        rc, out, err = au.ctl(ctx, self.sock, "drain", "web", self.ws2.addr.conf)
        check(rc == 0, "evproxyctl drain: rc %d %s %s" % (rc, out, err))
        for n in WEB_SIZES:
            echo(self.web, n)
        for n in API_SIZES:
            echo(self.api, n)
        # One api connection stays open while the page is looked at (after one exchange, so it
        # is surely connected upstream).
        self.held = ev.connect(self.api)
        ev.echo_roundtrip(self.held, b"h" * HELD_SIZE)
        self.d.wait_access(len(WEB_SIZES), route="web")
        self.d.wait_access(len(API_SIZES), route="api")

    def expect(self, late=()):
        """What the page and the data must say, given the late web connections made since."""
        web_n, web_b = len(WEB_SIZES) + len(late), sum(WEB_SIZES) + sum(late)
        api_n, api_b = len(API_SIZES) + 1, sum(API_SIZES) + HELD_SIZE
        return {
            "totals": {"active": 1, "accepted": web_n + api_n, "refused": 0,
                       "no_server": 0, "queued": 0,
                       "connect_failures": 1, "bytes_in": web_b + api_b,
                       "bytes_out": web_b + api_b},
            "routes": {
                "web": {"active": 0, "accepted": web_n, "refused": 0, "connect_failures": 0,
                        "bytes_in": web_b, "bytes_out": web_b},
                "api": {"active": 1, "accepted": api_n, "refused": 0, "connect_failures": 1,
                        "bytes_in": api_b, "bytes_out": api_b},
            },
            "servers": {
                ("web", self.ws1.addr.conf): {"admin": "ready", "health": "up", "active": 0,
                                              "connects": web_n, "connect_failures": 0},
                ("web", self.ws2.addr.conf): {"admin": "drain", "health": "up", "active": 0,
                                              "connects": 0, "connect_failures": 0},
                ("api", self.bad.addr.conf): {"admin": "ready", "health": "down", "active": 0,
                                              "connects": 0, "connect_failures": 1},
                ("api", self.as1.addr.conf): {"admin": "ready", "health": "up", "active": 1,
                                              "connects": api_n, "connect_failures": 0},
            },
        }


def compare(got, want, where):
    for k, v in want.items():
        check(k in got, "%s: no %s in %s" % (where, k, got))
        check(got[k] == v, "%s: %s is %r, want %r" % (where, k, got[k], v))


@ev.test
def headers(ctx):
    maddr = ctx.addr("tcp4", "m")
    route = {"name": "web", "listen": [ctx.addr("tcp4")],
             "upstreams": [ctx.server("tcp4", ev.echo_handler).addr]}
    d = ctx.daemon(ev.make_config([route], metrics={"listen": maddr})).start()
    files = {"/": ("index.html", "text/html; charset=utf-8"),
             "/status.js": ("status.js", "text/javascript; charset=utf-8"),
             "/status.css": ("status.css", "text/css; charset=utf-8")}
    for path, (name, ctype) in files.items():
        status, h, body = get(maddr, path)
        check(status == 200, "%s: status %d" % (path, status))
        check(h.get("content-type") == ctype, "%s: type %s" % (path, h.get("content-type")))
        with open(os.path.join(STATUS_DIR, name), "rb") as f:
            check(body == f.read(), "%s is not daemon/status/%s as it is" % (path, name))
    status, h, body = get(maddr, "/status.json?t=1")
    check(status == 200 and h["content-type"] == "application/json", "status.json: %s" % h)
    doc = json.loads(body)
    check(doc["routes"][0]["name"] == "web" and doc["phase"] == "running", "json: %s" % doc)
    cases = [(b"GET / HTTP/1.0\r\n\r\n", 200), (b"GET /metrics HTTP/1.1\r\n\r\n", 200),
             (b"GET /status.json HTTP/1.0\r\n\r\n", 200),
             (b"GET /nope HTTP/1.1\r\n\r\n", 404), (b"GET /status.htm HTTP/1.1\r\n\r\n", 404),
             (b"HEAD / HTTP/1.1\r\n\r\n", 405), (b"HEAD /status.json HTTP/1.1\r\n\r\n", 405),
             (b"POST /status.json HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
             (b"GET / HTTP/1.1\r\nbad header\r\n\r\n", 400)]
    for raw, want in cases:
        status, h, _ = request(maddr, raw)
        check(status == want, "%r: status %d, want %d" % (raw, status, want))
        check(h.get("content-security-policy") == CSP, "%r: CSP %r" % (raw, h))
        check(h.get("x-content-type-options") == "nosniff", "%r: no nosniff: %r" % (raw, h))
        if want == 405:
            check(h.get("allow") == "GET", "%r: 405 without Allow: GET" % raw)
    d.stop()


def check_json(doc, s):
    """status.json against what Setup did."""
    want = s.expect()
    compare(doc["totals"], want["totals"], "totals")
    check([r["name"] for r in doc["routes"]] == ["web", "api"], "routes %s" % doc["routes"])
    for r in doc["routes"]:
        got = dict(r, refused=r["refused_acl"] + r["refused_limit"] + r["bad_proxy_header"] +
                   r["refused_client_limit"] + r["rate_limited"])
        compare(got, want["routes"][r["name"]], "route " + r["name"])
        for srv in r["upstreams"]:
            compare(srv, want["servers"][(r["name"], srv["server"])],
                    "server %s/%s" % (r["name"], srv["server"]))


def eventually(fn, timeout, *args):
    """fn(*args) until it raises no TestFailure (a worker may count a moment after the bytes
    arrived), at most timeout seconds; then its result, or its last failure."""
    dl = ev.deadline(timeout)
    for _ in range(10000):
        try:
            return fn(*args)
        except ev.TestFailure:
            if time.monotonic() >= dl:
                raise
        time.sleep(0.1)


@ev.test
def data(ctx):
    s = Setup(ctx)

    def fetch_and_check():
        status, _, body = get(s.maddr, "/status.json")
        check(status == 200, "status %d" % status)
        doc = json.loads(body)
        check_json(doc, s)
        return doc

    doc = eventually(fetch_and_check, 5)
    rc, ver, _ = ev.run_cmd([ctx.evproxyd, "-V"])
    check(rc == 0 and ver.split()[-1] == doc["version"], "version %s vs %s" % (doc, ver))
    check(doc["workers"] == 2 and doc["phase"] == "running", "workers, phase: %s" % doc)
    check(0 < doc["uptime_ms"] < 600000, "uptime_ms %s" % doc["uptime_ms"])
    bad = [u for u in doc["routes"][1]["upstreams"] if u["server"] == s.bad.addr.conf][0]
    check(bad["last_error"] == os.strerror(111) and bad["last_error_time"].endswith("Z"),
          "refusing server's last error: %s" % bad)
    s.held.close()
    s.d.stop()


# The page's state as the user sees it: every cell's text and raw value, per table.
DOM_STATE = r"""JSON.stringify((function () {
  function cells(tr) {
    var o = {};
    tr.querySelectorAll("td").forEach(function (td) {
      o[td.getAttribute("data-field")] = {text: td.textContent.trim(),
                                         value: td.getAttribute("data-value")};
    });
    return o;
  }
  var routes = {}, servers = {}, totals = {};
  document.querySelectorAll("#routes tbody tr").forEach(function (tr) {
    routes[tr.getAttribute("data-route")] = cells(tr);
  });
  document.querySelectorAll("#servers tbody tr").forEach(function (tr) {
    servers[tr.getAttribute("data-route") + " " + tr.getAttribute("data-server")] = cells(tr);
  });
  document.querySelectorAll("#totals > div").forEach(function (div) {
    var dd = div.querySelector("dd");
    totals[div.getAttribute("data-field")] = {text: dd.textContent.trim(),
                                              value: dd.getAttribute("data-value")};
  });
  var b = document.body;
  return {samples: +b.getAttribute("data-samples"), css: b.getAttribute("data-css"),
          csp: b.getAttribute("data-csp"), state: document.getElementById("state").textContent,
          version: document.getElementById("version").textContent,
          phase: document.getElementById("phase").textContent,
          routes: routes, servers: servers, totals: totals};
})())"""

# Renders so far (the body does not exist while the page loads).
SAMPLES = "document.body && +document.body.getAttribute('data-samples')"

LAYOUT = r"""JSON.stringify({
  innerWidth: window.innerWidth,
  scrollWidth: document.documentElement.scrollWidth,
  theadDisplay: getComputedStyle(document.querySelector("#routes thead")).display,
  viewport: document.querySelector('meta[name="viewport"]').getAttribute("content")
})"""


def fmt_bytes(n):
    """What status.js's fmtBytes() shows."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n /= 1024.0
        i += 1
    return ("%d" % round(n) if i == 0 else "%.1f" % n) + " " + units[i]


def check_page(page, want):
    """The rendered page against what the test did."""
    check(page["css"] == "ok", "the stylesheet did not apply: data-css=%s" % page["css"])
    check(page["csp"] == "0", "the page saw %s CSP violations" % page["csp"])
    check(page["state"].startswith("live"), "state line: %r" % page["state"])
    check(page["phase"] == "running", "phase %r" % page["phase"])
    for name, fields in want["routes"].items():
        row = page["routes"].get(name)
        check(row, "no row for route %s: %s" % (name, list(page["routes"])))
        for f, v in fields.items():
            cell = row[f]
            check(cell["value"] == str(v), "route %s %s: %r, want %s" % (name, f, cell, v))
            shown = fmt_bytes(v) if f.startswith("bytes") else str(v)
            check(cell["text"] == shown, "route %s %s shows %r, want %r"
                  % (name, f, cell["text"], shown))
    for (route, server), fields in want["servers"].items():
        row = page["servers"].get(route + " " + server)
        check(row, "no row for server %s/%s: %s" % (route, server, list(page["servers"])))
        for f, v in fields.items():
            cell = row[f]
            check(cell["value"] == str(v) and cell["text"] == str(v),
                  "server %s/%s %s: %r, want %s" % (route, server, f, cell, v))
    for f, v in want["totals"].items():
        cell = page["totals"][f]
        shown = fmt_bytes(v) if f.startswith("bytes") else str(v)
        check(cell["value"] == str(v) and cell["text"] == shown,
              "totals %s: %r, want %s (%s)" % (f, cell, v, shown))


def screenshot_path(ctx):
    path = os.environ.get("EVTEST_SCREENSHOT")
    if path:
        return path
    # build/daemon/evproxyd -> build/status-page.png
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(ctx.evproxyd))),
                        "status-page.png")


@ev.test
def browser_page(ctx):
    binary = browser.find()
    if not binary:
        ev.skip("no chromium (apt-get install chromium) for the status page's browser test")
        return
    s = Setup(ctx)
    b = browser.Browser(binary, os.path.join(ctx.tmpdir, "chromium.log"), timeout=60)
    ctx.defer(b.close)
    b.open(390, 844)
    url = "http://127.0.0.1:%d/" % s.maddr.value
    b.navigate(url)
    b.wait_for(SAMPLES + " >= 1", 60, "a first render")

    def page_shows(want):
        page = json.loads(b.evaluate(DOM_STATE))
        check_page(page, want)
        return page

    page = eventually(page_shows, 10, s.expect())
    check(page["version"] == json.loads(get(s.maddr, "/status.json")[2])["version"],
          "version %r" % page["version"])

    # Traffic while the page watches: the first render that shows it has rates above zero
    # (the render before did not have it), at most what 2 s between samples allow.
    for n in LATE_SIZES:
        echo(s.web, n)
    s.d.wait_access(len(WEB_SIZES) + len(LATE_SIZES), route="web")
    want = s.expect(LATE_SIZES)
    web = want["routes"]["web"]
    first_conns = first_bytes = None
    dl = ev.deadline(30)
    while (first_conns is None or first_bytes is None) and time.monotonic() < dl:
        page = json.loads(b.evaluate(DOM_STATE))
        row = page["routes"]["web"]
        if first_conns is None and row["accepted"]["value"] == str(web["accepted"]):
            first_conns = row
        if first_bytes is None and row["bytes_in"]["value"] == str(web["bytes_in"]):
            first_bytes = row
        time.sleep(0.1)
    check(first_conns and first_bytes, "the page never showed the late traffic: %s" % page)
    conns_rate = float(first_conns["conns_s"]["value"])
    check(0 < conns_rate <= len(LATE_SIZES) / 1.9, "conns/s %s" % first_conns["conns_s"])
    check(first_conns["conns_s"]["text"] == "%.1f/s" % conns_rate, "conns/s shows %r"
          % first_conns["conns_s"]["text"])
    for f in ("in_s", "out_s"):
        r = float(first_bytes[f]["value"])
        check(0 < r <= sum(LATE_SIZES) / 1.9, "%s %s" % (f, first_bytes[f]))
        check(first_bytes[f]["text"].endswith("/s"), "%s shows %r" % (f, first_bytes[f]))

    # Once every late connection is counted, a fresh render shows exactly what was done.
    seen = page["samples"]
    b.wait_for(SAMPLES + " > %d" % seen, 30, "a fresh render")
    page = eventually(page_shows, 10, want)
    bad_srv = page["servers"]["api " + s.bad.addr.conf]
    check(bad_srv["last_error"]["value"] == os.strerror(111), "last error %r" % bad_srv)
    check(page["servers"]["web " + s.ws2.addr.conf]["admin"]["text"] == "drain",
          "the drained server's badge")

    # A phone's screen: no sideways scrolling, tables as cards.
    layout = json.loads(b.evaluate(LAYOUT))
    check(layout["innerWidth"] == 390, "viewport %s" % layout)
    check(layout["scrollWidth"] <= layout["innerWidth"], "overflows the phone: %s" % layout)
    check(layout["theadDisplay"] == "none", "tables not laid out as cards: %s" % layout)
    check("width=device-width" in layout["viewport"], "viewport meta %s" % layout)
    png = b.screenshot(screenshot_path(ctx))
    check(png[:8] == b"\x89PNG\r\n\x1a\n", "screenshot is not a PNG")
    width, height = struct.unpack(">II", png[16:24])
    check(width == 390 * 2 and height >= 844 * 2, "screenshot %dx%d" % (width, height))
    print("  screenshot: %s (%dx%d)" % (screenshot_path(ctx), width, height))

    # Nothing went wrong in the page: no CSP violation, console error or exception; every
    # answer it got had the headers.
    problems = [p for p in b.problems() if "favicon.ico" not in p]
    check(not problems, "the page reported: %s" % problems)
    resp = [r for r in b.responses() if r[0].startswith(url)]
    check(len(resp) >= 4, "responses: %s" % resp)
    for u, st, h in resp:
        h = {k.lower(): v for k, v in h.items()}
        check(h.get("content-security-policy") == CSP and h.get("x-content-type-options") ==
              "nosniff", "%s (%d): headers %s" % (u, st, h))
    b.close()
    s.held.close()
    s.d.stop()


if __name__ == "__main__":
    ev.main(__doc__.splitlines()[0])
