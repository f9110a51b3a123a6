"""fit_rate recovers planted slopes, its CI covers at the nominal rate, and its verdicts follow the rules."""

import numpy as np
import pytest

from convlab.metrics import fit_rate

X = 2.0 ** np.arange(1, 9)  # over two decades


def planted(rng, slope, seeds, noise=0.1, seed_slope_sd=0.0):
    x = np.tile(X, seeds)
    s = np.repeat(np.arange(seeds), X.size)
    per_seed = slope + seed_slope_sd * rng.standard_normal(seeds)
    y = 2.5 * x ** per_seed[s] * np.exp(noise * rng.standard_normal(x.size))
    return x, y, s


def test_recovers_an_exact_power_law():
    fit = fit_rate(X, 3 * X**-1.5, expected=-1.5, tol=0.1)
    assert fit.slope == pytest.approx(-1.5, abs=1e-12) and fit.prefactor == pytest.approx(3)
    assert fit.verdict == "consistent" and fit.ci_method == "ols-t"


@pytest.mark.parametrize("seed_slope_sd", [0.0, 0.05])
def test_seed_bootstrap_ci_covers_the_planted_slope_at_the_nominal_rate(seed_slope_sd):
    rng = np.random.default_rng(1)
    reps, hits = 300, 0
    for r in range(reps):
        fit = fit_rate(
            *planted(rng, -1.0, 8, seed_slope_sd=seed_slope_sd)[:2], seed=planted_seed(8), n_boot=500, random_state=r
        )
        hits += fit.ci_low <= -1.0 <= fit.ci_high
    assert fit.ci_method == "seed-bootstrap-t"
    assert 0.90 <= hits / reps <= 0.985


def planted_seed(seeds):
    return np.repeat(np.arange(seeds), X.size)


def test_unresolved_and_bad_points_are_dropped():
    rng = np.random.default_rng(2)
    x, y, s = planted(rng, -1.0, 5)
    floor = 0.05
    y_floored = np.maximum(y, floor)  # what a noise floor does to the tail
    resolved = y_floored > 2 * floor
    naive = fit_rate(x, y_floored, seed=s)
    honest = fit_rate(x, y_floored, seed=s, resolved=resolved)
    assert abs(honest.slope + 1) < 0.1 < abs(naive.slope + 1)
    assert honest.n_dropped == (~resolved).sum()
    y_bad = y.copy()
    y_bad[:3] = [np.nan, -1.0, 0.0]
    assert fit_rate(x, y_bad, seed=s).n_dropped == 3


def test_verdicts():
    rng = np.random.default_rng(3)
    x, y, s = planted(rng, -1.0, 6, noise=0.02)
    assert fit_rate(x, y, seed=s, expected=-1.0, tol=0.1).verdict == "consistent"
    assert fit_rate(x, y, seed=s, expected=-2.0, tol=0.1).verdict == "inconsistent"
    x2, y2, s2 = planted(rng, -1.0, 6, noise=0.6)
    wide = fit_rate(x2, y2, seed=s2, expected=-1.0, tol=0.02)  # a CI that meets the band but is not inside it
    assert wide.ci_low <= -0.98 and wide.ci_high >= -1.02 and not (-1.02 <= wide.ci_low and wide.ci_high <= -0.98)
    assert wide.verdict == "inconclusive"
    short = x < 8  # 2, 4: under a decade and fewer than 3 values
    assert fit_rate(x[short], y[short], seed=s[short], expected=-1.0, tol=0.1).verdict == "insufficient data"
    assert fit_rate(x, y, seed=s).verdict is None


def test_bad_arguments():
    with pytest.raises(ValueError, match="give both or neither"):
        fit_rate(X, X, expected=-1.0)
    with pytest.raises(ValueError, match="equal lengths"):
        fit_rate(X, X[:-1])
    with pytest.raises(ValueError, match=r"confidence: must be in \(0, 1\)"):
        fit_rate(X, X, confidence=95)


def test_exponential_rate_fit_on_a_linear_x_scale():
    """log_x=False fits log y = c + slope x: exact data C e^{-x} gives slope -1 and C, with the decade rule
    applied to the fitted y (x in [1, 2] spans less than a decade of y = e^{-x})."""
    x = np.tile(np.arange(1.0, 8.0), 5)
    seed = np.repeat(np.arange(5), 7)
    y = 3.0 * np.exp(-x) * np.exp(0.01 * np.random.default_rng(0).standard_normal(x.size))
    fit = fit_rate(x, y, seed=seed, expected=-1.0, tol=0.05, log_x=False)
    assert fit.slope == pytest.approx(-1.0, abs=0.01) and fit.prefactor == pytest.approx(3.0, rel=0.05)
    assert fit.verdict == "consistent" and fit.x_min == 1.0 and fit.x_max == 7.0
    short = fit_rate(x[x <= 2], y[x <= 2], seed=seed[x <= 2], expected=-1.0, tol=0.05, log_x=False)
    assert short.verdict == "insufficient data"
