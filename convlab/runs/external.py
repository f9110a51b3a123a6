"""The 'external' run kind: a flow model from outside convlab (convlab.evaluate) solved with a solver at K steps
and measured against the exact truth of an analytic target.

The model comes from a factory `module:attribute` (or `path/to/file.py:attribute`), called with the checkpoint's
path; the checkpoint is pinned by its SHA-256. Everything about the model is checked when the study is planned --
the factory imports and returns a model, the checkpoint has its SHA-256 and loads, the model answers a probe batch
with finite values of the right shape, dtype and device, and its declared convention maps onto convlab's on the
exact field to 1e-10 -- so a broken model is refused before anything runs. Per run: the K-step solve against the
model's own reference flow (model_solver_error: the discretisation error, whose rate in K a study fits), against
the exact flow from the same noise (model_e2e_error), the model's flow error and velocity error (the same for
every K: solved once per process and shared), and the sampled W2 of the K-step samples beside the target's floor.
"""

from __future__ import annotations

import functools
import json
from typing import Annotated, Literal

import torch
from pydantic import Field, field_validator, model_validator

from convlab.evaluate import ModelError, ModelField, check_convention, check_model, model_interpolant
from convlab.evaluate.convention import ConventionError
from convlab.evaluate.loading import load_model, resolve
from convlab.fields import ExactField
from convlab.metrics import coupled_rms
from convlab.pipeline.measure import velocity_l2_error
from convlab.record import RunFailed
from convlab.runs import shared
from convlab.runs.config import (
    DType,
    GridName,
    InterpolantSpec,
    PositiveInt,
    ReferenceConfig,
    RunConfig,
    SolverName,
    Strict,
    core,
)
from convlab.runs.kind import Artefact, Metric, RunContext, RunKind
from convlab.runs.memory import DTYPE_BYTES, F64, Need, field, grid, points, target_of, w2
from convlab.solvers import integrate, reference_flow, time_grid
from convlab.targets import make_target

SHA256 = r"^[0-9a-fA-F]{64}$"


class ModelConfig(Strict):
    """Where the model comes from: factory(checkpoint) -> u(s, x), a callable of the model's time s ((n,) tensor)
    and points x ((n, D)) returning its velocity."""

    factory: Annotated[str, Field(description="'module:attribute' or 'path/to/file.py:attribute'")]
    checkpoint: Annotated[str | None, Field(description="a file the factory loads (relative to the working dir)")] = (
        None
    )
    sha256: Annotated[str | None, Field(pattern=SHA256, description="the checkpoint's SHA-256")] = None


class ModelReference(ReferenceConfig):
    """The model's and the exact flow's reference solves: rk4 with 512 steps on the quadratic grid (a float32 model's
    rounding, not the reference's truncation, is then the floor of model_solver_error)."""

    K: Annotated[int, Field(ge=16, description="rk4 steps")] = 512


class ExternalRun(RunConfig):
    """A model from outside convlab, solved with `solver` in K steps, against the exact field of the target."""

    kind: Literal["external"] = "external"
    model: ModelConfig
    schedule: Annotated[
        InterpolantSpec | str,
        Field(description="a convlab interpolant (flow_matching's CondOT path is 'linear'), or 'module:attribute' "),
    ] = "linear"
    noise_at: Annotated[Literal[0, 1], Field(description="the model's time at which its noise sits")] = 0
    T: Annotated[float, Field(gt=0.0, le=1.0, description="end time")] = 1.0
    solver: SolverName = "euler"
    K: Annotated[PositiveInt, Field(description="solver steps")] = 16
    grid: GridName = "uniform"
    dtype: Annotated[DType, Field(description="the model's dtype")] = "float32"
    n_coupled: Annotated[int, Field(ge=2, description="noise draws for the coupled errors")] = 2000
    n_velocity: Annotated[int, Field(ge=2, description="(t, x) draws of the velocity error")] = 4000
    n_w2: Annotated[int, Field(ge=0, description="K-step samples in the sampled W2 and its floor (0: skip)")] = 0
    floor_repeats: Annotated[int, Field(ge=1)] = 3
    resolve_margin: Annotated[float, Field(ge=1.0, description="resolved: W2 > margin * floor")] = 2.0
    reference: ModelReference = ModelReference()

    @field_validator("schedule")
    @classmethod
    def _schedule_resolves(cls, value):
        if isinstance(value, str) and ":" in value:
            try:
                resolve(value)
            except ModelError as err:
                raise ValueError(str(err)) from err
        return value

    @model_validator(mode="after")
    def _measurable(self) -> ExternalRun:
        """The model loads and answers, and its convention holds on the exact field: checked at plan time."""
        if self.n_w2 > self.n_coupled:
            raise ValueError("n_w2: the sampled W2 uses K-step samples of the noise draws: n_w2 <= n_coupled")
        target = json.dumps(self.target, sort_keys=True)
        problem = _model_problem(
            self.model.model_dump_json(), target, json.dumps(self.schedule), self.noise_at, self.dtype
        )
        if problem is not None:
            raise ValueError(f"model: {problem}")
        return self


@functools.lru_cache(maxsize=64)
def _model_problem(model: str, target: str, schedule: str, noise_at: int, dtype: str) -> str | None:
    """Why a model cannot be measured (None: it can), checked once per distinct model, target and convention:
    the runs of a K or solver sweep share the answer."""
    try:
        target_ = target_of(json.loads(target))
    except (ValueError, TypeError):
        return None  # the planner names the target's problem itself
    spec = json.loads(model)
    try:
        loaded = load_model(spec["factory"], spec["checkpoint"], spec["sha256"])
        check_model(loaded, target_.ambient_dim, device=torch.device("cpu"), dtype=getattr(torch, dtype))
        check_convention(target_, _schedule(json.loads(schedule)), noise_at)
    except (ModelError, ConventionError) as err:
        return str(err)
    return None


def _schedule(spec):
    return resolve(spec) if isinstance(spec, str) and ":" in spec else spec


def run_external(cfg: ExternalRun, ctx: RunContext) -> dict:
    target, device, dtype = make_target(cfg.target), ctx.device, getattr(torch, cfg.dtype)
    if device.type == "cpu":  # the model the plan loaded and probed
        model = load_model(cfg.model.factory, cfg.model.checkpoint, cfg.model.sha256)
    else:  # a factory that takes `device=` builds the model there; one that does not must answer there anyway
        model = load_model(cfg.model.factory, cfg.model.checkpoint, cfg.model.sha256, str(device))
        try:
            check_model(model, target.ambient_dim, device=device, dtype=dtype)
        except ModelError as err:
            note = "a factory that takes device= is given the run's device"
            raise RunFailed(f"model on {device}: {err} ({note})") from err
    schedule = _schedule(cfg.schedule)
    interpolant = model_interpolant(schedule, cfg.noise_at)
    model_field, exact = ModelField(model, interpolant, cfg.noise_at), ExactField(target, interpolant)
    z = target.noise(cfg.n_coupled, generator=ctx.rng("external.noise"), device=device, dtype=dtype)
    reference = core(cfg.reference)
    with ctx.stage("integrate"), torch.no_grad():
        model_flow = ctx.shared("model_flow", lambda: reference_flow(model_field, z, T=cfg.T, reference=reference))
        exact_flow = ctx.shared("exact_flow", lambda: reference_flow(exact, z.double(), T=cfg.T, reference=reference))
        sol = integrate(model_field, z, time_grid(cfg.K, T=cfg.T, kind=cfg.grid), cfg.solver)
        if not (torch.isfinite(sol.x).all() and torch.isfinite(model_flow).all()):
            raise RunFailed("non-finite flow of the model")
    with ctx.stage("measure"), torch.no_grad():
        out = {
            **shared.coupled_values("model_solver", coupled_rms(sol.x.double(), model_flow.double())),
            **shared.coupled_values("model_e2e", coupled_rms(sol.x.double(), exact_flow)),
            "model_flow_error": ctx.shared(
                "model_flow_error", lambda: coupled_rms(model_flow.double(), exact_flow).rms
            ),
            "model_velocity_l2_error": ctx.shared(
                "model_velocity_l2_error",
                lambda: velocity_l2_error(
                    model_field,
                    target,
                    T=cfg.T,
                    n=cfg.n_velocity,
                    generator=ctx.rng("external.velocity"),
                    device=device,
                    dtype=dtype,
                ),
            ),
            "nfe": sol.nfe,
        }
        out.update(shared.run_sampled_w2(cfg, sol.x, target, ctx, "external.w2"))
    return out


def memory(cfg: ExternalRun) -> list[Need]:
    """The flows of n_coupled points (the model's and the exact reference solves, the solver's), the exact field's
    temporaries, the time grids, the exact W2. The model's own activations are not known here."""
    target, itemsize = target_of(cfg.target), DTYPE_BYTES[cfg.dtype]
    return [
        points(("n_coupled",), cfg.n_coupled, target.ambient_dim, itemsize, 10, "the model's flows"),
        points(("n_coupled",), cfg.n_coupled, target.ambient_dim, F64, 6, "the exact flow"),
        field("n_coupled", target, cfg.n_coupled),
        field("n_velocity", target, cfg.n_velocity),
        grid("K", cfg.K),
        grid("reference.K", cfg.reference.K),
        w2("n_w2", cfg.n_w2),
    ]


_MODEL = ("seed", "target", "model", "schedule", "noise_at", "T", "dtype", "n_coupled", "reference")

KIND = RunKind(
    name="external",
    config=ExternalRun,
    metrics=(
        *shared.coupled(
            "model_solver",
            "model solver error (rms)",
            "Solver_K[u](z) vs a reference solve of the same model: the discretisation error",
        ),
        *shared.coupled("model_e2e", "model end-to-end error (rms)", "Solver_K[u](z) vs the exact flow of z"),
        Metric(
            "model_flow_error",
            "model flow error (rms)",
            "monte_carlo",
            "Flow[u](z) vs Flow[V](z): what the model's velocity error does to the flow",
            unit="x",
        ),
        Metric(
            "model_velocity_l2_error",
            r"model velocity error $\|u - V\|_{L^2}$",
            "monte_carlo",
            "the model against the exact velocity, t ~ U[0, T], x ~ p_t",
            unit="x",
        ),
        shared.NFE,
        *shared.sampled_w2("w2", "$W_2$(samples, target)", when="n_w2 > 0"),
        shared.TIME_TOTAL,
    ),
    body=run_external,
    memory=memory,
    # Runs of a K or solver sweep over one model share its reference flow, the exact flow and the velocity error.
    artefacts=(
        Artefact("model_flow", _MODEL),
        Artefact("exact_flow", ("seed", "target", "schedule", "noise_at", "T", "n_coupled", "reference")),
        Artefact("model_flow_error", _MODEL),
        Artefact("model_velocity_l2_error", (*_MODEL, "n_velocity")),
    ),
)
