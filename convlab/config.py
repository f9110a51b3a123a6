"""Configuration blocks shared by the run kinds, validated by pydantic (unknown keys rejected, every field typed
and bounded). Each run kind's own config model lives with its run body in convlab/runs/; these are the pieces
several kinds (and library functions) share, and their defaults are the only defaults: a library function that
takes one of them (reference_flow, lipschitz_estimate, make_perturbation, ResidualBlock, VelocityNet, train)
has no defaults of its own for what the block holds.

A run config is complete: it names the target, the interpolant, the solver and every training and
measurement setting, so a hash of it identifies the run (device and execution hints are not part of it).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

PositiveInt = Annotated[int, Field(ge=1)]
Probability = Annotated[float, Field(gt=0.0, lt=1.0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunConfig(Strict):
    """What every run kind has: one seed that drives every random draw, and a named target."""

    seed: Annotated[int, Field(ge=0, description="drives every random draw through named streams")] = 0
    target: Annotated[dict[str, Any], Field(description="a registry name and its parameters (`convlab targets`)")]

    @model_validator(mode="after")
    def _named_target(self) -> RunConfig:
        if "name" not in self.target:
            raise ValueError("target needs a 'name' (a registry entry, see `convlab targets`)")
        return self


class NetConfig(Strict):
    """MLP on [x, Fourier features of the time(s)]."""

    width: PositiveInt = 128
    depth: PositiveInt = 3
    activation: Literal["silu", "gelu", "relu", "tanh", "softplus"] = "silu"
    time_features: PositiveInt = 8
    # c(t) x added to the output, c linear in the time features and zero at initialisation: the exact field along
    # the normal space of a manifold is such a multiple of x, which the MLP must otherwise build in every direction.
    skip: bool = False


class OptimConfig(Strict):
    """Optimiser, schedule and regularisation of one training stage (convlab.models.training.train)."""

    optimizer: Literal["adam", "radam"] = "adam"
    lr: Annotated[float, Field(gt=0.0)] = 2e-3
    schedule: Literal["constant", "cosine"] = "cosine"
    warmup_steps: Annotated[int, Field(ge=0)] = 0
    steps: Annotated[int, Field(ge=0, description="optimiser steps")] = 2000
    batch_size: PositiveInt = 256
    grad_clip: (
        Annotated[float, Field(gt=0.0, description="max gradient norm (per network); null: no clipping")] | None
    ) = 1.0
    ema: Probability | None = None  # off: on short runs with a decaying lr it lags the weights (measured)
    weight_decay: Annotated[float, Field(ge=0.0)] = 0.0


class BlockConfig(Strict):
    """A residual block x + lip * g(x) of the neural JKO flow, g an MLP of spectral-normalised layers with ELU."""

    width: PositiveInt = 64
    depth: PositiveInt = 2
    lip: Annotated[float, Field(gt=0.0, lt=1.0, description="Lipschitz bound of the residual (< 1: invertible)")] = 0.9


class ReferenceConfig(Strict):
    """How the reference flow (the truth for coupled errors) is solved: K steps of rk4, or scipy's adaptive dop853."""

    solver: Literal["rk4", "dop853"] = "rk4"
    K: Annotated[int, Field(ge=16, description="rk4 steps")] = 2048
    grid: Literal["uniform", "quadratic"] = "quadratic"


class PerturbationConfig(Strict):
    """A seeded, known perturbation field delta (convlab.theory.perturbation) of size eps, drawn from the run's seed."""

    kind: Literal["fourier", "constant"] = "fourier"
    eps: Annotated[float, Field(ge=0.0, description="root mean square size of delta")] = 0.0
    n_features: Annotated[PositiveInt, Field(description="fourier only")] = 64
    lengthscale: Annotated[float, Field(gt=0.0, description="fourier only")] = 1.0


class LipschitzSearch(Strict):
    """How sup_x ||grad V(t, x)|| is searched: candidate draws, then gradient ascent from the best few."""

    n_samples: PositiveInt = 1024
    n_starts: PositiveInt = 8
    ascent_steps: Annotated[int, Field(ge=0)] = 100


def _solver_name(name: str) -> str:
    from convlab.solvers import SOLVERS  # the solver registry, so that a new solver needs no config edit

    if name not in SOLVERS:
        from convlab.registry import did_you_mean

        raise ValueError(f"unknown solver{did_you_mean(name, sorted(SOLVERS))}; known: {', '.join(sorted(SOLVERS))}")
    return name


def _interpolant_spec(spec):
    from convlab.interpolants import as_interpolant

    as_interpolant(spec)  # raises ValueError naming the problem
    return spec


def _solver_enum(schema: dict[str, Any]) -> None:
    """The JSON Schema of a solver name lists the registry's solvers (at schema time: a new solver needs no edit)."""
    from convlab.solvers import SOLVERS

    schema["enum"] = sorted(SOLVERS)


def _interpolant_enum(schema: dict[str, Any]) -> None:
    from convlab.interpolants import INTERPOLANTS

    for option in schema.get("anyOf", []):
        if option.get("type") == "string":
            option["enum"] = sorted(INTERPOLANTS)


SolverName = Annotated[
    str,
    AfterValidator(_solver_name),
    Field(description="a solver of convlab.solvers.SOLVERS", json_schema_extra=_solver_enum),
]
InterpolantSpec = Annotated[
    str | dict[str, Any],
    AfterValidator(_interpolant_spec),
    Field(description="linear, trig, follmer or {name: vp, S: ...}", json_schema_extra=_interpolant_enum),
]
GridName = Literal["uniform", "quadratic"]
DType = Literal["float32", "float64"]
