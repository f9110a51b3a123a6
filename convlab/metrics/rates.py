"""Fitted convergence rates: log-log least squares with a bootstrap-over-seeds CI and a verdict.

The CI is a studentized (bootstrap-t) cluster bootstrap: seeds are resampled with replacement and each
refit is studentized by its cluster-robust standard error. A plain percentile bootstrap over 5 seeds covers
a 95% interval only about 80% of the time; bootstrap-t is close to nominal from 5 seeds on
(tests/metrics/test_rates.py measures the coverage). With a single seed the CI is the classical OLS t-interval.

With log_x=False the fit is log y = intercept + slope x (exponential rates, y ~ C e^{slope x}); 'a decade'
then means a decade of the fitted y.

Verdict against an expected slope e with tolerance tol (band [e - tol, e + tol]):
'consistent' when the whole CI lies in the band, 'inconsistent' when the CI misses the band,
'inconclusive' otherwise, and 'insufficient data' with fewer than 3 resolved x values or less than a
decade between the smallest and largest.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class RateFit:
    """log y = intercept + slope log x, with a CI for the slope and a verdict."""

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
            s += f" vs expected {self.expected:+.3f} +/- {self.tol:.3f}: {self.verdict}"
        return s


def fit_rate(
    x,
    y,
    *,
    seed=None,
    resolved=None,
    expected: float | None = None,
    tol: float | None = None,
    confidence: float = 0.95,
    n_boot: int = 2000,
    random_state: int = 0,
    log_x: bool = True,
) -> RateFit:
    """Fit y ~ C x^slope (log_x) or y ~ C e^{slope x} on the resolved, finite, positive points.

    Args:
        x, y: (m,) swept parameter and measured error.
        seed: (m,) seed of each point; the CI resamples whole seeds. None means one seed.
        resolved: (m,) bool; False points (e.g. below the noise floor) are dropped before fitting.
        expected, tol: the slope the theory predicts and the tolerance of the verdict.
        random_state: seed of the bootstrap's own resampling.
    """
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
    if (expected is None) != (tol is None):
        raise ValueError(f"expected, tol: give both or neither (got expected={expected!r}, tol={tol!r})")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: must be in (0, 1) (got {confidence!r})")
    lx = np.log(x[keep]) if log_x else x[keep]
    ly, g = np.log(y[keep]), np.unique(groups[keep], return_inverse=True)[1]
    n_seeds = int(g.max()) + 1 if g.size else 0
    distinct = np.unique(lx)
    base = dict(
        confidence=confidence,
        n_points=int(keep.sum()),
        n_dropped=int((~keep).sum()),
        n_seeds=n_seeds,
        expected=expected,
        tol=tol,
    )
    if distinct.size < 2:
        nan = math.nan
        return RateFit(
            nan,
            nan,
            nan,
            nan,
            ci_method="none",
            x_min=nan,
            x_max=nan,
            verdict=_verdict(nan, nan, expected, tol, False),
            **base,
        )
    X = np.stack([lx, np.ones_like(lx)], 1)
    beta = np.linalg.lstsq(X, ly, rcond=None)[0]
    if n_seeds >= 2:
        lo, hi = _seed_bootstrap_t(X, ly, g, n_seeds, beta, confidence, n_boot, random_state)
        method = "seed-bootstrap-t"
    else:
        lo, hi = _ols_t(X, ly, beta, confidence)
        method = "ols-t"
    span = distinct[-1] - distinct[0] if log_x else abs(beta[0]) * (distinct[-1] - distinct[0])
    enough = distinct.size >= 3 and span >= math.log(10) - 1e-12
    back = math.exp if log_x else float
    return RateFit(
        float(beta[0]),
        float(beta[1]),
        float(lo),
        float(hi),
        ci_method=method,
        x_min=float(back(distinct[0])),
        x_max=float(back(distinct[-1])),
        verdict=_verdict(lo, hi, expected, tol, enough),
        **base,
    )


def _verdict(lo: float, hi: float, expected, tol, enough: bool) -> str | None:
    if expected is None:
        return None
    if not enough or not (math.isfinite(lo) and math.isfinite(hi)):
        return "insufficient data"
    if expected - tol <= lo and hi <= expected + tol:
        return "consistent"
    if hi < expected - tol or lo > expected + tol:
        return "inconsistent"
    return "inconclusive"


def _ols_t(X: np.ndarray, ly: np.ndarray, beta: np.ndarray, confidence: float) -> tuple[float, float]:
    m = ly.size
    if m <= 2:
        return -math.inf, math.inf
    resid = ly - X @ beta
    cov = (resid @ resid / (m - 2)) * np.linalg.inv(X.T @ X)
    half = stats.t.ppf(0.5 + confidence / 2, m - 2) * math.sqrt(cov[0, 0])
    return beta[0] - half, beta[0] + half


def _seed_bootstrap_t(X, ly, g, G, beta, confidence, n_boot, random_state) -> tuple[float, float]:
    """Bootstrap-t over seeds, vectorised through per-seed sufficient statistics X_g'X_g and X_g'y_g."""
    XtX = np.zeros((G, 2, 2))
    Xty = np.zeros((G, 2))
    np.add.at(XtX, g, X[:, :, None] * X[:, None, :])
    np.add.at(Xty, g, X * ly[:, None])

    def fit_and_se(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Slopes and cluster-robust SEs (small-sample factor G/(G-1)) for (B, G) cluster counts."""
        A = np.einsum("bg,gij->bij", counts, XtX)
        det = A[:, 0, 0] * A[:, 1, 1] - A[:, 0, 1] * A[:, 1, 0]
        ok = np.abs(det) > 1e-12 * np.abs(A[:, 0, 0] * A[:, 1, 1]).clip(1e-300)
        A_inv = np.linalg.inv(np.where(ok[:, None, None], A, np.eye(2)))
        b = np.einsum("bij,bj->bi", A_inv, np.einsum("bg,gi->bi", counts, Xty))
        score = Xty[None] - np.einsum("gij,bj->bgi", XtX, b)  # X_g'(y_g - X_g b)
        meat = np.einsum("bg,bgi,bgj->bij", counts, score, score)
        V = np.einsum("bij,bjk,blk->bil", A_inv, meat, A_inv) * G / (G - 1)
        se = np.sqrt(np.clip(V[:, 0, 0], 0, None))
        return np.where(ok, b[:, 0], np.nan), se

    _, se_hat = fit_and_se(np.ones((1, G)))
    rng = np.random.default_rng(random_state)
    counts = rng.multinomial(G, np.full(G, 1 / G), size=n_boot).astype(np.float64)
    slopes, se = fit_and_se(counts)
    valid = np.isfinite(slopes) & (se > 1e-12 * max(abs(beta[0]), 1.0))
    if se_hat[0] <= 0 or valid.sum() < 10:
        return _ols_t(X, ly, beta, confidence)
    t_star = (slopes[valid] - beta[0]) / se[valid]
    q_lo, q_hi = np.quantile(t_star, [0.5 - confidence / 2, 0.5 + confidence / 2])
    return beta[0] - q_hi * se_hat[0], beta[0] - q_lo * se_hat[0]


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
    over the pairs, so 'some interval excludes 0' is a test at the stated confidence.
    """
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    level, seed = np.asarray(level).ravel(), np.asarray(seed).ravel()
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if resolved is not None:
        keep &= np.asarray(resolved, dtype=bool).ravel()
    levels = sorted(set(level[keep].tolist()))
    slopes: dict[object, dict[object, float]] = {}
    for lv in levels:
        for s in set(seed[keep & (level == lv)].tolist()):
            m = keep & (level == lv) & (seed == s)
            if np.unique(x[m]).size >= 2:
                slopes.setdefault(lv, {})[s] = float(np.polyfit(np.log(x[m]), np.log(y[m]), 1)[0])
    pairs = [(a, b) for i, a in enumerate(levels) for b in levels[i + 1 :]]
    alpha = (1 - confidence) / max(1, len(pairs))
    out = []
    for a, b in pairs:
        common = sorted(set(slopes.get(a, {})) & set(slopes.get(b, {})))
        d = np.array([slopes[a][s] - slopes[b][s] for s in common])
        if d.size < 2:
            out.append(SlopeDifference(a, b, float(d.mean()) if d.size else math.nan, -math.inf, math.inf, int(d.size)))
            continue
        half = stats.t.ppf(1 - alpha / 2, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
        out.append(SlopeDifference(a, b, float(d.mean()), float(d.mean() - half), float(d.mean() + half), int(d.size)))
    return out
