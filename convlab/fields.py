"""Velocity fields the solvers integrate: the exact field of a target, a network, a perturbed field, any callable.

Every field has `velocity(t, x)` for x of shape (n, D) and `t` a float or an (n,) tensor. Fields that come
from an interpolant also have `interpolant`, `denoiser(t, x)` and `score(t, x)` (the exponential integrators
need them); the three views are tied by the identities of theory §2 (docs/concepts/theory.md)

    V = (a'/a) x + (b' - a' b / a) D,        score = (b D - x) / a^2,        V = (b'/b) x + c(t) score,

with c(t) = a (a b' - a' b) / b (= b'/b for a variance-preserving schedule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import torch
from torch import Tensor

from convlab.interpolants import Interpolant, as_interpolant, column


class Field(Protocol):
    """dx/dt = velocity(t, x) for x of shape (n, D); `t` a float or an (n,) tensor."""

    def velocity(self, t, x: Tensor) -> Tensor: ...


def _schedule(ip: Interpolant, t, x: Tensor) -> tuple:
    """a, b, a', b' at t as scalars or (n, 1) columns against x."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device) if isinstance(t, Tensor) else t
    return tuple(column(f(t), x) for f in (ip.a, ip.b, ip.da, ip.db))


def score_coefficient(ip: Interpolant, t, x: Tensor):
    """c(t) = a (a b' - a' b) / b, the factor of the score in V = (b'/b) x + c score; needs b(t) > 0."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device) if isinstance(t, Tensor) else t
    a, b, db, a_da = (column(f(t), x) for f in (ip.a, ip.b, ip.db, ip.a_da))
    return (a * a * db - a_da * b) / b


@dataclass(frozen=True)
class ExactField:
    """The exact probability-flow field of `target` under `interpolant` (docs/concepts/theory.md §2)."""

    target: object
    interpolant: Interpolant

    def velocity(self, t, x: Tensor) -> Tensor:
        return self.target.velocity(t, x, self.interpolant)

    def denoiser(self, t, x: Tensor) -> Tensor:
        return self.target.denoiser(t, x, self.interpolant)

    def score(self, t, x: Tensor) -> Tensor:
        return self.target.score(t, x, self.interpolant)


def exact_field(target, interpolant: Interpolant | str | dict) -> ExactField:
    """The exact velocity V(t, x), score and denoiser of `target` under `interpolant` (a name such as 'linear' or
    'follmer', a spec such as {'name': 'vp', 'S': 5}, or an Interpolant): what every error is measured against.

    Example: `exact_field(make_target({"name": "ring8"}), "follmer").velocity(t, x)`."""
    return ExactField(target, as_interpolant(interpolant))


@dataclass(frozen=True)
class FunctionField:
    """A field from a plain function v(t, x), e.g. a linear test ODE."""

    fn: Callable[[float, Tensor], Tensor]

    def velocity(self, t, x: Tensor) -> Tensor:
        return self.fn(t, x)


@dataclass(frozen=True)
class PerturbedField:
    """A field with a known perturbation delta(x) (convlab.theory.perturbation) added to one of its views.

    on='velocity': V + delta (a velocity error, for stability checks); the score moves by delta / c(t).
    on='score': score + delta (an injected score error, arXiv 2510.17608); the velocity moves by c(t) delta.
    Either way the denoiser moves by (a^2 / b) times the score's change, so the three views stay consistent.
    """

    field: object
    delta: Callable[[Tensor], Tensor]
    on: Literal["velocity", "score"] = "velocity"

    @property
    def interpolant(self) -> Interpolant:
        return self.field.interpolant

    def velocity(self, t, x: Tensor) -> Tensor:
        d = self.delta(x)
        return self.field.velocity(t, x) + (
            d if self.on == "velocity" else score_coefficient(self.interpolant, t, x) * d
        )

    def score(self, t, x: Tensor) -> Tensor:
        return self.field.score(t, x) + self._score_change(t, x)

    def denoiser(self, t, x: Tensor) -> Tensor:
        a, b, _, _ = _schedule(self.interpolant, t, x)
        return self.field.denoiser(t, x) + (a * a / b) * self._score_change(t, x)

    def _score_change(self, t, x: Tensor) -> Tensor:
        d = self.delta(x)
        return d if self.on == "score" else d / score_coefficient(self.interpolant, t, x)


class NetField:
    """dx/dt = V_theta(t, x) from a network net(t, x) that outputs the velocity or the denoiser D_theta.

    With the denoiser, V = (a'/a) x + (b' - a' b / a) D; conversely D = (a V - a' x) / (a b' - a' b). Both
    directions are exact identities, so either parametrisation serves every solver alike.
    """

    def __init__(self, net, interpolant: Interpolant, parametrization: Literal["velocity", "denoiser"]):
        self.net, self.interpolant, self.parametrization = net, interpolant, parametrization

    def velocity(self, t, x: Tensor) -> Tensor:
        out = self.net(t, x)
        if self.parametrization == "velocity":
            return out
        a, b, da, db = _schedule(self.interpolant, t, x)
        return (da / a) * x + (db - da * b / a) * out

    def denoiser(self, t, x: Tensor) -> Tensor:
        out = self.net(t, x)
        if self.parametrization == "denoiser":
            return out
        a, b, da, db = _schedule(self.interpolant, t, x)
        return (a * out - da * x) / (a * db - da * b)

    def score(self, t, x: Tensor) -> Tensor:
        a, b, _, _ = _schedule(self.interpolant, t, x)
        return (b * self.denoiser(t, x) - x) / (a * a)
