"""The 'stability' run kind: flows of V and V + delta from the same noise (arXiv 2311.11475). The measured coupled error
against the Gronwall bound integral_0^T exp(integral_t^T L~) eps_t dt (convlab.theory.regularity), with L~ the
Lipschitz profile of V + delta and eps_t = ||delta||_{L2(p_t)} from exact draws of p_t."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field

from convlab.fields import ExactField, PerturbedField
from convlab.interpolants import as_interpolant
from convlab.metrics import coupled_rms
from convlab.record import RunFailed
from convlab.runs import shared
from convlab.runs.config import InterpolantSpec, LipschitzSearch, PerturbationConfig, ReferenceConfig, RunConfig, core
from convlab.runs.early_stopping import INTEGRATED_LIPSCHITZ
from convlab.runs.kind import Artefact, Metric, RunContext, RunKind
from convlab.runs.memory import F64, Need, field, grid, jacobians, points, target_of
from convlab.solvers import reference_flow
from convlab.targets import make_target
from convlab.theory.perturbation import make_perturbation
from convlab.theory.regularity import lipschitz_profile, log_time_grid, stability_bound, trapezoid_tail


class VelocityError(PerturbationConfig):
    """The velocity error delta added to the exact velocity (a known, seeded field of size eps)."""

    eps: Annotated[float, Field(ge=0.0, description="root mean square size of delta")] = 0.1


class StabilityRun(RunConfig):
    """Flows of V and V + delta from the same noise: measured coupled error against the Gronwall bound."""

    kind: Literal["stability"] = "stability"
    interpolant: InterpolantSpec = "linear"
    T: Annotated[float, Field(gt=0.0, lt=1.0, description="end time")] = 0.999
    perturbation: VelocityError = VelocityError()
    n_coupled: Annotated[int, Field(ge=2, description="noise draws for the two flows")] = 2000
    n_mc: Annotated[int, Field(ge=2, description="draws of p_t for eps_t")] = 2000
    n_t: Annotated[int, Field(ge=3, description="quadrature times on [0, T], uniform in log(1 - t)")] = 24
    search: LipschitzSearch = LipschitzSearch()
    reference: ReferenceConfig = ReferenceConfig()


def run_stability(cfg: StabilityRun, ctx: RunContext) -> dict:
    """rms |Flow[V](z) - Flow[V + delta](z)| at T against the stability bound."""
    target, ip, T, f64 = make_target(cfg.target), as_interpolant(cfg.interpolant), cfg.T, torch.float64
    delta = make_perturbation(core(cfg.perturbation), D=target.ambient_dim, generator=ctx.rng("stability.delta"))
    field = ExactField(target, ip)
    z = torch.randn(
        cfg.n_coupled, target.ambient_dim, generator=ctx.rng("stability.noise"), device=ctx.device, dtype=f64
    )
    with ctx.stage("integrate"), torch.no_grad():
        x = ctx.shared("reference_flow", lambda: reference_flow(field, z, T=T, reference=core(cfg.reference)))
        x_pert = reference_flow(PerturbedField(field, delta), z, T=T, reference=core(cfg.reference))
        if not (torch.isfinite(x).all() and torch.isfinite(x_pert).all()):
            raise RunFailed("non-finite flow")
    with ctx.stage("search"):
        ts = log_time_grid(T, cfg.n_t)
        g = ctx.rng("stability.p_t")
        x1 = target.sample(cfg.n_mc, generator=g, device=ctx.device, dtype=f64)
        zt = torch.randn(cfg.n_mc, target.ambient_dim, generator=g, device=ctx.device, dtype=f64)
        eps_t = np.array(
            [float(delta(float(ip.a(t)) * zt + float(ip.b(t)) * x1).pow(2).sum(1).mean().sqrt()) for t in ts]
        )
        L = lipschitz_profile(
            target, ip, ts, generator=ctx.rng("stability.search"), search=core(cfg.search), perturbation=delta
        )
    measured = coupled_rms(x_pert, x)
    bound = stability_bound(ts, L, eps_t)
    return {
        **shared.coupled_values("coupled", measured, tail=True),
        "stability_bound": bound,
        "stability_bound_ratio": bound / measured.rms,
        "stability_bound_holds": bool(measured.ci_high <= bound),
        "eps_rms": float(np.sqrt(np.mean(eps_t**2))),
        "integrated_lipschitz": float(trapezoid_tail(ts, L)[0]),
    }


def memory(cfg: StabilityRun) -> list[Need]:
    """Two reference flows of n_coupled points, the draws of p_t, and the Lipschitz search's Jacobians."""
    target = target_of(cfg.target)
    D, search = target.ambient_dim, cfg.search
    return [
        points(("n_coupled",), cfg.n_coupled, D, F64, 12, "the exact and the perturbed flows"),
        field("n_coupled", target, cfg.n_coupled),
        points(("n_mc",), cfg.n_mc, D, F64, 4, "the draws of p_t"),
        jacobians(("search.n_samples",), 2 * search.n_samples + search.n_starts, D),
        grid("reference.K", cfg.reference.K),
    ]


KIND = RunKind(
    name="stability",
    config=StabilityRun,
    metrics=(
        *shared.COUPLED,
        Metric(
            "stability_bound",
            "stability bound",
            "lower_estimate",
            "integral_0^T exp(integral_t^T L~) eps_t dt; L~ is searched from below, so is the bound",
            unit="x",
        ),
        Metric(
            "stability_bound_ratio",
            "stability bound / coupled error",
            "lower_estimate",
            "how far the bound is above the error",
        ),
        Metric("stability_bound_holds", "stability bound holds", "flag", "coupled_ci_high <= stability_bound"),
        Metric(
            "eps_rms",
            r"$\varepsilon$ (rms over $t$)",
            "monte_carlo",
            "root mean square over the time grid of eps_t = ||delta||_{L2(p_t)}",
            unit="x",
        ),
        INTEGRATED_LIPSCHITZ,
        shared.TIME_TOTAL,
    ),
    body=run_stability,
    memory=memory,
    # Runs that differ only in the perturbation share the unperturbed flow per process.
    artefacts=(Artefact("reference_flow", ("seed", "target", "interpolant", "T", "n_coupled", "reference")),),
)
