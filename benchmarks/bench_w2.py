"""Exact W2 at n = 4000: convlab.exact_w2_sq against plain POT, side by side in one run.

    python benchmarks/bench_w2.py [--n 4000] [--dims 2 10 100] [--repeats 3]

Three contenders on the same samples, interleaved, median wall time of --repeats:
  plain      ot.emd2(a, b, ot.dist(x, y))                       (POT's default numItermax = 1e5)
  plain-conv ot.emd2(a, b, ot.dist(x, y), numItermax=1e8)       (the same, run to optimality)
  convlab    convlab.metrics.exact_w2_sq(x, y)                  (auto: emd or linear_sum_assignment)
The plain call stops at numItermax at this size and returns a value off the optimum (with a warning), so
the speed ratio that matters is against plain-conv; both are printed with each value's relative error.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import ot

from convlab.metrics import effective_dim, exact_w2_sq
from convlab.metrics.w2 import LSA_MIN_EFFECTIVE_DIM


def timed(fn):
    t = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = fn()
    return time.perf_counter() - t, float(value), len(caught)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--dims", type=int, nargs="+", default=[2, 10, 100])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    n = args.n
    u = np.full(n, 1 / n)
    print(
        f"exact W2^2, n = {n}, median of {args.repeats} (auto uses lsa from effective dim >= {LSA_MIN_EFFECTIVE_DIM})"
    )
    print(
        f"{'D':>4} {'eff.dim':>7} {'plain s':>8} {'conv s':>8} {'convlab s':>9} {'vs plain':>9} {'vs conv':>8}  "
        "rel.err plain / convlab  (warnings)"
    )
    for D in args.dims:
        rng = np.random.default_rng(D)
        x, y = rng.standard_normal((n, D)), rng.standard_normal((n, D)) + 0.3
        runs = {"plain": [], "conv": [], "convlab": []}
        for _ in range(args.repeats):
            runs["plain"].append(timed(lambda: ot.emd2(u, u, ot.dist(x, y))))
            runs["conv"].append(timed(lambda: ot.emd2(u, u, ot.dist(x, y), numItermax=10**8)))
            runs["convlab"].append(timed(lambda: exact_w2_sq(x, y)))
        t = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
        val = {k: v[0][1] for k, v in runs.items()}
        warn = {k: v[0][2] for k, v in runs.items()}
        rel = lambda k: abs(val[k] - val["conv"]) / val["conv"]  # noqa: E731
        print(
            f"{D:>4} {effective_dim(x, y):>7.1f} {t['plain']:>8.2f} {t['conv']:>8.2f} {t['convlab']:>9.2f} "
            f"{t['convlab'] / t['plain']:>8.2f}x {t['convlab'] / t['conv']:>7.2f}x  "
            f"{rel('plain'):.1e} / {rel('convlab'):.1e}"
            f"  ({warn['plain']} / {warn['convlab']})",
            flush=True,
        )


if __name__ == "__main__":
    main()
