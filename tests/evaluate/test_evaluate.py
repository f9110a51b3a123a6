"""convlab.evaluate against routes that do not go through it: the exact field as a model (errors at rounding), a
model off by a known constant (its velocity error is that constant), a model written with its noise at t = 1 (the
same numbers), schedules given as flow_matching-style objects, and the refusals: a convention that disagrees with
itself, a model that raises, returns the wrong shape, dtype or non-finite values."""

import math
from types import SimpleNamespace

import pytest
import torch

from convlab.evaluate import (
    ConventionError,
    ModelError,
    check_convention,
    evaluate_generator,
    evaluate_velocity,
    model_interpolant,
)
from convlab.fields import ExactField
from convlab.interpolants import as_interpolant
from convlab.solvers import Reference, reference_flow
from convlab.targets import make_target

TARGET = make_target("ring8")
LINEAR = as_interpolant("linear")
SMALL = dict(n=400, Ks=(8, 16, 32, 64, 128), n_w2=200, floor_repeats=2, reference=Reference(K=256), device="cpu")


def exact(s, x):
    """The exact velocity in convlab's time (noise at 0), evaluated in float64, returned in x's dtype."""
    return TARGET.velocity(s.double(), x.double(), LINEAR).to(x.dtype)


def exact_noise_at_one(s, x):
    """The same field written as a model whose noise sits at s = 1: u(s, x) = -V(1 - s, x)."""
    return -exact(1 - s, x)


def cond_ot(t):
    """flow_matching's CondOTScheduler as an object with its attribute names (alpha_t = t, sigma_t = 1 - t)."""
    return SimpleNamespace(alpha_t=t, sigma_t=1 - t, d_alpha_t=torch.ones_like(t), d_sigma_t=-torch.ones_like(t))


def test_the_exact_field_has_no_velocity_error_and_the_solver_orders():
    r = evaluate_velocity(exact, TARGET, **SMALL)
    assert r.velocity_l2_error < 1e-6 and r.velocity.relative.max() < 1e-6  # float32 rounding
    assert r.flow_error.rms < 1e-4 and r.convention_gap < 1e-10
    assert r.rates["euler"].verdict == "consistent" and abs(r.rates["euler"].slope + 1) < 0.1
    assert -2.3 < r.rates["heun"].slope < -1.5  # second order, pre-asymptotic at the coarsest K
    # at every K the end-to-end error is the solver error (the flows agree), to the flow error
    assert (r.solvers.e2e_error - r.solvers.solver_error).abs().max() <= r.flow_error.rms * 5
    assert not r.warnings


def test_a_model_off_by_a_constant_has_that_velocity_error():
    delta = torch.tensor([0.3, -0.4])  # |delta| = 0.5
    r = evaluate_velocity(lambda s, x: exact(s, x) + delta.to(x.dtype), TARGET, **SMALL)
    assert r.velocity_l2_error == pytest.approx(0.5, rel=1e-5)
    assert r.velocity.velocity_l2_error.to_numpy() == pytest.approx(0.5, rel=1e-5)


def test_a_model_with_its_noise_at_one_measures_as_the_same_field():
    def reversed_schedule(s):  # X_s = (1 - s) X1 + s Z: the noise at s = 1
        return 1 - s, s, -torch.ones_like(s), torch.ones_like(s)

    ours = evaluate_velocity(exact, TARGET, **SMALL)
    theirs = evaluate_velocity(exact_noise_at_one, TARGET, schedule=reversed_schedule, noise_at=1, **SMALL)
    assert theirs.velocity_l2_error < 1e-6
    assert theirs.solvers.solver_error.to_numpy() == pytest.approx(ours.solvers.solver_error.to_numpy(), rel=1e-4)


def test_schedulers_map_onto_convlab_interpolants():
    ip = model_interpolant(cond_ot)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    for ours, theirs in ((ip.a, LINEAR.a), (ip.b, LINEAR.b), (ip.da, LINEAR.da), (ip.db, LINEAR.db)):
        torch.testing.assert_close(ours(t), theirs(t), rtol=0, atol=1e-15)
    assert ip.a(0.25) == 0.75 and isinstance(ip.a(0.25), float)
    assert check_convention(TARGET, cond_ot) < 1e-10

    # a variance-preserving schedule with its noise at s = 1 (score-based convention): alpha = cos, sigma = sin
    def vp(s):
        c, q = torch.cos(math.pi * s / 2), torch.sin(math.pi * s / 2)
        return c, q, -math.pi / 2 * q, math.pi / 2 * c

    assert check_convention(TARGET, vp, 1) < 1e-10
    ip_vp, trig = model_interpolant(vp, 1), as_interpolant("trig")
    torch.testing.assert_close(ip_vp.da(t[1:-1]), trig.da(t[1:-1]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "schedule, noise_at, message",
    [
        (lambda s: (s, 1 - s, 2 * torch.ones_like(s), -torch.ones_like(s)), 0, "d_alpha at s = "),
        (lambda s: (1 - s, s, -torch.ones_like(s), torch.ones_like(s)), 0, "the noise must dominate at t = 0"),
        (cond_ot, 1, "the noise must dominate at t = 0"),
        (lambda s: s, 0, "must return alpha, sigma, d_alpha, d_sigma"),
        ("linear", 1, "has its noise at t = 0"),
        (cond_ot, 2, "noise_at: the model's noise sits at time 0 or 1"),
    ],
)
def test_a_schedule_that_disagrees_with_itself_is_refused(schedule, noise_at, message):
    with pytest.raises(ConventionError, match=message.replace("(", r"\(")):
        evaluate_velocity(exact, TARGET, schedule=schedule, noise_at=noise_at, **SMALL)


def _raises(s, x):
    raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")


@pytest.mark.parametrize(
    "model, message",
    [
        (_raises, "raised RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
        (lambda s, x: x[:, :1], r"returned shape \(7, 1\), expected \(7, 2\)"),
        (lambda s, x: x * math.nan, "returned non-finite values"),
        (lambda s, x: x.double(), "returned torch.float64 on cpu; expected torch.float32 on cpu"),
        (lambda s, x: x.numpy(), "returned ndarray, not a tensor"),
    ],
)
def test_a_model_that_cannot_be_measured_is_refused_with_the_reason(model, message):
    with pytest.raises(ModelError, match=message):
        evaluate_velocity(model, TARGET, **SMALL)


def test_the_exact_flow_map_as_a_one_step_generator_has_no_error():
    def flow_map(z):
        return reference_flow(ExactField(TARGET, LINEAR), z.double(), reference=Reference(K=256)).float()

    small = {k: v for k, v in SMALL.items() if k != "Ks"}
    r = evaluate_generator(flow_map, TARGET, **small)
    assert r.e2e_error.rms < 1e-5
    off = evaluate_generator(lambda z: flow_map(z) + 0.5, TARGET, **small)  # shifted by (0.5, 0.5)
    assert off.e2e_error.rms == pytest.approx(math.sqrt(0.5), rel=1e-4)
    with pytest.raises(ModelError, match="generator"):
        evaluate_generator(lambda z: z[:, :1], TARGET, **small)
