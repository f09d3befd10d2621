"""Paired, alternating runs for bench/run-peers --pairs N: for each client and each other row
(a peer, or direct), N pairs of runs, evproxyd and that row back to back, the order flipped
every pair, so slow drifts of the shared machine hit both sides alike. Each pair gives a ratio
(> 1: evproxyd better) of the figure, of p99 and of CPU per unit of work; stats.py turns the N
ratios into a median with a 95 % bootstrap CI, a sign test and a verdict ahead / tie / behind.
"""
import csv
import os
import statistics

import stats


def run_pairs(clients, rows, n_pairs, measure, say, wd):
    """clients: run-peers' CLIENTS entries; rows: the running rows (direct included);
    measure(key, fn, row) -> (figure, p99, cpu per unit). Writes pairs.csv in wd and returns
    {key: {row: {"fig": summary, "p99": summary, "cpu": summary}}}."""
    others = [r for r in rows if r != "evproxyd"]
    out = {}
    with open(os.path.join(wd, "pairs.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["client", "peer", "pair", "order", "evproxyd", "peer_figure",
                    "evproxyd_p99_ms", "peer_p99_ms", "evproxyd_cpu", "peer_cpu"])
        for key, title, unit, cpu_label, cpu_scale, fn in clients:
            out[key] = {}
            for peer in others:
                got = []
                for i in range(n_pairs):
                    order = ("evproxyd", peer) if i % 2 == 0 else (peer, "evproxyd")
                    res = {row: measure(key, fn, row) for row in order}
                    e, p = res["evproxyd"], res[peer]
                    got.append((e, p))
                    w.writerow([key, peer, i + 1, "/".join(order), e[0], p[0], e[1], p[1],
                                e[2], p[2]])
                    f.flush()
                figs = [(e[0], p[0]) for e, p in got if e[0] and p[0]]
                out[key][peer] = {
                    "medians": (statistics.median(x for x, _ in figs),
                                statistics.median(y for _, y in figs)) if figs else None,
                    "fig": stats.summarize(stats.ratios([(e[0], p[0]) for e, p in got])),
                    "p99": stats.summarize(stats.ratios([(e[1], p[1]) for e, p in got], False)),
                    "cpu": stats.summarize(stats.ratios([(e[2], p[2]) for e, p in got], False)),
                }
            report(key, title, unit, cpu_label, out[key], n_pairs, say)
    return out


def _cell(s):
    if not s:
        return "%-28s" % "-"
    lo, hi = s["median_ci"]
    return "%-28s" % ("%.2fx [%.2f,%.2f] %s" % (s["median"], lo, hi, s["verdict"]))


def report(key, title, unit, cpu_label, res, n_pairs, say):
    say("%s: evproxyd / row, median of %d paired ratios [95%% bootstrap CI] verdict "
        "(> 1: evproxyd better)" % (title, n_pairs))
    say("  %-14s %-21s %-28s %-28s %-28s %s" % ("vs", "medians evp / row", unit,
                                                "p99 (row/evproxyd)", cpu_label + " (row/evp)",
                                                "sign test, figure"))
    for peer, r in res.items():
        s = r["fig"]
        sign = ("%d/%d above 1, p=%.4f" % (s["above"], s["above"] + s["below"], s["p_sign"])
                if s else "-")
        m = r["medians"]
        say("  %-14s %-21s %s %s %s %s" % (peer, "%.4g / %.4g" % m if m else "-",
                                           _cell(r["fig"]), _cell(r["p99"]), _cell(r["cpu"]),
                                           sign))
    say()
