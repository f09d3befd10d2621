"""browser: a real headless Chromium driven over the DevTools protocol (Python stdlib only).

Chromium runs with --remote-debugging-pipe: it reads commands on its fd 3 and writes answers
and events on its fd 4, each a JSON text ended by a NUL byte, so no websocket client is needed.
A Browser opens one page (a target in flat session mode), collects what the page reports
(console messages, Log entries such as Content-Security-Policy violations, uncaught
exceptions, failed requests) and evaluates expressions in it. Every wait is bounded; close()
ends the browser (SIGKILL after a grace period). `find()` names the binary, or None.
"""

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

from evtest import TestFailure, check, deadline, left

NAMES = ("chromium", "chromium-browser", "google-chrome")


def _high_fd(fd):
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


def find():
    for n in NAMES:
        p = shutil.which(n)
        if p:
            return p
    return None


class Browser:
    def __init__(self, binary, log_path, timeout=30.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="evt-chromium-", dir="/tmp")
        cmd_r, self._cmd_w = os.pipe2(os.O_CLOEXEC)
        self._out_r, out_w = os.pipe2(os.O_CLOEXEC)
        # Above 9, so that moving them to 3 and 4 cannot close one another.
        cmd_r, out_w = (_high_fd(cmd_r), _high_fd(out_w))
        args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--no-proxy-server",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0",
                "--user-data-dir=" + self.profile, "--remote-debugging-pipe", "about:blank"]
        # The pipes must be the browser's fds 3 and 4: bash (sh takes no fd above 9) moves them.
        script = 'exec "$@" 3<&%d 4>&%d %d<&- %d>&-' % (cmd_r, out_w, cmd_r, out_w)
        self.log = open(log_path, "wb")
        env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS="disabled:")
        self.proc = subprocess.Popen(["bash", "-c", script, "bash"] + args, pass_fds=(cmd_r, out_w),
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)
        os.close(cmd_r)
        os.close(out_w)
        self._next_id = 0
        self._answers = {}
        self.events = []  # (method, params, sessionId), in arrival order
        self._cond = threading.Condition()
        self._eof = False
        self._reader = threading.Thread(target=self._read, name="cdp-reader", daemon=True)
        self._reader.start()
        self.session = None

    # ------------------------------------------------------------------ protocol

    def _read(self):
        buf = b""
        for _ in range(10 ** 7):
            try:
                chunk = os.read(self._out_r, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self._cond:
                    if "id" in msg:
                        self._answers[msg["id"]] = msg
                    else:
                        self.events.append((msg.get("method"), msg.get("params", {}),
                                            msg.get("sessionId")))
                    self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def send(self, method, params=None, session=True, timeout=None):
        """Send a command (to the page's session unless session=False); its result, or raise."""
        with self._cond:
            self._next_id += 1
            mid = self._next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        data = json.dumps(msg).encode() + b"\0"
        try:
            os.write(self._cmd_w, data)  # commands are small: one write, the pipe takes it
        except OSError as e:
            raise TestFailure("chromium: writing %s: %s" % (method, e))
        dl = deadline(timeout or self.timeout)
        with self._cond:
            while mid not in self._answers:
                check(not self._eof, "chromium closed its pipe before answering %s (rc=%s)"
                      % (method, self.proc.poll()))
                check(time.monotonic() < dl, "chromium: no answer to %s within %.0fs"
                      % (method, timeout or self.timeout))
                self._cond.wait(min(0.2, left(dl)))
            ans = self._answers.pop(mid)
        if "error" in ans:
            raise TestFailure("chromium: %s failed: %s" % (method, ans["error"]))
        return ans.get("result", {})

    # ------------------------------------------------------------------ page

    def open(self, width, height, scale=2, mobile=True):
        """Make the page, attach to it, enable the domains that report problems, and give it a
        phone's screen (width x height CSS pixels)."""
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)
        att = self.send("Target.attachToTarget", {"targetId": target["targetId"],
                                                  "flatten": True}, session=False)
        self.session = att["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(domain + ".enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": scale,
                   "mobile": mobile})

    def navigate(self, url):
        r = self.send("Page.navigate", {"url": url})
        check("errorText" not in r, "chromium: loading %s: %s" % (url, r.get("errorText")))

    def evaluate(self, expr):
        """The value of a JavaScript expression in the page (JSON-able values only)."""
        r = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True})
        if "exceptionDetails" in r:
            raise TestFailure("chromium: %s threw: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    def wait_for(self, expr, timeout, what):
        """Evaluate expr every 100 ms until it is truthy; its value."""
        dl = deadline(timeout)
        for _ in range(100000):
            v = self.evaluate(expr)
            if v:
                return v
            if time.monotonic() >= dl:
                break
            time.sleep(0.1)
        raise TestFailure("chromium: %s not within %.0fs (problems: %s)"
                          % (what, timeout, self.problems()))

    def screenshot(self, path):
        r = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        data = base64.b64decode(r["data"])
        with open(path, "wb") as f:
            f.write(data)
        return data

    def problems(self):
        """What the page reported as wrong: console errors and warnings, Log entries of level
        warning or error (CSP violations among them), uncaught exceptions, failed requests
        other than those listed in allowed (URL suffixes)."""
        out = []
        with self._cond:
            events = list(self.events)
        for method, p, _ in events:
            if method == "Runtime.exceptionThrown":
                out.append("exception: %s" % p.get("exceptionDetails", {}).get("text"))
            elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning",
                                                                            "assert"):
                out.append("console.%s: %s" % (p["type"], [a.get("value") for a in p["args"]]))
            elif method == "Log.entryAdded" and p["entry"]["level"] in ("warning", "error"):
                e = p["entry"]
                out.append("log %s/%s: %s %s" % (e.get("source"), e["level"], e.get("text"),
                                                 e.get("url", "")))
        return out

    def responses(self):
        """[(url, status, headers)] of every response the page received."""
        with self._cond:
            events = list(self.events)
        return [(p["response"]["url"], p["response"]["status"], p["response"]["headers"])
                for m, p, _ in events if m == "Network.responseReceived"]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.send("Browser.close", session=False, timeout=5)
            except TestFailure:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(5)
        for fd in (self._cmd_w, self._out_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self._reader.join(2)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)
