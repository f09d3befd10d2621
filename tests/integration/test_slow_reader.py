#!/usr/bin/env python3
"""A slow reader must not grow the daemon's memory (splice and copy).

The client sends 200 MiB as fast as it can to an upstream that reads nothing for 3 s, then
reads 1 MiB/s for 1 s, then drains at full speed. The daemon's VmRSS (sampled every 50 ms from
/proc/PID/status) must stay under its idle value + 16 MiB the whole time, and while the upstream
reads nothing the client must be stalled well short of 200 MiB (backpressure: the proxy holds
only a bounded amount in flight). Then every byte must arrive intact (sha256) and the access log
must count 200 MiB in.
"""

import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evtest as ev  # noqa: E402
from evtest import MiB, check  # noqa: E402

TOTAL = 200 * MiB
RSS_BOUND_KIB = 16 * 1024
STALL_MAX = 48 * MiB  # socket buffers on both sides of the proxy fit well inside this


def run(ctx, mode):
    gate = threading.Event()
    slow = ctx.server("tcp4", ev.slow_reader_handler(gate, 1.0, 1 * MiB), name="slow")
    echo = ctx.server("tcp4", ev.echo_handler, name="echo")
    l_slow, l_echo = ctx.addr("tcp4"), ctx.addr("tcp4")
    routes = [{"name": "slow", "listen": [l_slow], "upstreams": [slow.addr]},
              {"name": "warm", "listen": [l_echo], "upstreams": [echo.addr]}]
    d = ctx.daemon(ev.make_config(routes, forwarding=mode)).start()

    # warm up the data path (pools, buffers) so the baseline is the steady idle state
    c = ev.connect(l_echo)
    for _ in range(20):
        ev.echo_roundtrip(c, os.urandom(60000))
    c.close()
    d.wait_access(1, route="warm")
    time.sleep(0.3)
    rss = ev.RssSampler(d)

    stream = ev.Stream(777, TOTAL)
    c = ev.connect(l_slow)
    progress = [0]
    try:
        def send_all():
            n = ev.send_stream(c, stream, progress=progress, io_timeout=30, total_timeout=120)
            c.shutdown(socket.SHUT_WR)
            return n
        sender = ev.Task(send_all, name="sender")
        time.sleep(3.0)
        stalled_at = progress[0]
        peak_stalled = rss.peak()
        gate.set()
        sent = sender.join(120)
        check(sent == TOTAL, "sent %d" % sent)
        rec = slow.wait_conns(1)[0]
        check(rec.done.wait(60), "upstream did not finish reading")
        how, got = ev.wait_closed(c, 10)
    finally:
        c.close()
        rss.stop()
    base, peak = rss.base, rss.peak()
    print("  %s: idle RSS %d KiB, peak %d KiB (+%d KiB; +%d KiB while stalled); client stalled "
          "at %.1f MiB of %d" % (mode, base, peak, peak - base, peak_stalled - base,
                                 stalled_at / MiB, TOTAL // MiB))
    check(stalled_at < STALL_MAX, "client pushed %.1f MiB into the proxy while the upstream "
          "read nothing (no backpressure?)" % (stalled_at / MiB))
    check(peak - base <= RSS_BOUND_KIB, "daemon RSS grew by %d KiB (bound %d KiB)"
          % (peak - base, RSS_BOUND_KIB))
    check(rec.error is None, "upstream error %s" % rec.error)
    check(rec.received == TOTAL and rec.sha256 == stream.sha256(),
          "upstream got %d of %d bytes (sha %s)" % (rec.received, TOTAL,
                                                    "ok" if rec.sha256 == stream.sha256()
                                                    else "BAD"))
    a = d.wait_access(1, route="slow")[0]
    check(a["bytes_in"] == TOTAL and a["bytes_out"] == 0,
          "access bytes_in=%d bytes_out=%d" % (a["bytes_in"], a["bytes_out"]))
    d.stop()


@ev.test
def slow_reader_splice(ctx):
    run(ctx, "splice")


@ev.test
def slow_reader_copy(ctx):
    run(ctx, "copy")


if __name__ == "__main__":
    ev.main(__doc__)
