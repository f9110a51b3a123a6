"""The OU probability-flow ODE (arXiv 2510.17608): the vp score against an independent OU marginal, the declared
orders of its two steps (euler and exp_score on the vp field), the exponential integrator's exactness and its
identity with the OU step, the Hessian sandwich by autograd, and the pf_ode / log_concavity run kinds against closed
forms."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from convlab.fields import ExactField, PerturbedField
from convlab.interpolants import VP
from convlab.metrics import coupled_rms
from convlab.runs import RUN_KINDS
from convlab.solvers import SOLVERS, Reference, integrate, reference_flow, time_grid
from convlab.targets import GaussianMixture, make_target
from convlab.theory.perturbation import PerturbationSpec, make_perturbation
from convlab.theory.pf_ode import log_concavity_bounds, mixture_radius_and_std, neg_hessian_log_density, switch_time
from tests.strategies import mixtures

F64 = torch.float64
run_pf_ode = RUN_KINDS["pf_ode"].run
run_log_concavity = RUN_KINDS["log_concavity"].run


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
def test_vp_score_is_the_score_of_the_ou_marginal(target, s):
    """p_s of the forward OU process is the mixture with means e^{-s} mu_k and covariances e^{-2s} Sigma_k +
    (1 - e^{-2s}) I: its log-density gradient (autograd) is the target's vp score at t = 1 - s / S."""
    covs = math.exp(-2 * s) * target.cov.dense() + (-math.expm1(-2 * s)) * torch.eye(target.ambient_dim, dtype=F64)
    p_s = GaussianMixture(target.weights.numpy(), math.exp(-s) * target.means.numpy(), covs.numpy())
    y = torch.randn(16, target.ambient_dim, generator=torch.Generator().manual_seed(0), dtype=F64).requires_grad_(True)
    (grad,) = torch.autograd.grad(p_s.log_prob(y).sum(), y)
    assert torch.allclose(target.score(1.0 - s / 4.0, y.detach(), VP(4.0)), grad, rtol=1e-9, atol=1e-10)


@settings(max_examples=4)
@given(
    isotropic_mixtures(max_K=3, max_D=2, R_min=0.5, R_max=2.0, s_min=0.4, s_max=0.8),
    st.sampled_from(["euler", "exp_score"]),
)
def test_declared_order_is_measured(target, solver):
    """Coupled error against the exact flow over K = 128..512 has slope -order (diffrax-style). The targets stay
    away from N(0, I), where the score is linear and both steps are nearly exact (errors at round-off), and from
    large R / s, where the score's Lipschitz constant (up to R^2 / s^4) pushes the asymptotic regime to smaller h
    (studies/pf_ode_step.yaml measures R / s = 10 at K up to 1024)."""
    field = ExactField(target, VP(4.0))
    y0 = torch.randn(16, target.ambient_dim, generator=torch.Generator().manual_seed(1), dtype=F64)
    exact = reference_flow(field, y0, T=1.0, reference=Reference(K=1024))
    Ks = [128, 256, 512]
    errs = [coupled_rms(integrate(field, y0, time_grid(K), solver).x, exact).rms for K in Ks]
    slope = np.polyfit(np.log(Ks), np.log(errs), 1)[0]
    assert abs(-slope - SOLVERS[solver].order) < 0.15, (solver, errs)


class _ConstantScore:
    """A vp field whose score is the constant c: V = S (x + c)."""

    def __init__(self, S, c):
        self.interpolant, self.c = VP(S), c

    def score(self, t, x):
        return self.c.expand_as(x)

    def velocity(self, t, x):
        return self.interpolant.S * (x + self.c)


@given(st.floats(1.0, 8.0), st.floats(0.2, 1.0), st.integers(0, 10**6))  # h = S span >= 0.2: euler visibly off
def test_exp_score_is_the_ou_exponential_step_and_exact_for_a_constant_score(S, span, seed):
    """On vp with horizon S, dY/dtau = Y + c (tau = S t) has the solution e^h Y0 + (e^h - 1) c over h = S (t1 - t0):
    one exp_score step of any size hits it (the exponential step of arXiv 2510.17608), euler does not."""
    g = torch.Generator().manual_seed(seed)
    c, y0 = torch.randn(1, 3, generator=g, dtype=F64), torch.randn(4, 3, generator=g, dtype=F64)
    field = _ConstantScore(S, c)
    h = S * span
    exact = math.exp(h) * y0 + math.expm1(h) * c
    one = integrate(field, y0, [0.0, span], "exp_score")
    torch.testing.assert_close(one.x, exact, rtol=1e-12, atol=1e-12)
    assert one.nfe == 1
    assert not torch.allclose(integrate(field, y0, [0.0, span], "euler").x, exact, rtol=1e-3)


def test_euler_on_the_vp_field_is_the_ou_euler_step():
    """y + h (y + score(s, y)) with h = S (t1 - t0): the OU Euler step of arXiv 2510.17608 is Euler on the vp field."""
    target, S = make_target({"name": "ring8", "radius": 2.0, "s": 0.5}), 3.0
    field = ExactField(target, VP(S))
    y = torch.randn(5, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    t0, t1 = 0.25, 0.3
    ou = y + S * (t1 - t0) * (y + target.score(t0, y, VP(S)))
    torch.testing.assert_close(integrate(field, y, [t0, t1], "euler").x, ou, rtol=1e-12, atol=1e-12)


@settings(max_examples=10)
@given(mixtures(max_D=3), st.sampled_from(["score", "velocity"]), st.floats(0.1, 0.9))
def test_a_perturbed_field_keeps_its_three_views_consistent(target, on, t):
    """Perturbing the score or the velocity moves all three views so that the identities of
    docs/concepts/theory.md §2 still hold: V = (a'/a) x + (b' - a' b / a) D and score = (b D - x) / a^2."""
    ip = VP(2.0)
    delta = make_perturbation(
        PerturbationSpec(eps=0.3, lengthscale=0.7), D=target.ambient_dim, generator=torch.Generator().manual_seed(3)
    )
    field = PerturbedField(ExactField(target, ip), delta, on=on)
    x = torch.randn(6, target.ambient_dim, generator=torch.Generator().manual_seed(4), dtype=F64)
    a, b, da, db = (float(f(t)) for f in (ip.a, ip.b, ip.da, ip.db))
    D = field.denoiser(t, x)
    torch.testing.assert_close(field.velocity(t, x), (da / a) * x + (db - da * b / a) * D, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(field.score(t, x), (b * D - x) / a**2, rtol=1e-9, atol=1e-9)
    moved = (
        field.score(t, x) - target.score(t, x, ip)
        if on == "score"
        else field.velocity(t, x) - target.velocity(t, x, ip)
    )
    torch.testing.assert_close(moved, delta(x), rtol=1e-12, atol=1e-12)


def test_exp_score_needs_a_variance_preserving_schedule_with_b0_positive():
    from convlab.interpolants import as_interpolant

    for name in ("linear", "trig", "follmer"):
        with pytest.raises(ValueError, match="variance-preserving"):
            SOLVERS["exp_score"].check(as_interpolant(name), 0.9)
    SOLVERS["exp_score"].check(VP(3.0), 1.0)


@settings(max_examples=10)
@given(isotropic_mixtures(), st.floats(0.02, 3.0))
def test_hessian_sandwich_holds_at_random_points(target, t):
    """Autograd Hessian of log p_t at random points: eigenvalues of -Hess inside the bounds of
    docs/concepts/theory.md §6, and Tweedie's identity (neg_hessian_log_density) gives the same matrix."""
    R, s = mixture_radius_and_std(target)
    lower, upper = log_concavity_bounds(R, s, t)
    vp = VP(1.0)
    g = torch.Generator().manual_seed(2)
    y = 2 * torch.randn(6, target.ambient_dim, generator=g, dtype=F64)
    H = torch.stack(
        [torch.autograd.functional.hessian(lambda v: target.log_density(1.0 - t, v[None], vp)[0], row) for row in y]
    )
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


def _scalar_gaussian_w2(D, mean, std, S, K, solver):
    """Independent closed form: per coordinate the sampler is a scalar affine map y -> A y + c of N(0, 1)."""
    A, c, h = 1.0, 0.0, S / K
    for k in range(K):
        s = S - k * h
        var = math.exp(-2 * s) * std**2 - math.expm1(-2 * s)
        # score(y) = -(y - e^{-s} mean) / var = p y + q
        p, q = -1 / var, math.exp(-s) * mean / var
        if solver == "euler":
            A, c = A + h * (A + p * A), c + h * (c + p * c + q)
        else:
            A, c = math.exp(h) * A + math.expm1(h) * p * A, math.exp(h) * c + math.expm1(h) * (p * c + q)
    return math.sqrt(D * ((c - mean) ** 2 + (A - std) ** 2))


@pytest.mark.parametrize("solver", ["euler", "exp_score"])
def test_exact_w2_on_a_gaussian_matches_the_scalar_recursion(solver):
    cfg = {
        "target": {"name": "gaussian", "D": 3, "mean": 1.0, "s": 0.5},
        "S": 4.0,
        "K": 16,
        "solver": solver,
        "n_coupled": 500,
        "reference": {"K": 256},
    }
    rec = run_pf_ode(cfg, device="cpu")
    assert rec.status == "ok"
    assert rec.metrics["nfe"] == 16 and rec.metrics["h"] == 0.25  # one score evaluation per step, counted
    assert rec.metrics["sampler_w2"] == pytest.approx(_scalar_gaussian_w2(3, 1.0, 0.5, 4.0, 16, solver), rel=1e-9)
    # The coupled estimate bounds the exact W2 from above (up to its sampling noise).
    assert rec.metrics["sampler_w2"] <= rec.metrics["sampler_w2_ub"] * 1.1


def test_score_error_effect_is_exactly_linear_for_an_affine_sampler():
    base = {
        "target": {"name": "gaussian", "D": 2, "mean": 1.0, "s": 0.5},
        "S": 4.0,
        "K": 16,
        "n_coupled": 200,
        "reference": {"K": 128},
    }
    effect = [
        run_pf_ode({**base, "score_error": {"kind": "constant", "eps": e}}, device="cpu").metrics["score_error_effect"]
        for e in (0.01, 0.04)
    ]
    assert effect[1] / effect[0] == pytest.approx(4.0, rel=1e-9)


def test_initialisation_error_decays_like_e_to_the_minus_S():
    base = {"target": {"name": "ring8", "radius": 2.0, "s": 0.5}, "K": 4, "n_coupled": 300, "reference": {"K": 256}}
    e = [run_pf_ode({**base, "S": S}, device="cpu").metrics["init_error"] for S in (4.0, 6.0)]
    assert math.log(e[0] / e[1]) / 2.0 == pytest.approx(1.0, abs=0.1)


def test_log_concavity_run_reports_the_sandwich():
    rec = run_log_concavity(
        {"target": {"name": "ring8", "radius": 2.0, "s": 0.5}, "t": 0.3, "n_points": 200}, device="cpu"
    )
    m = rec.metrics
    assert rec.status == "ok" and m["sandwich_holds"] and not m["strongly_log_concave"]
    assert m["hess_bound_lower"] <= m["hess_min"] < 0 < m["hess_max"] <= m["hess_bound_upper"]
    assert m["t_star"] == pytest.approx(0.5 * math.log1p(4.0 - 0.25))


def test_log_concavity_needs_one_shared_isotropic_variance():
    rec = run_log_concavity(
        {"target": {"name": "random_mixture", "D": 2, "cov": "full"}, "t": 0.3, "n_points": 10}, device="cpu"
    )
    assert rec.status == "failed" and "isotropic" in rec.reason
    with pytest.raises(ValueError, match="shared variance"):
        mixture_radius_and_std(make_target({"name": "random_mixture", "D": 2, "cov": "iso"}))
