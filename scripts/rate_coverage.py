"""Coverage of fit_rate's 95% slope interval by simulation, at 2, 3, 5 and 10 seeds (table: docs/concepts/rates.md).

The setting of issue 13: 3 x-points per seed (300, 1000, 3000, like manifold_dim), per-seed slopes spread with sd
0.02 around -0.2 (normal, or Student t3 scaled to the same sd), a per-seed constant, noise sd 0.01 on log y.

    python scripts/rate_coverage.py [--reps 1000] [--compare-commit REV]

Then the false-alarm rate of the pre-asymptotic verdict on settled power laws with noise. --compare-commit also
measures the fit_rate of an earlier commit (its convlab/metrics/rates.py, read with git show),
e.g. bde4573 for the seed bootstrap-t that this interval replaced.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from convlab.metrics.rates import fit_rate


def coverage(fit, G: int, reps: int, tails: str, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    xs = np.array([300.0, 1000.0, 3000.0])
    hits, widths = 0, []
    for _ in range(reps):
        draw = rng.standard_normal(G) if tails == "normal" else rng.standard_t(3, G) / np.sqrt(3)
        slopes = -0.2 + 0.02 * draw
        x, s = np.tile(xs, G), np.repeat(np.arange(G), 3)
        y = np.exp(0.1 * rng.standard_normal(G)[s] + slopes[s] * np.log(x) + 0.01 * rng.standard_normal(3 * G))
        f = fit(x, y, seed=s)
        hits += f.ci_low <= -0.2 <= f.ci_high
        widths.append(f.ci_high - f.ci_low)
    return hits / reps, float(np.median(widths))


def false_alarms(reps: int, true: float, seed: int = 1) -> float:
    """Share of 3-seed studies of a settled power law (slope `true`, noise sd 0.15 on log y, K = 2..256) that are
    called pre-asymptotic against -1 +/- 0.05."""
    rng = np.random.default_rng(seed)
    X = 2.0 ** np.arange(1, 9)
    x, s = np.tile(X, 3), np.repeat(np.arange(3), X.size)
    calls = [
        fit_rate(x, 2.5 * x**true * np.exp(0.15 * rng.standard_normal(x.size)), seed=s, expected=-1.0, tol=0.05).verdict
        for _ in range(reps)
    ]
    return calls.count("pre-asymptotic") / reps


def load_old(rev: str):
    source = subprocess.run(
        ["git", "show", f"{rev}:convlab/metrics/rates.py"], capture_output=True, text=True, check=True
    )
    path = Path(tempfile.mkdtemp()) / "old_rates.py"
    path.write_text(source.stdout)
    spec = importlib.util.spec_from_file_location("old_rates", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_rates"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module.fit_rate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=1000)
    p.add_argument("--compare-commit", default=None)
    args = p.parse_args(argv)
    methods = {"seed-t (now)": fit_rate}
    if args.compare_commit:
        methods[f"fit_rate at {args.compare_commit}"] = load_old(args.compare_commit)
    print(f"coverage of the nominal 95% interval over {args.reps} replicates (median width in brackets)")
    print(f"{'seeds':>5}  {'tails':<7}" + "".join(f"{m:>28}" for m in methods))
    for tails in ("normal", "t3"):
        for G in (2, 3, 5, 10):
            cells = [coverage(f, G, args.reps, tails, seed=G) for f in methods.values()]
            print(f"{G:>5}  {tails:<7}" + "".join(f"{c:>20.3f} [{w:.3f}]" for c, w in cells), flush=True)
    for true in (-1.0, -1.1):
        print(
            f"pure noise, true slope {true:+.1f}: called pre-asymptotic in "
            f"{false_alarms(args.reps, true):.1%} of 3-seed studies"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
