"""Configuration blocks shared by the run kinds, validated by pydantic (unknown keys rejected, every field typed
and bounded). Each run kind's own config model lives with its run body in convlab/runs/; these are the pieces
several kinds share.

The numerical core never sees them: it takes plain arguments or small frozen dataclasses of its own (Net, Optim,
Block, Reference, PerturbationSpec, LipschitzSearch). A block that mirrors one declares it as CORE, takes its
defaults from it (written once, in the core) and becomes it with `core(block)`: the run layer is the one place that
translates a validated config into core calls.

A run config is complete: it names the target, the interpolant, the solver and every training and
measurement setting, so a hash of it identifies the run (device and execution hints are not part of it).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from convlab.interpolants import INTERPOLANTS, as_interpolant
from convlab.models.nets import Net
from convlab.models.residual import Block
from convlab.models.training import Optim
from convlab.registry import did_you_mean
from convlab.solvers import SOLVERS, Reference
from convlab.theory.perturbation import PerturbationSpec
from convlab.theory.regularity import LipschitzSearch as Search

PositiveInt = Annotated[int, Field(ge=1)]
Probability = Annotated[float, Field(gt=0.0, lt=1.0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    CORE: ClassVar[type | None] = None  # the core dataclass this block mirrors, field for field (see `core`)


def core(block: Strict):
    """The core dataclass a config block mirrors (its CORE), built from the block's values; nested blocks become
    their own CORE."""
    cls = type(block).CORE
    if cls is None:
        raise TypeError(f"{type(block).__name__} mirrors no core dataclass")
    return cls(**{f.name: _core_value(getattr(block, f.name)) for f in dataclasses.fields(cls)})


def _core_value(value):
    return core(value) if isinstance(value, Strict) and type(value).CORE is not None else value


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
    """MLP on [x, Fourier features of the time(s)] (convlab.models.nets.Net)."""

    CORE: ClassVar[type] = Net
    width: PositiveInt = Net.width
    depth: PositiveInt = Net.depth
    activation: Literal["silu", "gelu", "relu", "tanh", "softplus"] = Net.activation
    time_features: PositiveInt = Net.time_features
    skip: Annotated[bool, Field(description="add c(t) x to the output, c zero at initialisation")] = Net.skip


class OptimConfig(Strict):
    """Optimiser, schedule and regularisation of one training stage (convlab.models.training.Optim)."""

    CORE: ClassVar[type] = Optim
    optimizer: Literal["adam", "radam"] = Optim.optimizer
    lr: Annotated[float, Field(gt=0.0)] = Optim.lr
    schedule: Literal["constant", "cosine"] = Optim.schedule
    warmup_steps: Annotated[int, Field(ge=0)] = Optim.warmup_steps
    steps: Annotated[int, Field(ge=0, description="optimiser steps")] = Optim.steps
    batch_size: PositiveInt = Optim.batch_size
    grad_clip: (
        Annotated[float, Field(gt=0.0, description="max gradient norm (per network); null: no clipping")] | None
    ) = Optim.grad_clip
    ema: Probability | None = Optim.ema
    weight_decay: Annotated[float, Field(ge=0.0)] = Optim.weight_decay


class BlockConfig(Strict):
    """A residual block x + lip * g(x) of the neural JKO flow, g an MLP of spectral-normalised layers with ELU."""

    CORE: ClassVar[type] = Block
    width: PositiveInt = Block.width
    depth: PositiveInt = Block.depth
    lip: Annotated[float, Field(gt=0.0, lt=1.0, description="Lipschitz bound of the residual (< 1: invertible)")] = (
        Block.lip
    )


class ReferenceConfig(Strict):
    """How the reference flow (the truth for coupled errors) is solved: K steps of rk4, or scipy's adaptive dop853."""

    CORE: ClassVar[type] = Reference
    solver: Literal["rk4", "dop853"] = Reference.solver
    K: Annotated[int, Field(ge=16, description="rk4 steps")] = Reference.K
    grid: Literal["uniform", "quadratic"] = Reference.grid


class PerturbationConfig(Strict):
    """A seeded, known perturbation field delta (convlab.theory.perturbation) of size eps, drawn from the run's seed."""

    CORE: ClassVar[type] = PerturbationSpec
    kind: Literal["fourier", "constant"] = PerturbationSpec.kind
    eps: Annotated[float, Field(ge=0.0, description="root mean square size of delta")] = PerturbationSpec.eps
    n_features: Annotated[PositiveInt, Field(description="fourier only")] = PerturbationSpec.n_features
    lengthscale: Annotated[float, Field(gt=0.0, description="fourier only")] = PerturbationSpec.lengthscale


class LipschitzSearch(Strict):
    """How sup_x ||grad V(t, x)|| is searched: candidate draws, then gradient ascent from the best few."""

    CORE: ClassVar[type] = Search
    n_samples: PositiveInt = Search.n_samples
    n_starts: PositiveInt = Search.n_starts
    ascent_steps: Annotated[int, Field(ge=0)] = Search.ascent_steps


def _solver_name(name: str) -> str:
    if name not in SOLVERS:  # the solver registry, so that a new solver needs no config edit
        raise ValueError(f"unknown solver{did_you_mean(name, sorted(SOLVERS))}; known: {', '.join(sorted(SOLVERS))}")
    return name


def _interpolant_spec(spec):
    as_interpolant(spec)  # raises ValueError naming the problem
    return spec


def _solver_enum(schema: dict[str, Any]) -> None:
    """The JSON Schema of a solver name lists the registry's solvers (at schema time: a new solver needs no edit)."""
    schema["enum"] = sorted(SOLVERS)


def _interpolant_enum(schema: dict[str, Any]) -> None:
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
