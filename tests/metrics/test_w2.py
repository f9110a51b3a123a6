"""W2 estimators against independent routes: Bures vs POT, emd vs assignment, 1-D quantile formula,
bounds (coupled >= exact >= sliced, exact^2 >= empirical Bures), floors and resolution flags."""

import math

import numpy as np
import ot
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from convlab.metrics import (
    coupled_rms,
    effective_dim,
    empirical_gaussian_w2_sq,
    exact_w2,
    exact_w2_sq,
    gaussian_w2_sq,
    noise_floor_w2,
    sampled_w2,
    sliced_w2,
)
from convlab.targets import ring8, sphere_atoms


def _gauss(rng, n, m, S):
    return rng.multivariate_normal(m, S, size=n)


def _gaussian_pair(D, seed):
    rng = np.random.default_rng(seed)
    A, B = rng.standard_normal((D, D)), rng.standard_normal((D, D))
    return rng, np.zeros(D), A @ A.T / D + 0.2 * np.eye(D), np.full(D, 1.0), B @ B.T / D + 0.5 * np.eye(D)


@pytest.mark.parametrize("D", [1, 2])
def test_bures_matches_pot_on_large_independent_gaussian_samples(D):
    rng, m1, S1, m2, S2 = _gaussian_pair(D, D)
    est = exact_w2_sq(_gauss(rng, 3000, m1, S1), _gauss(rng, 3000, m2, S2))
    # the empirical W2^2 is biased up by the sampling floor, small beside W2^2 in one or two dimensions
    assert est == pytest.approx(gaussian_w2_sq(m1, S1, m2, S2), rel=0.04)


@pytest.mark.parametrize("D", [2, 5, 20])
def test_bures_matches_pot_through_the_optimal_linear_map(D):
    """y_i = T(x_i) with the Gaussian OT map T(x) = m2 + A (x - m1), A = S1^-1/2 (S1^1/2 S2 S1^1/2)^1/2 S1^-1/2.
    T is the gradient of a convex function, so the identity pairing is optimal for the two samples: POT must
    return mean |x_i - T(x_i)|^2 exactly, and that mean estimates the Bures value with ordinary n^-1/2 error."""
    rng, m1, S1, m2, S2 = _gaussian_pair(D, D)
    r1 = _sqrtm(S1)
    r1_inv = np.linalg.inv(r1)
    A = r1_inv @ _sqrtm(r1 @ S2 @ r1) @ r1_inv
    x = _gauss(rng, 2000, m1, S1)
    y = m2 + (x - m1) @ A.T
    d2 = ((x - y) ** 2).sum(1)
    assert exact_w2_sq(x, y) == pytest.approx(d2.mean(), rel=1e-9)
    assert abs(d2.mean() - gaussian_w2_sq(m1, S1, m2, S2)) < 4 * d2.std() / np.sqrt(d2.size)


def _sqrtm(S):
    lam, U = np.linalg.eigh(S)
    return (U * np.sqrt(lam)) @ U.T


def test_bures_closed_forms():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2 ; commuting: sum (sqrt a - sqrt b)^2
    assert gaussian_w2_sq([0.0], [[4.0]], [1.0], [[1.0]]) == pytest.approx(1 + 1)
    assert gaussian_w2_sq(
        np.zeros(3), np.diag([1.0, 4.0, 9.0]), np.zeros(3), np.diag([4.0, 4.0, 1.0])
    ) == pytest.approx(1 + 0 + 4)
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 4))
    S = A @ A.T
    assert gaussian_w2_sq(np.ones(4), S, np.ones(4), S) == pytest.approx(0, abs=1e-9)


@pytest.mark.parametrize("D, shape", [(2, "gauss"), (10, "gauss"), (50, "gauss"), (30, "manifold")])
def test_emd_and_assignment_agree(D, shape):
    rng = np.random.default_rng(D)
    if shape == "gauss":
        x, y = rng.standard_normal((400, D)), rng.standard_normal((400, D)) + 0.2
    else:
        t = sphere_atoms(d=2, D=D, n_atoms=400, seed=1)
        x, y = t.sample(400, generator=1, dtype=torch.float64), t.sample(400, generator=2, dtype=torch.float64)
    emd, lsa, auto = (exact_w2_sq(x, y, method=m) for m in ("emd", "lsa", "auto"))
    assert abs(emd - lsa) <= 1e-9 * max(emd, 1e-300)
    assert auto == pytest.approx(emd, rel=1e-9)


def test_matches_plain_pot_and_the_1d_quantile_formula():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((300, 3)), rng.standard_normal((300, 3))
    assert exact_w2_sq(x, y) == pytest.approx(ot.emd2([], [], ot.dist(x, y), numItermax=10**7), rel=1e-10)
    # unequal sizes in 1-D: POT's sort-based closed form, an independent route
    a, b = rng.standard_normal(7), rng.standard_normal(5) + 1
    assert exact_w2_sq(a, b) == pytest.approx(float(ot.wasserstein_1d(a, b, p=2)), rel=1e-10)


def test_simplex_that_stops_early_is_finished_by_the_assignment_solver():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((200, 2)), rng.standard_normal((200, 2))
    assert exact_w2_sq(x, y, method="emd", num_iter_max=10) == pytest.approx(exact_w2_sq(x, y, method="lsa"), rel=1e-12)
    with pytest.raises(RuntimeError, match="did not converge"):
        exact_w2_sq(x, y[:150], method="emd", num_iter_max=10)
    with pytest.raises(ValueError, match="'lsa' needs equal sample sizes"):
        exact_w2_sq(x, y[:150], method="lsa")


@settings(max_examples=30)
@given(seed=st.integers(0, 10**6), n=st.integers(2, 40), D=st.integers(1, 6), shift=st.floats(0, 3))
def test_coupled_bounds_exact_bounds_sliced_and_bures(seed, n, D, shift):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, D))
    y = x + shift + 0.5 * rng.standard_normal((n, D))  # y_i paired with x_i
    exact = exact_w2(x, y)
    assert coupled_rms(x, y).rms >= exact - 1e-12
    assert sliced_w2(x, y, n_projections=64, seed=seed) <= exact + 1e-12
    assert empirical_gaussian_w2_sq(x, y) <= exact**2 + 1e-9


def test_coupled_rms_interval_covers_at_the_nominal_rate():
    rng = np.random.default_rng(0)
    truth = math.sqrt(3 * 1.0)  # e = x - y ~ N(0, I_3): E|e|^2 = 3
    hits = 0
    for _ in range(400):
        e = rng.standard_normal((200, 3))
        ce = coupled_rms(e, np.zeros_like(e))
        hits += ce.ci_low <= truth <= ce.ci_high
    assert 0.91 <= hits / 400 <= 0.985


def test_noise_floor_falls_with_n_and_flags_resolution():
    target = ring8()
    f_small, f_big = noise_floor_w2(target, 100, generator=0), noise_floor_w2(target, 1600, generator=0)
    assert f_big.mean < f_small.mean and len(f_small.values) == 3
    same = sampled_w2(target.sample(400, generator=5, dtype=torch.float64), target, generator=1)
    assert not same.resolved and same.w2 < 2 * same.floor
    shifted = sampled_w2(target.sample(400, generator=5, dtype=torch.float64) + 2.0, target, generator=1)
    assert shifted.resolved and shifted.w2 > 2.5


def test_effective_dim():
    rng = np.random.default_rng(0)
    assert effective_dim(rng.standard_normal((2000, 10)), rng.standard_normal((2000, 10))) == pytest.approx(
        10, rel=0.05
    )
    flat = np.zeros((1000, 10))
    flat[:, 0] = rng.standard_normal(1000)
    assert effective_dim(flat, flat) == pytest.approx(1.0)


def test_early_stopping_bound_is_exact_for_one_gaussian_and_scales_right():
    from convlab.interpolants import as_interpolant
    from convlab.metrics import early_stopping_w2_bound
    from convlab.targets import GaussianMixture

    S = np.array([[1.0, 0.3], [0.3, 0.5]])
    m = np.array([1.0, 2.0])
    g = GaussianMixture([1.0], [m], [S])
    ip = as_interpolant("follmer")
    for T in (0.5, 0.9, 0.999):
        a, b = ip.a(T), ip.b(T)
        assert early_stopping_w2_bound(g, ip, T) ** 2 == pytest.approx(
            gaussian_w2_sq(b * m, a * a * np.eye(2) + b * b * S, m, S), rel=1e-10
        )
    # atoms (s = 0): O(sqrt(1 - T)); smoothed (s > 0): O(1 - T)
    eps = np.array([1e-3, 1e-4])
    atoms = [early_stopping_w2_bound(sphere_atoms(d=2, D=5, n_atoms=64), "follmer", 1 - e) for e in eps]
    smooth = [early_stopping_w2_bound(sphere_atoms(d=2, D=5, s=0.1, n_atoms=64), "follmer", 1 - e) for e in eps]
    assert np.log(atoms[0] / atoms[1]) / np.log(10) == pytest.approx(0.5, abs=0.05)
    assert np.log(smooth[0] / smooth[1]) / np.log(10) == pytest.approx(1.0, abs=0.05)


def test_coupled_error_reports_the_tail_of_the_per_path_errors():
    """99 paths off by 1 and one off by 10: the rms is carried by the one path (100 of 199 in the mean square),
    the median path is off by 1; equal errors put 1% of the mean square in the top 1% of paths."""
    x = np.zeros((100, 2))
    y = np.zeros((100, 2))
    y[:, 0] = 1.0
    y[7, 0] = 10.0
    err = coupled_rms(x, y)
    assert err.rms == pytest.approx(np.sqrt(199 / 100)) and err.median == 1.0 and err.max == 10.0
    assert err.top1_share == pytest.approx(100 / 199) and err.q90 == 1.0
    even = coupled_rms(x, np.ones((100, 2)))
    assert even.top1_share == pytest.approx(0.01) and even.median == even.max == pytest.approx(np.sqrt(2))


def _ring_pair(n):
    from convlab.targets import make_target

    target = make_target({"name": "ring8"})
    g = torch.Generator().manual_seed(3)
    return target.sample(n, generator=g, dtype=torch.float64), 1.05 * target.sample(n, generator=g, dtype=torch.float64)


def test_sinkhorn_w2_flags_what_epsilon_scaling_leaves_unconverged():
    """geomloss's epsilon-scaling ends after one iteration at the final blur: at scaling 0.9 the plan of its
    potentials misses the marginals by tens of percent, and the check says so (benchmarks/bench_sinkhorn.py)."""
    from convlab.metrics.w2 import sinkhorn_w2

    quick = sinkhorn_w2(*_ring_pair(60), blur=0.05, scaling=0.9)
    assert not quick.converged and quick.marginal_error > 0.05


@pytest.mark.slow
def test_sinkhorn_w2_run_to_convergence_is_the_exact_w2():
    """Run to convergence (scaling 0.9999: ~1e5 iterations) on a small sample whose spacing is far above the blur,
    the debiased value is the exact W2 (measured: 7e-5 relative)."""
    from convlab.metrics.w2 import sinkhorn_w2

    x, y = _ring_pair(60)
    slow = sinkhorn_w2(x, y, blur=0.05, scaling=0.9999)
    assert slow.converged, slow.marginal_error
    assert slow.w2 == pytest.approx(exact_w2(x, y), rel=1e-4)
