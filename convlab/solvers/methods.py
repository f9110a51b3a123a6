"""One-step maps x(t0) -> x(t1) of dx/dt = V(t, x), each declaring its global order (docs/concepts/theory.md §3).

Every solver's docstring follows one template: the update, Order, Stages (field evaluations per step) and a
reference. tests/solvers/test_order.py measures every declared order.
"""

from __future__ import annotations

import math

from torch import Tensor

from convlab.interpolants import variance_preserving
from convlab.registry import build


class Solver:
    """Base class: `order` (global), `stages` (NFE per step), `step(field, t0, t1, x)`, and `check` for the
    schedules and end times a solver cannot handle (a config validator calls it before anything runs)."""

    name: str
    order: int
    stages: int

    def step(self, field, t0: float, t1: float, x: Tensor) -> Tensor:
        raise NotImplementedError

    @classmethod
    def check(cls, interpolant, T: float) -> None:
        """Raise ValueError (naming the field: 'T: ...' or 'interpolant: ...') where this solver cannot run."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(order={self.order})"


class Euler(Solver):
    """x + h V(t0, x).

    Order: 1. Stages: 1. Reference: Hairer, Norsett & Wanner, Solving ODEs I, section II.1.
    """

    name, order, stages = "euler", 1, 1

    def step(self, field, t0, t1, x):
        return x + (t1 - t0) * field.velocity(t0, x)


class Heun(Solver):
    """Predictor x + h k1, corrector x + h (k1 + k2) / 2 with k2 = V(t1, x + h k1) (explicit trapezoid).

    Order: 2. Stages: 2. Reference: Hairer, Norsett & Wanner, Solving ODEs I, section II.1.
    """

    name, order, stages = "heun", 2, 2

    def step(self, field, t0, t1, x):
        h = t1 - t0
        k1 = field.velocity(t0, x)
        k2 = field.velocity(t1, x + h * k1)
        return x + 0.5 * h * (k1 + k2)


class RK4(Solver):
    """Classical Runge-Kutta: x + h (k1 + 2 k2 + 2 k3 + k4) / 6.

    Order: 4. Stages: 4. Reference: Hairer, Norsett & Wanner, Solving ODEs I, section II.1, table 1.2.
    """

    name, order, stages = "rk4", 4, 4

    def step(self, field, t0, t1, x):
        h = t1 - t0
        tm = t0 + 0.5 * h
        k1 = field.velocity(t0, x)
        k2 = field.velocity(tm, x + 0.5 * h * k1)
        k3 = field.velocity(tm, x + 0.5 * h * k2)
        k4 = field.velocity(t1, x + h * k3)
        return x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


class ExpEuler(Solver):
    """Exponential integrator in denoiser form (DDIM):
    x1 = (a1 / a0) x + (b1 - a1 b0 / a0) D(t0, x), the linear part (a'/a) x integrated exactly, D frozen.

    Order: 1; exact in one step when D is constant along the step (a point-mass target). Stages: 1.
    Needs a field with `interpolant` and `denoiser`. Reference: Song, Meng & Ermon, DDIM (ICLR 2021);
    Zhang & Chen, DEIS (ICLR 2023).
    """

    name, order, stages = "exp_euler", 1, 1

    def step(self, field, t0, t1, x):
        ip = field.interpolant
        a0, b0, a1, b1 = ip.a(t0), ip.b(t0), ip.a(t1), ip.b(t1)
        ratio = a1 / a0
        return ratio * x + (b1 - ratio * b0) * field.denoiser(t0, x)

    @classmethod
    def check(cls, interpolant, T):
        if T >= 1.0:
            raise ValueError(f"T: exp_euler divides by a(t), which vanishes at t = 1; use T < 1 (got {T!r})")


class ExpScore(Solver):
    """Exponential integrator in score form, the score frozen on the step: x1 = r x + (r - 1) score(t0, x),
    r = b1 / b0. For a variance-preserving schedule (a^2 + b^2 = 1) the velocity is V = (b'/b)(x + score), so the
    step integrates the rest exactly; on vp with horizon S it is the OU step e^h y + (e^h - 1) score with
    h = S (t1 - t0) (the exponential integrator of Kremling et al., arXiv 2510.17608).

    Order: 1; exact when the score is constant along the step. Stages: 1. Needs a field with `interpolant` and
    `score`, a variance-preserving schedule and b(t0) > 0 (vp: b(0) = e^{-S}). Reference: Kremling et
    al., arXiv 2510.17608, section 3; Zhang & Chen, DEIS (ICLR 2023).
    """

    name, order, stages = "exp_score", 1, 1

    def step(self, field, t0, t1, x):
        ip = field.interpolant
        log_ratio = ip.log_b(t1) - ip.log_b(t0)  # r - 1 by expm1: a plain b1 / b0 - 1 loses digits on short steps
        return math.exp(log_ratio) * x + math.expm1(log_ratio) * field.score(t0, x)

    @classmethod
    def check(cls, interpolant, T):
        if not (variance_preserving(interpolant) and float(interpolant.b(0.0)) > 0):
            raise ValueError(
                f"interpolant: exp_score needs a variance-preserving schedule with b(0) > 0, i.e. vp "
                f"(got {interpolant.name})"
            )


SOLVERS: dict[str, type[Solver]] = {
    "euler": Euler,
    "heun": Heun,
    "rk4": RK4,
    "exp_euler": ExpEuler,
    "exp_score": ExpScore,
}


def as_solver(spec: Solver | str | dict) -> Solver:
    """A solver from its name in SOLVERS ('euler', 'heun', 'rk4', 'exp_euler', 'exp_score'), a spec dict
    {'name': ..., **parameters}, or a Solver (returned as is); ValueError naming the known solvers otherwise."""
    return spec if isinstance(spec, Solver) else build(SOLVERS, spec, kind="solver")
