"""Gaussian interpolation flows (arXiv 2311.11475): the Jacobian identity against autograd, the Lipschitz sup and its
blow-up rates, early-stopping bounds, the stability bound, and the perturbation fields."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from convlab.fields import ExactField, PerturbedField
from convlab.interpolants import Follmer, Linear, as_interpolant
from convlab.runs import RUN_KINDS
from convlab.targets import make_target
from convlab.theory.perturbation import PerturbationSpec, make_perturbation
from convlab.theory.regularity import (
    LipschitzSearch,
    jacobian_coefficients,
    lipschitz_estimate,
    lipschitz_profile,
    log_time_grid,
    stability_bound,
    trapezoid_tail,
    velocity_jacobian,
)
from tests.strategies import interpolants, mixtures

F64 = torch.float64
run_lipschitz, run_early_stopping, run_stability = (
    RUN_KINDS[k].run for k in ("lipschitz", "early_stopping", "stability")
)


@settings(max_examples=15)
@given(mixtures(max_D=3), interpolants, st.floats(0.05, 0.95))
def test_jacobian_identity_matches_autograd(target, ip, t):
    x = torch.randn(6, target.ambient_dim, generator=torch.Generator().manual_seed(0), dtype=F64)
    auto = torch.func.vmap(torch.func.jacrev(lambda v: target.velocity(t, v[None], ip)[0]))(x)
    assert torch.allclose(velocity_jacobian(target, ip, t, x), auto, rtol=1e-8, atol=1e-9)


def test_lipschitz_sup_of_the_ring_is_found_at_its_centre():
    """Atoms on a circle of radius R: at the centre the posterior is uniform, Cov = R^2 / 2 I, so
    ||grad V|| = |a'/a + beta R^2 / 2| there; no point exceeds |a'/a| + beta R^2 (Cov <= R^2 I)."""
    target, ip, t, R = make_target({"name": "ring8", "s": 0.0}), Linear(), 0.99, 4.0
    beta, alpha = t / (1 - t) ** 3, -1 / (1 - t)
    assert jacobian_coefficients(ip, t) == pytest.approx((alpha, beta), rel=1e-12)
    est = lipschitz_estimate(
        target,
        ip,
        t,
        generator=torch.Generator().manual_seed(0),
        search=LipschitzSearch(n_samples=256, ascent_steps=20),
    )
    assert est.value >= abs(alpha + beta * R * R / 2) * (1 - 1e-9)
    assert est.value <= abs(alpha) + beta * R * R
    assert est.sampled < 1e-3 * est.value  # draws of p_t alone miss the centre: why the search exists


@pytest.mark.parametrize("ip, slope", [(Linear(), -3.0), (Follmer(), -2.0)])
def test_blow_up_rate_on_atoms_and_boundedness_when_smoothed(ip, slope):
    gaps = np.array([1e-2, 1e-3, 1e-4])
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    atoms, smooth = make_target({"name": "ring8", "s": 0.0}), make_target({"name": "ring8", "s": 0.4})
    search = LipschitzSearch(n_samples=128, ascent_steps=10)
    L = [lipschitz_estimate(atoms, ip, 1 - d, generator=g(), search=search).value for d in gaps]
    assert np.polyfit(np.log(gaps), np.log(L), 1)[0] == pytest.approx(slope, abs=0.05)
    Ls = [lipschitz_estimate(smooth, ip, 1 - d, generator=g(), search=search).value for d in (1e-4, 1e-6)]
    assert Ls[1] == pytest.approx(Ls[0], rel=0.05)


def test_lipschitz_run_records_the_profile_point():
    m = run_lipschitz(
        {"target": {"name": "ring8", "s": 0.0}, "t": 0.9, "search": {"n_samples": 64, "ascent_steps": 5}}, device="cpu"
    ).metrics
    assert m["one_minus_t"] == pytest.approx(0.1) and m["degenerate"] and m["lipschitz"] >= m["lipschitz_sampled"]
    assert m["beta"] == pytest.approx(0.9 / 0.1**3) and m["support_radius"] == pytest.approx(4.0)


def test_early_stopping_bounds_bracket_w2_and_are_exact_for_a_gaussian():
    small = {"n_t": 4, "search": {"n_samples": 64, "ascent_steps": 5}}
    m = run_early_stopping(
        {"target": {"name": "gaussian", "D": 3, "mean": 1.0, "s": 0.5}, "T": 0.99, **small}, device="cpu"
    ).metrics
    assert m["early_stop_w2_lb"] == pytest.approx(
        m["early_stop_w2_ub"], rel=1e-9
    )  # both are the Bures distance of two Gaussians
    m = run_early_stopping(
        {"target": {"name": "ring8", "s": 0.0}, "T": 0.99, "interpolant": "follmer", **small}, device="cpu"
    ).metrics
    assert m["early_stop_w2_lb_gelbrich"] <= m["early_stop_w2_lb_support"] <= m["early_stop_w2_ub"] * 1.02
    a = math.sqrt(1 - 0.99**2)
    assert m["early_stop_w2_lb_support"] == pytest.approx(
        a * math.sqrt(2), rel=0.05
    )  # atoms far apart: X_T - b mu_k ~ a Z


def test_integrals_on_the_time_grid():
    ts = log_time_grid(0.999, 400)
    assert ts[0] == 0.0 and ts[-1] == pytest.approx(0.999) and np.all(np.diff(ts) > 0)
    tail = trapezoid_tail(ts, 1 / (1 - ts))  # int_t^T ds / (1 - s) = log((1 - t) / (1 - T))
    assert tail == pytest.approx(np.log((1 - ts) / (1 - 0.999)), abs=1e-3)
    # With L = 0 the bound is the integral of eps; with constant L it is eps (e^{LT} - 1) / L.
    assert stability_bound(ts, 0 * ts, 0 * ts + 2.0) == pytest.approx(2 * 0.999)
    assert stability_bound(ts, 0 * ts + 3.0, 0 * ts + 1.0) == pytest.approx(math.expm1(3 * 0.999) / 3, rel=1e-3)


def test_stability_bound_holds_and_the_error_is_linear_in_eps():
    base = {
        "target": {"name": "gaussian", "D": 2, "mean": 1.0, "s": 0.5},
        "T": 0.99,
        "n_coupled": 300,
        "n_mc": 300,
        "n_t": 8,
        "search": {"n_samples": 64, "ascent_steps": 5},
        "reference": {"K": 128},
    }
    recs = [run_stability({**base, "perturbation": {"eps": e}}, device="cpu").metrics for e in (0.01, 0.02)]
    assert all(r["stability_bound_holds"] and r["stability_bound"] >= r["coupled_error"] for r in recs)
    assert recs[1]["coupled_error"] / recs[0]["coupled_error"] == pytest.approx(2.0, rel=0.02)


@pytest.mark.parametrize("kind", ["fourier", "constant"])
def test_perturbation_jacobian_and_size(kind):
    cfg = PerturbationSpec(kind=kind, eps=0.3, n_features=32, lengthscale=0.7)
    delta = make_perturbation(cfg, D=3, generator=torch.Generator().manual_seed(0))
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    auto = torch.func.vmap(torch.func.jacrev(lambda v: delta(v[None])[0]))(x)
    assert torch.allclose(delta.jacobian(x), auto, atol=1e-12)
    # Mean square eps^2 on average over the draw of the field (exactly for 'constant').
    sq = [
        make_perturbation(cfg, D=3, generator=torch.Generator().manual_seed(s))(x).pow(2).sum(1).mean()
        for s in range(200)
    ]
    assert float(np.mean(sq)) == pytest.approx(0.09, rel=0.05)


def test_perturbed_field_adds_the_perturbation():
    field = ExactField(make_target("ring8"), as_interpolant("linear"))
    delta = make_perturbation(
        PerturbationSpec(kind="constant", eps=0.5), D=2, generator=torch.Generator().manual_seed(0)
    )
    x = torch.randn(4, 2, dtype=F64, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(PerturbedField(field, delta).velocity(0.3, x) - field.velocity(0.3, x), delta(x))


def test_continuation_finds_the_centre_of_a_circle_of_atoms_close_to_t_1():
    """256 atoms on the unit circle: the posterior at the centre is uniform for every t (Cov = I / 2 up to the
    atoms' discrepancy), but as t -> 1 its basin shrinks like a^2; continuation in t keeps track of it."""
    target, ip, t = make_target({"name": "sphere_atoms", "d": 1, "D": 2, "s": 0.0, "n_atoms": 256}), Linear(), 1 - 1e-5
    search = LipschitzSearch(n_samples=128, ascent_steps=30)
    est = lipschitz_estimate(target, ip, t, generator=torch.Generator().manual_seed(0), search=search)
    beta = t / (1 - t) ** 3
    assert est.value / beta == pytest.approx(0.5, abs=0.01)
    assert float(est.x_star.norm()) < 1e-8
    profile = lipschitz_profile(
        target, ip, log_time_grid(t, 12), generator=torch.Generator().manual_seed(0), search=search
    )
    assert profile[-1] == pytest.approx(est.value, rel=1e-3)
