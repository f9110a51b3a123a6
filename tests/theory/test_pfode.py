"""The OU probability-flow ODE (seed 002): the exact score against an independent mixture, the declared
orders of both steps, the exponential integrator's exactness, the Hessian sandwich by autograd, and the
pf_ode / log_concavity run kinds against closed forms."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from convlab.fields import ExactField
from convlab.interpolants import VP
from convlab.metrics import coupled_rms
from convlab.pfode import (OU_STEPS, log_concavity_bounds, mixture_radius_and_std, neg_hessian_log_density, ou_score,
                           solve_pf_ode, switch_time)
from convlab.runs import run_log_concavity, run_pf_ode
from convlab.solvers import reference_flow
from convlab.targets import GaussianMixture, make_target

from tests.strategies import mixtures

F64 = torch.float64


@st.composite
def isotropic_mixtures(draw, max_K=4, max_D=3, R_min=0.2, R_max=3.0, s_min=0.2, s_max=1.5):
    """Mixtures of N(mu_k, s^2 I) with one shared s, the setting of the sandwich."""
    seed = draw(st.integers(0, 2**31 - 1))
    K, D = draw(st.integers(2, max_K)), draw(st.integers(1, max_D))
    rng = np.random.default_rng(seed)
    R, s = draw(st.floats(R_min, R_max)), draw(st.floats(s_min, s_max))
    means = rng.standard_normal((K, D))
    means = R * means / np.linalg.norm(means, axis=1, keepdims=True)
    return GaussianMixture(rng.dirichlet(np.full(K, 2.0)), means, np.full(K, s * s))


@settings(max_examples=10)
@given(mixtures(max_D=3), st.floats(0.05, 3.0))
def test_ou_score_is_the_score_of_the_ou_marginal(target, s):
    """p_s of the forward OU process is the mixture with means e^{-s} mu_k and covariances e^{-2s} Sigma_k +
    (1 - e^{-2s}) I: its log-density gradient (autograd) is ou_score."""
    covs = math.exp(-2 * s) * target.cov.dense() + (-math.expm1(-2 * s)) * torch.eye(target.ambient_dim, dtype=F64)
    p_s = GaussianMixture(target.weights.numpy(), math.exp(-s) * target.means.numpy(), covs.numpy())
    y = torch.randn(16, target.ambient_dim, generator=torch.Generator().manual_seed(0), dtype=F64).requires_grad_(True)
    (grad,) = torch.autograd.grad(p_s.log_prob(y).sum(), y)
    assert torch.allclose(ou_score(target, S=4.0)(s, y.detach()), grad, rtol=1e-9, atol=1e-10)


@settings(max_examples=4)
@given(isotropic_mixtures(max_K=3, max_D=2, R_min=0.5, R_max=2.0, s_min=0.4, s_max=0.8), st.sampled_from(sorted(OU_STEPS)))
def test_declared_order_is_measured(target, method):
    """Coupled error against the exact flow over K = 128..512 has slope -order (diffrax-style). The targets stay
    away from N(0, I), where the score is linear and both steps are nearly exact (errors at round-off), and from
    large R / s, where the score's Lipschitz constant (up to R^2 / s^4) pushes the asymptotic regime to smaller h
    (studies/pf_ode_step.yaml measures R / s = 10 at K up to 1024)."""
    S = 4.0
    y0 = torch.randn(16, target.ambient_dim, generator=torch.Generator().manual_seed(1), dtype=F64)
    exact = reference_flow(ExactField(target, VP(S)), y0, T=1.0, method="rk4", steps=1024)
    Ks = [128, 256, 512]
    errs = [coupled_rms(solve_pf_ode(ou_score(target, S), y0, S=S, K=K, method=method), exact).rms for K in Ks]
    slope = np.polyfit(np.log(Ks), np.log(errs), 1)[0]
    assert abs(-slope - OU_STEPS[method].order) < 0.15, (method, errs)


def test_exponential_step_is_exact_for_a_constant_score():
    """dY/dtau = Y + c has the solution e^tau Y0 + (e^tau - 1) c: one exp step of any size hits it, euler does not."""
    c = torch.tensor([[0.3, -1.2]], dtype=F64)
    y0 = torch.tensor([[1.0, 2.0]], dtype=F64)
    score = lambda s, y: c.expand_as(y)  # noqa: E731
    exact = math.exp(2.0) * y0 + math.expm1(2.0) * c
    assert torch.allclose(solve_pf_ode(score, y0, S=2.0, K=1, method="exp"), exact, rtol=1e-14)
    assert not torch.allclose(solve_pf_ode(score, y0, S=2.0, K=1, method="euler"), exact, rtol=1e-2)


@settings(max_examples=10)
@given(isotropic_mixtures(), st.floats(0.02, 3.0))
def test_hessian_sandwich_holds_at_random_points(target, t):
    """Autograd Hessian of log p_t at random points: eigenvalues of -Hess inside the bounds of THEORY.md 6,
    and Tweedie's identity (neg_hessian_log_density) gives the same matrix."""
    R, s = mixture_radius_and_std(target)
    lower, upper = log_concavity_bounds(R, s, t)
    vp = VP(1.0)
    g = torch.Generator().manual_seed(2)
    y = 2 * torch.randn(6, target.ambient_dim, generator=g, dtype=F64)
    H = torch.stack([torch.autograd.functional.hessian(lambda v: target.log_density(1.0 - t, v[None], vp)[0], row) for row in y])
    eig = torch.linalg.eigvalsh(-H)
    tol = 1e-8 * max(1.0, abs(lower), upper)
    assert eig.min() >= lower - tol and eig.max() <= upper + tol
    assert torch.allclose(neg_hessian_log_density(target, t, y), -H, rtol=1e-7, atol=1e-7 * upper)


def test_switch_time_is_where_the_lower_bound_turns_positive():
    R, s = 3.0, 0.5
    t_star = switch_time(R, s)
    assert log_concavity_bounds(R, s, t_star)[0] == pytest.approx(0.0, abs=1e-12)
    assert log_concavity_bounds(R, s, 0.9 * t_star)[0] < 0 < log_concavity_bounds(R, s, 1.1 * t_star)[0]
    assert switch_time(0.3, 0.5) == 0.0


def _scalar_gaussian_w2(D, mean, std, S, K, method):
    """Independent closed form: per coordinate the sampler is a scalar affine map y -> A y + c of N(0, 1)."""
    A, c, h = 1.0, 0.0, S / K
    for k in range(K):
        s = S - k * h
        var = math.exp(-2 * s) * std**2 - math.expm1(-2 * s)
        # score(y) = -(y - e^{-s} mean) / var = p y + q
        p, q = -1 / var, math.exp(-s) * mean / var
        if method == "euler":
            A, c = A + h * (A + p * A), c + h * (c + p * c + q)
        else:
            A, c = math.exp(h) * A + math.expm1(h) * p * A, math.exp(h) * c + math.expm1(h) * (p * c + q)
    return math.sqrt(D * ((c - mean) ** 2 + (A - std) ** 2))


@pytest.mark.parametrize("method", ["euler", "exp"])
def test_exact_w2_on_a_gaussian_matches_the_scalar_recursion(method):
    cfg = {"target": {"name": "gaussian", "D": 3, "mean": 1.0, "std": 0.5}, "S": 4.0, "K": 16, "method": method, "n": 500,
           "reference": {"steps": 256}}
    rec = run_pf_ode(cfg, device="cpu")
    assert rec.status == "ok"
    assert rec.metrics["w2_exact"] == pytest.approx(_scalar_gaussian_w2(3, 1.0, 0.5, 4.0, 16, method), rel=1e-9)
    # The coupled estimate bounds the exact W2 from above (up to its sampling noise).
    assert rec.metrics["w2_exact"] <= rec.metrics["w2_ub"] * 1.1


def test_score_error_effect_is_exactly_linear_for_an_affine_sampler():
    base = {"target": {"name": "gaussian", "D": 2, "mean": 1.0, "std": 0.5}, "S": 4.0, "K": 16, "n": 200, "reference": {"steps": 128}}
    effect = [run_pf_ode({**base, "score_error": {"kind": "constant", "eps": e}}, device="cpu").metrics["score_error_effect"] for e in (0.01, 0.04)]
    assert effect[1] / effect[0] == pytest.approx(4.0, rel=1e-9)


def test_initialisation_error_decays_like_e_to_the_minus_S():
    base = {"target": {"name": "ring8", "radius": 2.0, "std": 0.5}, "K": 4, "n": 300, "reference": {"steps": 256}}
    e = [run_pf_ode({**base, "S": S}, device="cpu").metrics["init_error"] for S in (4.0, 6.0)]
    assert math.log(e[0] / e[1]) / 2.0 == pytest.approx(1.0, abs=0.1)


def test_log_concavity_run_reports_the_sandwich():
    rec = run_log_concavity({"target": {"name": "ring8", "radius": 2.0, "std": 0.5}, "t": 0.3, "n": 200}, device="cpu")
    m = rec.metrics
    assert rec.status == "ok" and m["sandwich_holds"] and not m["strongly_log_concave"]
    assert m["bound_lower"] <= m["hess_min"] < 0 < m["hess_max"] <= m["bound_upper"]
    assert m["t_star"] == pytest.approx(0.5 * math.log1p(4.0 - 0.25))


def test_log_concavity_needs_one_shared_isotropic_variance():
    rec = run_log_concavity({"target": {"name": "random_mixture", "D": 2, "cov": "full"}, "t": 0.3, "n": 10}, device="cpu")
    assert rec.status == "failed" and "isotropic" in rec.reason
    with pytest.raises(ValueError, match="shared variance"):
        mixture_radius_and_std(make_target({"name": "random_mixture", "D": 2, "cov": "iso"}))
