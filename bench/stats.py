#!/usr/bin/env python3
"""Statistics for paired benchmark runs (stdlib only): per-pair ratios, a bootstrap 95 %
confidence interval of their median and of their geometric mean, a two-sided sign test, and a
verdict: ahead (the median's CI entirely above 1), behind (entirely below 1) or tie (contains 1).

Used by bench/run-peers --pairs and bench/scaling; `stats.py --self-test` checks it on synthetic
data (deterministic, fixed seeds, well under a second) and is run by CTest as bench.stats.
"""
import math
import random
import statistics
import sys

SEED = 19
RESAMPLES = 10000
LEVEL = 0.95
MIN_PAIRS = 5  # fewer give no verdict: 4 pairs cannot reach p < 0.05 in a sign test either


def ratios(pairs, higher_is_better=True):
    """Per-pair ratio evproxyd/peer (higher_is_better: throughput) or peer/evproxyd (latency,
    CPU per unit), so that > 1 always means evproxyd did better. Pairs with a missing or zero
    figure are left out."""
    out = []
    for e, p in pairs:
        if not e or not p:
            continue
        out.append(e / p if higher_is_better else p / e)
    return out


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def percentile(sorted_xs, q):
    """Linear interpolation between closest ranks (numpy's default), q in [0, 1]."""
    if not sorted_xs:
        raise ValueError("no data")
    pos = q * (len(sorted_xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def bootstrap_ci(xs, stat, resamples=RESAMPLES, seed=SEED, level=LEVEL):
    """Percentile bootstrap CI of stat(xs): resample xs with replacement `resamples` times with
    a generator seeded by `seed`, so the same data always give the same interval."""
    rng = random.Random(seed)
    n = len(xs)
    est = sorted(stat([xs[rng.randrange(n)] for _ in range(n)]) for _ in range(resamples))
    tail = (1 - level) / 2
    return percentile(est, tail), percentile(est, 1 - tail)


def sign_test(rs):
    """Two-sided exact sign test of 'the ratio is as often above 1 as below': pairs equal to 1
    are dropped. Returns (above, below, p-value)."""
    above = sum(1 for r in rs if r > 1)
    below = sum(1 for r in rs if r < 1)
    n = above + below
    if n == 0:
        return above, below, 1.0
    k = min(above, below)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return above, below, min(1.0, 2 * tail)


def verdict(lo, hi):
    if lo > 1:
        return "ahead"
    if hi < 1:
        return "behind"
    return "tie"


def summarize(rs, seed=SEED, resamples=RESAMPLES):
    """Everything a report line needs for one workload and one peer, from per-pair ratios."""
    if not rs:
        return None
    med_ci = bootstrap_ci(rs, statistics.median, resamples, seed)
    geo_ci = bootstrap_ci(rs, geomean, resamples, seed)
    above, below, p = sign_test(rs)
    return {"n": len(rs), "median": statistics.median(rs), "median_ci": med_ci,
            "geomean": geomean(rs), "geomean_ci": geo_ci, "above": above, "below": below,
            "p_sign": p, "verdict": verdict(*med_ci) if len(rs) >= MIN_PAIRS else "too few pairs"}


def fmt_summary(s):
    if not s:
        return "no pair"
    return ("%.3fx [%.3f, %.3f]  geomean %.3fx [%.3f, %.3f]  sign %d/%d p=%.4f  %s"
            % (s["median"], s["median_ci"][0], s["median_ci"][1], s["geomean"],
               s["geomean_ci"][0], s["geomean_ci"][1], s["above"], s["above"] + s["below"],
               s["p_sign"], s["verdict"].upper()))


# ---------------------------------------------------------------------------------------------
# Self-test on synthetic data.


def _synthetic(true_ratio, n, noise, seed):
    """n pairs (evproxyd, peer) with peer ~ 1000 * N(1, noise) and evproxyd = peer * true_ratio *
    N(1, noise), the way paired runs on a noisy machine look."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        base = 1000 * rng.gauss(1, noise)
        pairs.append((base * true_ratio * rng.gauss(1, noise), base))
    return pairs


def self_test():
    import unittest

    class StatsTest(unittest.TestCase):
        def test_ratios_direction_and_missing(self):
            self.assertEqual(ratios([(2, 1), (None, 1), (3, 0)]), [2.0])
            self.assertEqual(ratios([(2, 1)], higher_is_better=False), [0.5])

        def test_percentile_interpolates(self):
            self.assertEqual(percentile([1, 2, 3, 4], 0.5), 2.5)
            self.assertEqual(percentile([5], 0.975), 5)
            self.assertAlmostEqual(percentile([0, 10], 0.025), 0.25)

        def test_sign_test_exact(self):
            self.assertEqual(sign_test([1.1] * 10), (10, 0, 2 / 1024))
            above, below, p = sign_test([1.1] * 8 + [0.9] * 2)  # 2*(1+10+45)/1024
            self.assertAlmostEqual(p, 112 / 1024)
            self.assertEqual(sign_test([1.0, 1.0]), (0, 0, 1.0))
            self.assertEqual(sign_test([1.2, 0.8])[2], 1.0)

        def test_constant_data_has_a_point_interval(self):
            s = summarize([1.25] * 10)
            self.assertEqual(s["median_ci"], (1.25, 1.25))
            self.assertAlmostEqual(s["geomean_ci"][0], 1.25)
            self.assertEqual(s["verdict"], "ahead")

        def test_deterministic(self):
            rs = ratios(_synthetic(1.05, 10, 0.1, 1))
            self.assertEqual(summarize(rs), summarize(rs))
            # (the median's interval lands on data points, so compare the geomean's)
            self.assertNotEqual(bootstrap_ci(rs, geomean, 1000, seed=1),
                                bootstrap_ci(rs, geomean, 1000, seed=2))

        def test_verdicts_on_clear_differences(self):
            self.assertEqual(summarize(ratios(_synthetic(1.3, 10, 0.05, 3)))["verdict"], "ahead")
            self.assertEqual(summarize(ratios(_synthetic(0.7, 10, 0.05, 4)))["verdict"], "behind")
            self.assertEqual(summarize(ratios(_synthetic(1.0, 10, 0.05, 5)))["verdict"], "tie")

        def test_interval_contains_estimate_and_narrows(self):
            wide = summarize(ratios(_synthetic(1.1, 10, 0.2, 6)))
            narrow = summarize(ratios(_synthetic(1.1, 100, 0.2, 6)), resamples=1000)
            for s in (wide, narrow):
                self.assertLessEqual(s["median_ci"][0], s["median"])
                self.assertGreaterEqual(s["median_ci"][1], s["median"])
                self.assertLessEqual(s["geomean_ci"][0], s["geomean"])
                self.assertGreaterEqual(s["geomean_ci"][1], s["geomean"])
            w = wide["geomean_ci"][1] - wide["geomean_ci"][0]
            nw = narrow["geomean_ci"][1] - narrow["geomean_ci"][0]
            self.assertLess(nw, w / 2)

        def test_coverage_near_nominal(self):
            # 100 synthetic experiments of 10 pairs around a true ratio of 1: the 95 % interval
            # should hold 1 in most of them (the percentile bootstrap on n = 10 runs a bit
            # narrow: accept 85 %).
            hits = 0
            for k in range(100):
                rs = ratios(_synthetic(1.0, 10, 0.1, 1000 + k))
                lo, hi = bootstrap_ci(rs, statistics.median, resamples=300, seed=k)
                hits += lo <= 1 <= hi
            self.assertGreaterEqual(hits, 85)

        def test_no_verdict_from_too_few_pairs(self):
            self.assertEqual(summarize([1.5] * 4)["verdict"], "too few pairs")
            self.assertEqual(summarize([1.5] * 5)["verdict"], "ahead")

        def test_robust_to_one_stall(self):
            # One pair where the machine stalled evproxyd's run: the median barely moves.
            rs = [1.2, 1.21, 1.19, 1.22, 1.18, 1.2, 1.21, 1.19, 1.2, 0.3]
            s = summarize(rs)
            self.assertEqual(s["verdict"], "ahead")
            self.assertEqual((s["above"], s["below"]), (9, 1))

    suite = unittest.defaultTestLoader.loadTestsFromTestCase(StatsTest)
    res = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(res.failures) + len(res.errors)
    print("%d passed, %d failed" % (res.testsRun - failed, failed))
    return 0 if res.wasSuccessful() else 1


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    if len(argv) > 1 and argv[1] != "-h" and argv[1] != "--help":
        rs = [float(x) for x in argv[1:]]
        print(fmt_summary(summarize(rs)))
        return 0
    print("usage: stats.py --self-test | stats.py RATIO...   (ratios > 1: evproxyd better)")
    return 0 if len(argv) > 1 else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
