"""The 'flow' run kind: integrate a target's exact velocity with a solver, no training.

Measures the coupled error against the reference flow from the same noise (the estimator that can see a
1/K rate), optionally the sampled W2 of the end points against the target beside its noise floor, and the
closed-form early-stopping bound.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field, model_validator

from convlab.fields import ExactField
from convlab.interpolants import as_interpolant
from convlab.metrics import coupled_rms, early_stopping_w2_bound
from convlab.record import RunFailed
from convlab.runs import shared
from convlab.runs.config import GridName, InterpolantSpec, PositiveInt, ReferenceConfig, RunConfig, SolverName, core
from convlab.runs.kind import Artefact, RunContext, RunKind
from convlab.runs.memory import F64, Need, field, grid, points, target_of, w2
from convlab.solvers import as_solver, integrate, reference_flow, time_grid
from convlab.targets import make_target

# Coupled errors below this fraction of the flow's rms size are float64 round-off, not truncation.
ROUND_OFF = 1e-10


class FlowRun(RunConfig):
    """Integrate the exact velocity of a target with a solver; measure against the reference flow and the target."""

    kind: Literal["flow"] = "flow"
    interpolant: InterpolantSpec = "linear"
    T: Annotated[float, Field(gt=0.0, le=1.0, description="end time")] = 1.0
    solver: SolverName = "euler"
    K: Annotated[PositiveInt, Field(description="solver steps")] = 16
    grid: GridName = "uniform"
    n_coupled: Annotated[int, Field(ge=2, description="noise draws for the coupled error")] = 2000
    n_w2: Annotated[int, Field(ge=0, description="end points in the sampled W2 and its floor (0: skip)")] = 0
    floor_repeats: Annotated[int, Field(ge=1)] = 3
    resolve_margin: Annotated[float, Field(ge=1.0, description="resolved: W2 > margin * floor")] = 2.0
    reference: ReferenceConfig = ReferenceConfig()

    @model_validator(mode="after")
    def _consistent(self) -> FlowRun:
        as_solver(self.solver).check(as_interpolant(self.interpolant), self.T)
        if self.n_w2 > self.n_coupled:
            raise ValueError(
                f"n_w2: the sampled W2 uses the first n_w2 of the n_coupled end points, so it needs "
                f"n_w2 <= n_coupled = {self.n_coupled} (got {self.n_w2})"
            )
        return self


def run_flow(cfg: FlowRun, ctx: RunContext) -> dict:
    """One solver at one K on one target: the coupled error against the reference flow (float64)."""
    target = make_target(cfg.target)
    field = ExactField(target, as_interpolant(cfg.interpolant))
    z = torch.randn(
        cfg.n_coupled, target.ambient_dim, generator=ctx.rng("flow.noise"), device=ctx.device, dtype=torch.float64
    )
    with ctx.stage("integrate"), torch.no_grad():
        truth = ctx.shared("reference_flow", lambda: reference_flow(field, z, T=cfg.T, reference=core(cfg.reference)))
        sol = integrate(field, z, time_grid(cfg.K, T=cfg.T, kind=cfg.grid), cfg.solver)
        if not (torch.isfinite(sol.x).all() and torch.isfinite(truth).all()):
            raise RunFailed("non-finite flow (is the field singular at T?)")
    with ctx.stage("measure"):
        err = coupled_rms(sol.x, truth)
        scale = coupled_rms(truth, torch.zeros_like(truth)).rms
        out = {
            **shared.coupled_values("coupled", err, tail=True),
            "coupled_resolved": err.rms > ROUND_OFF * max(scale, 1.0),
            "nfe": sol.nfe,
            "early_stop_w2_ub": early_stopping_w2_bound(target, field.interpolant, cfg.T),
        }
        out.update(shared.run_sampled_w2(cfg, sol.x, target, ctx, "flow.w2"))
    return out


def memory(cfg: FlowRun) -> list[Need]:
    """The flows of n_coupled points (the reference's rk4 stages, the solver's, the results; float64), the exact
    field's temporaries, the time grids, the exact W2."""
    target = target_of(cfg.target)
    return [
        points(("n_coupled",), cfg.n_coupled, target.ambient_dim, F64, 10, "the flows of the coupled error"),
        field("n_coupled", target, cfg.n_coupled),
        grid("K", cfg.K),
        grid("reference.K", cfg.reference.K),
        w2("n_w2", cfg.n_w2),
    ]


KIND = RunKind(
    name="flow",
    config=FlowRun,
    metrics=(
        *shared.COUPLED,
        shared.COUPLED_RESOLVED,
        shared.NFE,
        shared.EARLY_STOP_W2_UB,
        *shared.sampled_w2("w2", "$W_2$(samples, target)", when="n_w2 > 0"),
        shared.TIME_TOTAL,
    ),
    body=run_flow,
    memory=memory,
    # Runs of a K or solver sweep share one reference solve per process.
    artefacts=(Artefact("reference_flow", ("seed", "target", "interpolant", "T", "n_coupled", "reference")),),
)
