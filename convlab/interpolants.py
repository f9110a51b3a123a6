"""Interpolants X_t = a(t) Z + b(t) X1 between noise Z ~ N(0, I) (t = 0) and data X1 (t = 1).

docs/concepts/theory.md §1. A new schedule is a subclass with four methods::

    class Cubic(Interpolant):
        name = "cubic"
        def a(self, t): return (1 - t) ** 3
        def b(self, t): return 1 - (1 - t) ** 3
        def da(self, t): return -3 * (1 - t) ** 2
        def db(self, t): return 3 * (1 - t) ** 2

All methods take a float or a tensor `t` and return the same kind.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from convlab.registry import build

Time = float | torch.Tensor


def _sqrt(v: Time) -> Time:
    return torch.sqrt(v) if isinstance(v, torch.Tensor) else math.sqrt(v)


def _exp(v: Time) -> Time:
    return torch.exp(v) if isinstance(v, torch.Tensor) else math.exp(v)


def _cos(v: Time) -> Time:
    return torch.cos(v) if isinstance(v, torch.Tensor) else math.cos(v)


def _sin(v: Time) -> Time:
    return torch.sin(v) if isinstance(v, torch.Tensor) else math.sin(v)


class Interpolant:
    """Schedule (a, b) with a(0) = 1, b(0) = 0, a(1) = 0, b(1) = 1 (vp is the documented exception at t = 0)."""

    name: str = "interpolant"

    def a(self, t: Time) -> Time:
        raise NotImplementedError

    def b(self, t: Time) -> Time:
        raise NotImplementedError

    def da(self, t: Time) -> Time:
        raise NotImplementedError

    def db(self, t: Time) -> Time:
        raise NotImplementedError

    def a_da(self, t: Time) -> Time:
        """a(t) a'(t): finite at t = 1 for follmer and vp even where a'(t) is not, so V stays computable there."""
        return self.a(t) * self.da(t)

    def log_b(self, t: float) -> float:
        """log b(t) for a float t (the exponential integrators take ratios b1 / b0 as exp of a difference)."""
        return math.log(self.b(t))

    def params(self) -> dict[str, Any]:
        """Constructor parameters (for records and reprs)."""
        return {}

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, **self.params()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Interpolant) and self.spec() == other.spec()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.spec().items())))


class Linear(Interpolant):
    """a = 1 - t, b = t (rectified flow / CondOT)."""

    name = "linear"

    def a(self, t):
        return 1 - t

    def b(self, t):
        return t

    def da(self, t):
        return -1.0 + 0 * t

    def db(self, t):
        return 1.0 + 0 * t


class Trig(Interpolant):
    """a = cos(pi t / 2), b = sin(pi t / 2)."""

    name = "trig"

    def a(self, t):
        return _cos(math.pi * t / 2)

    def b(self, t):
        return _sin(math.pi * t / 2)

    def da(self, t):
        return -math.pi / 2 * _sin(math.pi * t / 2)

    def db(self, t):
        return math.pi / 2 * _cos(math.pi * t / 2)


class Follmer(Interpolant):
    """a = sqrt(1 - t^2), b = t (characteristic-generator paper); a'(t) blows up at t = 1."""

    name = "follmer"

    def a(self, t):
        return _sqrt(1 - t * t)

    def b(self, t):
        return t

    def da(self, t):
        return -t / _sqrt(1 - t * t)

    def db(self, t):
        return 1.0 + 0 * t

    def a_da(self, t):
        return -t + 0 * t


class VP(Interpolant):
    """a = sqrt(1 - e^{-2S(1-t)}), b = e^{-S(1-t)}: the OU process over horizon S read backwards.

    X_0 is N(b(0) X1, a(0)^2 I), not exactly N(0, I): the initialisation error is of order e^{-S}.
    """

    name = "vp"

    def __init__(self, S: float = 10.0):
        if not (isinstance(S, int | float) and math.isfinite(S) and S > 0):
            raise ValueError(f"vp interpolant: S must be a positive number (got {S!r})")
        self.S = float(S)

    def params(self):
        return {"S": self.S}

    def a(self, t):
        return _sqrt(1 - _exp(-2 * self.S * (1 - t)))

    def b(self, t):
        return _exp(-self.S * (1 - t))

    def da(self, t):
        return -self.S * _exp(-2 * self.S * (1 - t)) / self.a(t)

    def db(self, t):
        return self.S * self.b(t)

    def a_da(self, t):
        return -self.S * _exp(-2 * self.S * (1 - t))

    def log_b(self, t):
        return -self.S * (1 - t)


def column(v: Time, x: torch.Tensor) -> Time:
    """A schedule value for a float or an (n,) time as a scalar or an (n, 1) column against x (n, D)."""
    return v.reshape(-1, 1) if isinstance(v, torch.Tensor) and v.ndim else v


def variance_preserving(interpolant: Interpolant, *, points: int = 5) -> bool:
    """Whether a(t)^2 + b(t)^2 = 1 on [0, 1] (vp, trig, follmer; not linear), checked at `points` times."""
    ts = [k / (points - 1) for k in range(points)]
    return all(abs(float(interpolant.a(t)) ** 2 + float(interpolant.b(t)) ** 2 - 1.0) < 1e-12 for t in ts)


INTERPOLANTS: dict[str, type[Interpolant]] = {"linear": Linear, "trig": Trig, "follmer": Follmer, "vp": VP}


def as_interpolant(spec: Interpolant | str | dict) -> Interpolant:
    """An Interpolant from itself, a registry name, or {'name': ..., **params}."""
    if isinstance(spec, Interpolant):
        return spec
    return build(INTERPOLANTS, spec, kind="interpolant")
