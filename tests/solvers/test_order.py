"""Every declared solver order is measured (diffrax-style): random problems with a known or far more
accurate solution, errors over K = 2^j until the round-off floor, the log-log slope against `order`."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import expm

from convlab.fields import FunctionField, exact_field
from convlab.interpolants import VP, Follmer, Linear, Trig, as_interpolant
from convlab.solvers import SOLVERS, Reference, as_solver, integrate, reference_flow, time_grid
from convlab.targets import GaussianMixture
from tests.strategies import mixtures

F64 = torch.float64
# Below this the errors are round-off, not truncation: in float64 with |x| ~ 1 and up to 4096 steps the
# round-off stays under ~1e-13 (rk4 still shows slope 4 at 7e-13), and the reference DOP853 runs at 1e-13.
FLOOR = 1e-12
TOLERANCE = 0.25


def measured_order(errors: dict[int, float]) -> float:
    """Slope of -log(err) against log K over the last four points above the round-off floor."""
    pts = [(K, e) for K, e in sorted(errors.items()) if e > FLOOR]
    assert len(pts) >= 3, f"too few points above the floor: {errors}"
    K, e = np.array(pts[-4:]).T
    return -np.polyfit(np.log(K), np.log(e), 1)[0]


def errors_over_K(field, x0, exact, T, solver, grid_kind, Ks):
    errors = {}
    for K in Ks:
        x = integrate(field, x0, time_grid(K, T=T, kind=grid_kind), solver).x
        errors[K] = float((x - exact).norm(dim=1).max())
        if errors[K] < FLOOR:
            break
    return errors


@settings(max_examples=12)
@given(
    seed=st.integers(0, 10**6),
    D=st.integers(2, 4),
    solver=st.sampled_from(["euler", "heun", "rk4"]),
    grid_kind=st.sampled_from(["uniform", "quadratic"]),
)
def test_order_on_random_linear_odes(seed, D, solver, grid_kind):
    """dx/dt = (1 + t) A x: x(1) = expm(1.5 A) x0. Time-dependent, so a stage evaluated at the wrong time
    loses order. Scalar problems (D = 1) and oscillating coefficients are avoided: there one error
    coefficient can vanish by accident and fake a higher order (measured: 12 in 1200 random RK4 cases with
    1 + cos 3t, none with 1 + t)."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((D, D)) / math.sqrt(D)
    x0 = rng.standard_normal((5, D))
    At = torch.tensor(A, dtype=F64)
    field = FunctionField(lambda t, x: (1 + t) * x @ At.T)
    exact = torch.tensor(x0 @ expm(1.5 * A).T, dtype=F64)
    errors = errors_over_K(
        field, torch.tensor(x0, dtype=F64), exact, 1.0, solver, grid_kind, [2**j for j in range(2, 12)]
    )
    assert abs(measured_order(errors) - as_solver(solver).order) <= TOLERANCE, errors


def _runs(solver: str, ip) -> bool:
    try:
        as_solver(solver).check(ip, 0.9)
    except ValueError:
        return False
    return True


# the schedules each solver can run on (exp_score: the variance-preserving vp only)
SCHEDULES = {s: [ip for ip in (Linear(), Trig(), Follmer(), VP(2.0)) if _runs(s, ip)] for s in sorted(SOLVERS)}


@pytest.mark.parametrize("solver", sorted(SOLVERS))
@settings(max_examples=2)
@given(
    target=mixtures(min_K=2, max_K=3, min_D=2, max_D=3, var_min=0.3),
    data=st.data(),
    grid_kind=st.sampled_from(["uniform", "quadratic"]),
    seed=st.integers(0, 10**6),
)
def test_order_on_random_gaussian_mixtures(solver, target, data, grid_kind, seed):
    """The exact mixture velocity, against an adaptive DOP853 reference at rtol = atol = 1e-13, for every registered
    solver on the schedules it runs on. At least two components and two dimensions: one Gaussian makes the velocity
    linear, one dimension makes the problem scalar, and either can make a leading error coefficient vanish (see above;
    measured: rk4 on a 1-D two-component mixture showed slope 4.5)."""
    ip = data.draw(st.sampled_from(SCHEDULES[solver]))
    # follmer's a' and a degenerate target's velocity are singular at t = 1
    T = 0.9 if isinstance(ip, Follmer) or target.is_degenerate else 1.0
    field = exact_field(target, ip)
    x0 = torch.randn(8, target.ambient_dim, dtype=F64, generator=torch.Generator().manual_seed(seed))
    exact = reference_flow(field, x0, T=T, reference=Reference(solver="dop853"), rtol=1e-13, atol=1e-13)
    errors = errors_over_K(field, x0, exact, T, solver, grid_kind, [2**j for j in range(3, 13)])
    assert abs(measured_order(errors) - as_solver(solver).order) <= TOLERANCE, errors


@given(
    seed=st.integers(0, 10**6),
    D=st.integers(1, 5),
    T=st.floats(0.1, 0.999),
    ip=st.sampled_from(["linear", "trig", "follmer", "vp"]),
)
def test_exp_euler_is_exact_in_one_step_for_a_point_mass(seed, D, T, ip):
    """With nu = delta_mu the denoiser is mu everywhere, so the frozen-D step is the exact flow
    x(T) = a(T) z + b(T) mu when x(0) = a(0) z + b(0) mu."""
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal((1, D))
    target = GaussianMixture([1.0], mu, 0.0)
    ip = as_interpolant(ip)
    z = torch.tensor(rng.standard_normal((6, D)), dtype=F64)
    mu_t = torch.tensor(mu, dtype=F64)
    x0 = ip.a(0.0) * z + ip.b(0.0) * mu_t
    one_step = integrate(exact_field(target, ip), x0, time_grid(1, T=T), "exp_euler")
    torch.testing.assert_close(one_step.x, ip.a(T) * z + ip.b(T) * mu_t, rtol=1e-12, atol=1e-12)
    assert one_step.nfe == 1
    if ip.name != "linear":  # linear paths to a point are straight, so Euler is exact there too
        euler = integrate(exact_field(target, ip), x0, time_grid(1, T=T), "euler").x
        assert (euler - one_step.x).abs().max() > 1e-8  # O(T^2) curvature error, far above round-off


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_every_solver_declares_order_and_stages_and_is_measured(name):
    solver = as_solver(name)
    assert isinstance(solver.order, int) and solver.order >= 1
    assert SCHEDULES[name], f"{name} runs on no schedule the order test draws"
    assert "Order: " + str(solver.order) in type(solver).__doc__
    assert "Stages: " + str(solver.stages) in type(solver).__doc__
