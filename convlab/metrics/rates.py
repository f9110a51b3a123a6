"""Fitted convergence rates: log-log least squares, a CI that covers at its stated level whatever the number of
seeds, local slopes, and a verdict that knows bounds, equivalence and rates that have not started.

The CI is a t-interval on the per-seed slopes with seeds - 1 degrees of freedom: each seed is an independent
replicate of the whole experiment (its own noise and data), so its slope is one draw, and the t quantile pays for
estimating their spread from few of them. A coverage simulation (`python scripts/rate_coverage.py
--compare-commit bde4573`, table in docs/concepts/rates.md; tests/metrics/test_rates.py checks 0.92..0.98) gives 0.948 /
0.946 / 0.957 / 0.945 at 2 / 3 / 5 / 10 seeds with normal seed-to-seed slopes and 0.964 / 0.958 / 0.966 / 0.952 with
t3 tails, where the seed bootstrap-t used before gave 0.000 / 0.810 / 0.951 / 0.948 and 0.000 / 0.795 / 0.955 /
0.928 (at 2 seeds its interval had zero width): it was better at no number of seeds, so it is gone. A single seed gives
no CI at all (its points share one noise draw: their scatter says nothing of the next seed's) and the verdict
"too few seeds (1)".

With log_x=False the fit is log y = intercept + slope x (exponential rates, y ~ C e^{slope x}); 'a decade' then
means a decade of the fitted y.

Verdicts against an expected slope e with tolerance tol, by `test`:
- two_sided: 'consistent' when the CI lies in [e - tol, e + tol], 'inconsistent' when it misses the band,
  'inconclusive' otherwise (the CI is too wide to tell);
- upper_bound (a theorem's rate is usually a bound): 'consistent' when the CI lies below e + tol (a steeper rate
  satisfies the bound), 'inconsistent' when it lies above, 'inconclusive' otherwise;
- 'pre-asymptotic' replaces 'inconsistent' or 'inconclusive' when the rate is still moving towards e: the
  upper-half slope differs from the lower-half slope (a paired t-interval over seeds excludes 0) and lies closer
  to e. `settle_at` then names the next grid points (the geometric continuation of x) that would settle it, unless
  larger x were measured and dropped as unresolved (at the round-off or noise floor): then more x cannot;
- 'insufficient data' with fewer than 3 resolved x values or less than a decade between the smallest and largest;
  'too few seeds (n)' below 2 seeds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats

TESTS = ("two_sided", "upper_bound")


@dataclass(frozen=True)
class Slope:
    """A slope over a range of x with its CI over seeds (infinite with fewer than 2 seeds)."""

    x_lo: float
    x_hi: float
    slope: float
    ci_low: float
    ci_high: float
    n_seeds: int


@dataclass(frozen=True)
class RateFit:
    """log y = intercept + slope log x, with a CI for the slope, local slopes and a verdict."""

    slope: float
    intercept: float
    ci_low: float
    ci_high: float
    confidence: float
    ci_method: str
    n_points: int
    n_dropped: int
    n_seeds: int
    x_min: float
    x_max: float
    expected: float | None
    tol: float | None
    verdict: str | None
    test: str = "two_sided"
    local: list[Slope] = field(default_factory=list)
    lower_half: Slope | None = None
    upper_half: Slope | None = None
    settle_at: list[float] = field(
        default_factory=list
    )  # empty for a pre-asymptotic rate whose next x are at the floor
    # seeds a settled verdict needs at the current mean and per-seed spread (None: cannot be said, or not by seeds)
    seeds_needed: int | None = None

    @property
    def prefactor(self) -> float:
        return math.exp(self.intercept)

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        s = (
            f"slope {self.slope:+.3f} [{self.ci_low:+.3f}, {self.ci_high:+.3f}] "
            f"({self.confidence:.0%} CI, {self.n_seeds} seeds)"
        )
        if self.expected is not None:
            s += f" vs expected {self.expected:+.3f} +/- {self.tol:.3f} ({self.test}): {self.verdict}"
        return s


def _prepare(x, y, seed, resolved, log_x: bool):
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x, y: need equal lengths (got {x.shape[0]} and {y.shape[0]})")
    groups = (
        np.zeros(x.shape, dtype=np.int64)
        if seed is None
        else np.unique(np.asarray(seed).ravel(), return_inverse=True)[1]
    )
    if groups.shape != x.shape:
        raise ValueError(f"seed: needs one entry per point (got {groups.shape[0]} for {x.shape[0]} points)")
    keep = np.isfinite(x) & np.isfinite(y) & (y > 0) & ((x > 0) if log_x else True)
    if resolved is not None:
        keep &= np.asarray(resolved, dtype=bool).ravel()
    lx = np.log(x[keep]) if log_x else x[keep]
    return lx, np.log(y[keep]), groups[keep], keep


def seed_slopes(lx: np.ndarray, ly: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The least-squares slope of each seed that has at least two distinct x."""
    out = []
    for s in np.unique(g):
        m = g == s
        if np.unique(lx[m]).size >= 2:
            out.append(np.polyfit(lx[m], ly[m], 1)[0])
    return np.array(out)


def t_interval(values: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """(mean, low, high): Student's t-interval of the mean of independent replicates; infinite below 2 of them."""
    if values.size == 0:
        return math.nan, -math.inf, math.inf
    mean = float(values.mean())
    if values.size < 2:
        return mean, -math.inf, math.inf
    half = stats.t.ppf(0.5 + confidence / 2, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size)
    return mean, mean - half, mean + half


MAX_SEEDS_NEEDED = 1000  # beyond this, "seeds needed" says more seeds cannot settle it in practice


def seeds_needed(values: np.ndarray, room: float, confidence: float) -> int | None:
    """The fewest replicates whose t-interval has a half-width <= room, at the spread of `values` (per-seed slopes):
    with room the distance from the mean to the nearest edge of a verdict's band, what a settled verdict (on either
    side) needs if the mean and spread stay as they are. None when it cannot be said (fewer than 2 values, the mean
    on the edge) or would take more than MAX_SEEDS_NEEDED."""
    if values.size < 2 or not room > 0:
        return None
    sd = float(values.std(ddof=1))
    if sd == 0:
        return 2
    for n in range(2, MAX_SEEDS_NEEDED + 1):
        if stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n) <= room:
            return n
    return None


def _slope_over(lx, ly, g, lo, hi, confidence, back) -> Slope | None:
    m = (lx >= lo) & (lx <= hi)
    b = seed_slopes(lx[m], ly[m], g[m])
    if b.size == 0:
        return None
    mean, low, high = t_interval(b, confidence)
    return Slope(back(lo), back(hi), mean, low, high, int(b.size))


def fit_rate(
    x,
    y,
    *,
    seed=None,
    resolved=None,
    expected: float | None = None,
    tol: float | None = None,
    test: str = "two_sided",
    confidence: float = 0.95,
    log_x: bool = True,
) -> RateFit:
    """Fit y ~ C x^slope (log_x) or y ~ C e^{slope x} on the resolved, finite, positive points.

    Args:
        x: (m,) the swept parameter.
        y: (m,) the measured error.
        seed: (m,) seed of each point; the CI is a t-interval over the per-seed slopes. None means one seed.
        resolved: (m,) bool; False points (e.g. below the noise floor) are dropped before fitting.
        expected: the slope the theory predicts (none: no verdict).
        tol: the tolerance of the verdict.
        test: two_sided or upper_bound.
        confidence: the level of the slope's interval.
        log_x: fit log y against log x (a power law); False: against x (an exponential rate).
    """
    if (expected is None) != (tol is None):
        raise ValueError(f"expected, tol: give both or neither (got expected={expected!r}, tol={tol!r})")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: must be in (0, 1) (got {confidence!r})")
    if test not in TESTS:
        raise ValueError(f"test: must be one of {', '.join(TESTS)} (got {test!r})")
    lx, ly, g, keep = _prepare(x, y, seed, resolved, log_x)
    raw = dict(zip(lx.tolist(), np.asarray(x, dtype=np.float64).ravel()[keep].tolist(), strict=True))
    step_back = math.exp if log_x else float

    def back(v: float) -> float:  # the x value itself where there is one (exp(log(4096)) is not 4096)
        return raw.get(float(v), step_back(v))

    distinct = np.unique(lx)
    b = seed_slopes(lx, ly, g)
    base = dict(
        confidence=confidence,
        n_points=int(keep.sum()),
        n_dropped=int((~keep).sum()),
        n_seeds=int(b.size),
        expected=expected,
        tol=tol,
        test=test,
    )
    nan = math.nan
    if distinct.size < 2:
        verdict = None if expected is None else "insufficient data"
        return RateFit(nan, nan, nan, nan, ci_method="none", x_min=nan, x_max=nan, verdict=verdict, **base)
    if b.size >= 2:  # the mean of the replicates' slopes, and the intercept of the pooled points at that slope
        slope, lo, hi = t_interval(b, confidence)
        method = "seed-t"
    else:
        slope, lo, hi = float(np.polyfit(lx, ly, 1)[0]), -math.inf, math.inf
        method = "none"
    intercept = float(np.mean(ly - slope * lx))
    local = [s for a, c in zip(distinct[:-1], distinct[1:]) if (s := _slope_over(lx, ly, g, a, c, confidence, back))]
    halves = (None, None)
    if distinct.size >= 3:
        lower, upper = _halves(distinct)
        halves = (_slope_over(lx, ly, g, *lower, confidence, back), _slope_over(lx, ly, g, *upper, confidence, back))
    span = distinct[-1] - distinct[0] if log_x else abs(slope) * (distinct[-1] - distinct[0])
    enough = distinct.size >= 3 and span >= math.log(10) - 1e-12
    verdict, settle, needed = None, [], None
    if expected is not None:
        verdict = _verdict(test, lo, hi, expected, tol, enough, b.size)
        # the interval must clear the nearest edge of the band, on whichever side the slope is
        edge = (expected + tol - slope) if test == "upper_bound" else tol - abs(slope - expected)
        needed = seeds_needed(b, abs(edge), confidence)
        if verdict in ("inconsistent", "inconclusive") and _moving_towards(lx, ly, g, distinct, expected, confidence):
            verdict = "pre-asymptotic"
            step = distinct[-1] - distinct[-2]
            xs = np.asarray(x, dtype=np.float64).ravel()
            beyond = ~keep & np.isfinite(xs) & (xs > back(distinct[-1]))  # measured, but dropped (at the floor)
            settle = [] if beyond.any() else [back(distinct[-1] + k * step) for k in (1, 2)]
    return RateFit(
        slope,
        intercept,
        lo,
        hi,
        ci_method=method,
        x_min=back(distinct[0]),
        x_max=back(distinct[-1]),
        verdict=verdict,
        local=local,
        lower_half=halves[0],
        upper_half=halves[1],
        settle_at=settle,
        seeds_needed=needed,
        **base,
    )


def _verdict(test: str, lo: float, hi: float, expected: float, tol: float, enough: bool, n_seeds: int) -> str:
    if n_seeds < 2:
        return f"too few seeds ({n_seeds})"
    if not enough or not (math.isfinite(lo) and math.isfinite(hi)):
        return "insufficient data"
    if test == "upper_bound":
        if hi <= expected + tol:
            return "consistent"
        return "inconsistent" if lo > expected + tol else "inconclusive"
    if expected - tol <= lo and hi <= expected + tol:
        return "consistent"
    if hi < expected - tol or lo > expected + tol:
        return "inconsistent"
    return "inconclusive"


def _halves(distinct: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """The lower and upper halves of the x values (as (first, last)), sharing the middle one or two of them."""
    m = distinct.size
    return (distinct[0], distinct[m // 2]), (distinct[(m - 1) // 2], distinct[-1])


def _moving_towards(lx, ly, g, distinct, expected, confidence) -> bool:
    """Whether the upper-half slope differs from the lower-half one (paired over seeds) and is closer to expected."""
    if distinct.size < 3:
        return False
    (a, b), (c, d) = _halves(distinct)
    lows, highs = [], []
    for s in np.unique(g):
        m = g == s
        low, high = (m & (lx >= a) & (lx <= b)), (m & (lx >= c) & (lx <= d))
        if np.unique(lx[low]).size >= 2 and np.unique(lx[high]).size >= 2:
            lows.append(np.polyfit(lx[low], ly[low], 1)[0])
            highs.append(np.polyfit(lx[high], ly[high], 1)[0])
    diffs = np.array(highs) - np.array(lows)
    if len(diffs) < 2:
        return False
    _, lo, hi = t_interval(diffs, confidence)
    if not (lo > 0 or hi < 0):
        return False
    return abs(np.mean(highs) - expected) < abs(np.mean(lows) - expected)


def _by_level(x, y, level, seed, resolved):
    """Arrays of the points, the mask of the usable ones (finite, positive, resolved) and the levels they have."""
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    level, seed = np.asarray(level).ravel(), np.asarray(seed).ravel()
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if resolved is not None:
        keep &= np.asarray(resolved, dtype=bool).ravel()
    return x, y, level, seed, keep, sorted(set(level[keep].tolist()))


@dataclass(frozen=True)
class SlopeDifference:
    """slope(level_a) - slope(level_b) with a paired-over-seeds t interval."""

    level_a: object
    level_b: object
    diff: float
    ci_low: float
    ci_high: float
    n_seeds: int

    @property
    def excludes_zero(self) -> bool:
        return self.ci_low > 0 or self.ci_high < 0

    def as_dict(self) -> dict:
        return {**asdict(self), "excludes_zero": self.excludes_zero}


def compare_slopes(x, y, level, *, seed, resolved=None, confidence: float = 0.95) -> list[SlopeDifference]:
    """Pairwise slope differences between the levels of `level`, each with a paired t interval over seeds.

    Each seed gives one log-log slope per level (on its resolved points); the difference of two levels is
    averaged over the seeds both have, and the interval is Student's t on those per-seed differences (the
    seeds are shared across levels, so pairing removes their common noise). Intervals are Bonferroni-adjusted
    over the pairs, so 'some interval excludes 0' is a test at the stated confidence. Below 2 shared seeds the
    interval is infinite.
    """
    x, y, level, seed, keep, levels = _by_level(x, y, level, seed, resolved)
    slopes: dict[object, dict[object, float]] = {}
    for lv in levels:
        for s in set(seed[keep & (level == lv)].tolist()):
            m = keep & (level == lv) & (seed == s)
            if np.unique(x[m]).size >= 2:
                slopes.setdefault(lv, {})[s] = float(np.polyfit(np.log(x[m]), np.log(y[m]), 1)[0])
    pairs = [(a, b) for i, a in enumerate(levels) for b in levels[i + 1 :]]
    level_confidence = 1 - (1 - confidence) / max(1, len(pairs))
    out = []
    for a, b in pairs:
        common = sorted(set(slopes.get(a, {})) & set(slopes.get(b, {})))
        d = np.array([slopes[a][s] - slopes[b][s] for s in common])
        mean, lo, hi = t_interval(d, level_confidence)
        out.append(SlopeDifference(a, b, mean, lo, hi, int(d.size)))
    return out


@dataclass(frozen=True)
class Equivalence:
    """Whether y depends on a column: the slope in log x of the paired log-ratio log(y_c / y_c0) (runs paired by
    seed and x, so they share noise and data), its CI over seeds, the same on the upper half of the x range, and two
    verdicts with margin delta:

    - `verdict` (two-sided equivalence): 'independent' (CI within +/- delta), 'depends' (CI excludes 0 and so does
      the upper half's, with the same sign), else 'inconclusive';
    - `one_sided` (non-inferiority, what an upper bound with D in the constants only claims of an error y): 'not
      slower' (CI below +delta: level c's error falls at least as fast as the reference's, up to delta; faster is
      compatible), 'slower' (CI above +delta), else 'inconclusive';

    both 'too few seeds (n)' below 2. `seeds_needed` / `seeds_needed_one_sided`: the seeds a settled verdict (either
    way) needs at the current mean and per-seed spread (None: cannot be said)."""

    level: object
    reference: object
    slope: float
    ci_low: float
    ci_high: float
    upper_slope: float
    upper_ci_low: float
    upper_ci_high: float
    n_seeds: int
    delta: float
    verdict: str
    one_sided: str = ""
    seeds_needed: int | None = None
    seeds_needed_one_sided: int | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def equivalence(
    x, y, level, *, seed, delta: float, resolved=None, confidence: float = 0.95, reference=None
) -> list[Equivalence]:
    """One Equivalence per level of `level` against `reference` (default: its first level, sorted). The one-sided
    verdict uses the same interval (a 95% two-sided interval is a 97.5% one-sided bound: conservative)."""
    x, y, level, seed, keep, levels = _by_level(x, y, level, seed, resolved)
    if len(levels) < 2 or (reference is not None and reference not in levels):
        return []
    ref = levels[0] if reference is None else reference
    value = {(lv, s, xv): yv for lv, s, xv, yv in zip(level[keep], seed[keep], x[keep], y[keep])}
    mid = np.median(np.log(np.unique(x[keep])))
    out = []
    for lv in [lv for lv in levels if lv != ref]:
        full, upper = [], []
        for s in sorted(set(seed[keep].tolist())):
            pts = sorted(
                (xv, math.log(value[(lv, s, xv)] / value[(ref, s, xv)]))
                for (l2, s2, xv) in value
                if l2 == lv and s2 == s and (ref, s, xv) in value
            )
            lx = np.log([p[0] for p in pts])
            r = np.array([p[1] for p in pts])
            if np.unique(lx).size >= 2:
                full.append(np.polyfit(lx, r, 1)[0])
            top = lx >= mid
            if np.unique(lx[top]).size >= 2:
                upper.append(np.polyfit(lx[top], r[top], 1)[0])
        full = np.array(full)
        mean, lo, hi = t_interval(full, confidence)
        up, up_lo, up_hi = t_interval(np.array(upper), confidence)
        if len(full) < 2:
            verdict = one_sided = f"too few seeds ({len(full)})"
        else:
            if -delta <= lo and hi <= delta:
                verdict = "independent"
            elif (lo > 0 and up_lo > 0) or (hi < 0 and up_hi < 0):
                verdict = "depends"
            else:
                verdict = "inconclusive"
            one_sided = "not slower" if hi <= delta else "slower" if lo > delta else "inconclusive"
        out.append(
            Equivalence(
                lv,
                ref,
                mean,
                lo,
                hi,
                up,
                up_lo,
                up_hi,
                len(full),
                delta,
                verdict,
                one_sided,
                seeds_needed(full, abs(delta - abs(mean)), confidence),
                seeds_needed(full, abs(delta - mean), confidence),
            )
        )
    return out


@dataclass(frozen=True)
class Trend:
    """How a rate's slope changes across the levels of a column (e.g. the intrinsic dimension d): each level's slope
    with its CI over seeds, the differences of consecutive levels with Welch intervals (Bonferroni over the pairs:
    the levels' runs are separate experiments, not paired), and a verdict: 'flattens' (every difference > 0: the
    rate gets slower as the column grows), 'steepens' (every difference < 0), 'no monotone trend' (some difference
    excludes 0 with another sign or includes it), 'too few levels'."""

    column: str
    levels: list
    slopes: list[Slope]
    differences: list[SlopeDifference]
    verdict: str

    def as_dict(self) -> dict:
        return {
            "column": self.column,
            "levels": self.levels,
            "slopes": [asdict(s) for s in self.slopes],
            "differences": [d.as_dict() for d in self.differences],
            "verdict": self.verdict,
        }


def slope_trend(
    x, y, level, *, seed, column: str, resolved=None, confidence: float = 0.95, log_x: bool = True
) -> Trend:
    """Trend of the fitted slope of y against x across the sorted levels of `level` (see Trend)."""
    x, y, level, seed, keep, levels = _by_level(x, y, level, seed, resolved)
    per_level, slopes = {}, []
    for lv in levels:
        m = keep & (level == lv)
        lx = np.log(x[m]) if log_x else x[m]
        b = seed_slopes(lx, np.log(y[m]), seed[m])
        per_level[lv] = b
        mean, lo, hi = t_interval(b, confidence)
        slopes.append(Slope(float(x[m].min()), float(x[m].max()), mean, lo, hi, int(b.size)))
    pairs = list(zip(levels[:-1], levels[1:]))
    level_confidence = 1 - (1 - confidence) / max(1, len(pairs))
    diffs = [
        SlopeDifference(
            b, a, *_welch(per_level[b], per_level[a], level_confidence), min(per_level[a].size, per_level[b].size)
        )
        for a, b in pairs
    ]
    if len(levels) < 2:
        verdict = "too few levels"
    elif any(d.n_seeds < 2 for d in diffs):
        verdict = f"too few seeds ({min(d.n_seeds for d in diffs)})"
    elif all(d.ci_low > 0 for d in diffs):
        verdict = "flattens"
    elif all(d.ci_high < 0 for d in diffs):
        verdict = "steepens"
    else:
        verdict = "no monotone trend"
    return Trend(column, levels, slopes, diffs, verdict)


def _welch(a: np.ndarray, b: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """mean(a) - mean(b) with a Welch t-interval (unequal variances, Welch-Satterthwaite degrees of freedom)."""
    if a.size < 2 or b.size < 2:
        diff = float(a.mean() - b.mean()) if a.size and b.size else math.nan
        return diff, -math.inf, math.inf
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    diff, se = float(a.mean() - b.mean()), math.sqrt(va + vb)
    if se == 0:
        return diff, diff, diff
    dof = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = stats.t.ppf(0.5 + confidence / 2, dof) * se
    return diff, diff - half, diff + half


def auto_window(
    x, y, *, seed, resolved=None, tol: float | None = None, log_x: bool = True, confidence: float = 0.95
) -> tuple[float, float, str]:
    """(x_min, x_max, why): x_max is the largest x up to which the points are resolved in most seeds (above it the
    round-off or noise floor, not the quantity, sets the error); x_min the smallest x whose window (at least three x
    over a decade) has every local slope within tol (0.1 without one) of the window's fit, so that the fit is of the
    settled regime; where none has, the last decade, said so. With less than a decade the window is all of it."""
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    ok = np.isfinite(x) & np.isfinite(y) & (y > 0) & ((x > 0) if log_x else True)
    res = np.ones(x.shape, bool) if resolved is None else np.asarray(resolved, bool).ravel()
    xs = np.unique(x[ok])
    why = []
    top = xs.size
    for i, xv in enumerate(xs):
        if res[ok & (x == xv)].mean() < 0.5:
            top = i
            why.append(f"x_max = {xs[i - 1]:g}: from {xv:g} on most seeds are at the floor (not resolved)" if i else "")
            break
    xs = xs[:top]
    if xs.size < 3:
        return (
            float(xs[0]) if xs.size else math.nan,
            float(xs[-1]) if xs.size else math.nan,
            "; ".join(w for w in [*why, "fewer than 3 resolved x: the whole range"] if w),
        )
    seeds = np.zeros(x.shape) if seed is None else np.asarray(seed).ravel()
    band = 0.1 if tol is None else tol
    scale = np.log(xs) if log_x else xs
    # windows of at least three x spanning a decade (what a verdict needs), from the widest to the shortest
    starts = [j for j in range(xs.size - 2) if not log_x or scale[-1] - scale[j] >= math.log(10) - 1e-12]
    if not starts:
        why.append("less than a decade of resolved x: the whole range")
        return float(xs[0]), float(xs[-1]), "; ".join(w for w in why if w)
    for j in starts:
        m = ok & res & (x >= xs[j]) & (x <= xs[-1])
        fit = fit_rate(x[m], y[m], seed=seeds[m], log_x=log_x, confidence=confidence)
        if all(abs(s.slope - fit.slope) <= band for s in fit.local):
            why.append(
                f"x_min = {xs[j]:g}: from there every local slope is within {band:g} of the window's fit "
                f"{fit.slope:+.3f}"
            )
            return float(xs[j]), float(xs[-1]), "; ".join(w for w in why if w)
    why.append(f"x_min = {xs[starts[-1]]:g}: the local slopes never settle; the last decade")
    return float(xs[starts[-1]]), float(xs[-1]), "; ".join(w for w in why if w)
