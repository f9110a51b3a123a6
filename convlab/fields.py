"""Velocity fields the solvers integrate: the exact field of a target under an interpolant, or any callable."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from torch import Tensor

from convlab.interpolants import Interpolant, as_interpolant


class Field(Protocol):
    """dx/dt = velocity(t, x) for x of shape (n, D); `t` a float or an (n,) tensor.

    Fields that come from an interpolant also expose `interpolant` and `denoiser(t, x)` (the exponential
    integrator needs them).
    """

    def velocity(self, t, x: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class ExactField:
    """The exact probability-flow field of `target` under `interpolant` (THEORY.md section 2)."""

    target: object
    interpolant: Interpolant

    def velocity(self, t, x: Tensor) -> Tensor:
        return self.target.velocity(t, x, self.interpolant)

    def denoiser(self, t, x: Tensor) -> Tensor:
        return self.target.denoiser(t, x, self.interpolant)

    def score(self, t, x: Tensor) -> Tensor:
        return self.target.score(t, x, self.interpolant)


def exact_field(target, interpolant: Interpolant | str | dict) -> ExactField:
    return ExactField(target, as_interpolant(interpolant))


@dataclass(frozen=True)
class FunctionField:
    """A field from a plain function v(t, x), e.g. a linear test ODE."""

    fn: Callable[[float, Tensor], Tensor]

    def velocity(self, t, x: Tensor) -> Tensor:
        return self.fn(t, x)


@dataclass(frozen=True)
class PerturbedField:
    """V + delta: a field plus a known perturbation delta(x) (convlab.perturbation), for stability checks."""

    field: object
    delta: Callable[[Tensor], Tensor]

    def velocity(self, t, x: Tensor) -> Tensor:
        return self.field.velocity(t, x) + self.delta(x)
