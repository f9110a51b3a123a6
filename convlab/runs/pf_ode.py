"""The 'pf_ode' run kind: the OU probability-flow ODE of arXiv 2510.17608 on exact mixture scores
(convlab.theory.pf_ode).

The reverse ODE over horizon S is the vp flow read in its own time, so K uniform steps h = (S - s_min) / K of it
are K uniform steps of a solver on the vp field (`euler`, or `exp_score`, the exponential integrator with the
score frozen). Everything is coupled through one noise draw W ~ N(0, I) and one data draw X1 ~ nu:
X_S = e^{-S} X1 + sqrt(1 - e^{-2S}) W is an exact draw of p_S, so Flow(X_S) is an exact draw of nu and

- coupled_error  = rms |Y_K(W) - Flow(W)|      the discretisation (and injected score) error, O(h) (+ O(eps))
- init_error     = rms |Flow(W) - Flow(X_S)|   the initialisation term, an upper bound on W2(Flow#N(0,I), nu)
- init_w2_paired = exact W2 between the clouds Flow(W) and Flow(X_S): at most init_error, floor-limited (n)
- sampler_w2_ub  = rms |Y_K(W) - Flow(X_S)|    an upper bound on the W2 of the sampler's law to nu

Flow is the exact reverse ODE solved by the reference solver. For a single Gaussian target (and an affine score
error) the sampler is an affine map, so its law and W2 are exact (sampler_w2, init_w2).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Annotated, Literal

import torch
from pydantic import Field, model_validator

from convlab.fields import ExactField, PerturbedField
from convlab.interpolants import VP
from convlab.metrics import coupled_rms, exact_w2, gaussian_w2_sq
from convlab.record import RunFailed
from convlab.runs import shared
from convlab.runs.config import PerturbationConfig, PositiveInt, ReferenceConfig, RunConfig, SolverName, core
from convlab.runs.kind import Artefact, Metric, RunContext, RunKind
from convlab.runs.memory import F64, Need, field, grid, points, target_of
from convlab.solvers import integrate, reference_flow, time_grid
from convlab.targets import make_target
from convlab.theory.perturbation import make_perturbation
from convlab.theory.pf_ode import mixture_radius_and_std, ou_end_time, switch_time


class PFODERun(RunConfig):
    """The OU probability-flow ODE over horizon S, K solver steps on the exact (or perturbed) score
    (arXiv 2510.17608)."""

    kind: Literal["pf_ode"] = "pf_ode"
    S: Annotated[float, Field(gt=0.0, description="horizon of the forward OU process")] = 8.0
    s_min: Annotated[float, Field(ge=0.0, description="forward time where the reverse ODE stops (early stopping)")] = (
        0.0
    )
    solver: SolverName = "exp_score"
    K: Annotated[PositiveInt, Field(description="solver steps, h = (S - s_min) / K")] = 64
    score_error: Annotated[PerturbationConfig, Field(description="a known field added to the score")] = (
        PerturbationConfig()
    )
    n_coupled: Annotated[int, Field(ge=2, description="noise (and data) draws")] = 2000
    reference: ReferenceConfig = ReferenceConfig()

    @model_validator(mode="after")
    def _consistent(self) -> PFODERun:
        if self.s_min >= self.S:
            raise ValueError(f"s_min: must be below the horizon S = {self.S} (got {self.s_min})")
        return self


def _gaussian_law(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of an affine map's image of N(0, I) from its images of 0, e_1, ..., e_D."""
    A = points[1:] - points[0]
    return points[0], A.T @ A


def run_pf_ode(cfg: PFODERun, ctx: RunContext) -> dict:
    """One sampler (solver, K, S, eps) on one target: coupled errors against the exact flow (float64)."""
    target = make_target(cfg.target)
    D, S, f64, n, dev = target.ambient_dim, cfg.S, torch.float64, cfg.n_coupled, ctx.device
    err = cfg.score_error
    delta = make_perturbation(core(err), D=D, generator=ctx.rng("pf_ode.score_error"))
    exact = ExactField(target, VP(S))
    field = exact if err.eps == 0 else PerturbedField(exact, delta, on="score")
    w = torch.randn(n, D, generator=ctx.rng("pf_ode.noise"), device=dev, dtype=f64)
    x1 = target.sample(n, generator=ctx.rng("pf_ode.data"), device=dev, dtype=f64)
    x_S = math.exp(-S) * x1 + math.sqrt(-math.expm1(-2 * S)) * w
    # The sampler of a Gaussian target is affine, so pushing 0 and the basis vectors gives its law exactly.
    single = target.n_components == 1
    basis = (
        torch.cat([torch.zeros(1, D, dtype=f64, device=dev), torch.eye(D, dtype=f64, device=dev)]) if single else w[:0]
    )
    affine = single and (err.eps == 0 or err.kind == "constant")
    T = ou_end_time(S, cfg.s_min)
    grid = time_grid(cfg.K, T=T)
    with ctx.stage("integrate"), torch.no_grad():
        flows = ctx.shared(
            "reference_flow",
            lambda: reference_flow(exact, torch.cat([w, x_S, basis]), T=T, reference=core(cfg.reference)),
        )
        flow_w, flow_xS, flow_basis = flows[:n], flows[n : 2 * n], flows[2 * n :]
        sol = integrate(field, torch.cat([w, basis]), grid, cfg.solver)
        y, y_basis = sol.x[:n], sol.x[n:]
        y_exact_score = integrate(exact, w, grid, cfg.solver).x if err.eps > 0 else y
        if not (torch.isfinite(y).all() and torch.isfinite(flows).all()):
            raise RunFailed("non-finite sampler or reference (step too large for this target?)")
    with ctx.stage("measure"):
        out = {
            "h": (S - cfg.s_min) / cfg.K,
            "nfe": sol.nfe,
            **shared.coupled_values("coupled", coupled_rms(y, flow_w), tail=True),
            "init_error": coupled_rms(flow_w, flow_xS).rms,
            "init_coupling": coupled_rms(w, x_S).rms,
            # Exact OT between the two flowed clouds: re-pairs the points a small start difference sent to
            # different modes, which dominate the pathwise rms when the flow nearly tears (separated modes).
            "init_w2_paired": exact_w2(flow_w, flow_xS),
            "sampler_w2_ub": coupled_rms(y, flow_xS).rms,
            "score_error_rms": float(delta(flow_xS).pow(2).sum(1).mean().sqrt()),
        }
        if err.eps > 0:
            out["score_error_effect"] = coupled_rms(y, y_exact_score).rms
        if affine:
            m, cov = target.mean(), target.covariance()
            out["sampler_w2"] = math.sqrt(gaussian_w2_sq(*_gaussian_law(y_basis), m, cov))
            out["init_w2"] = math.sqrt(gaussian_w2_sq(*_gaussian_law(flow_basis), m, cov))
        try:
            R, s = mixture_radius_and_std(target)
            out.update(support_radius=R, s=s, t_star=switch_time(R, s))
        except ValueError:
            pass  # not an isotropic mixture with one shared variance: no sandwich, no switch time
    return out


SANDWICH = "isotropic components with one shared variance"
SUPPORT_RADIUS = Metric(
    "support_radius",
    "support radius $R$",
    "closed_form",
    "max_k |mu_k - mean|, the radius of the component means",
    unit="x",
)
COMPONENT_STD = Metric(
    "s", "component std $s$", "closed_form", "the shared standard deviation of the components", unit="x", when=SANDWICH
)
T_STAR = Metric(
    "t_star",
    "switch time $t^*$",
    "closed_form",
    "p_t is strongly log-concave for t > t* = log(1 + R^2 - s^2) / 2",
    when=SANDWICH,
)


def memory(cfg: PFODERun) -> list[Need]:
    """The flows of the noise, the forward-noised data and (one Gaussian) the basis, with the solvers' stages
    (float64); the exact field's temporaries; the time grids."""
    target = target_of(cfg.target)
    D = target.ambient_dim
    n = 2 * cfg.n_coupled + (D + 1 if target.n_components == 1 else 0)
    return [
        points(("n_coupled",), n, D, F64, 12, "the sampler's and the reference's flows"),
        field("n_coupled", target, n),
        grid("K", cfg.K),
        grid("reference.K", cfg.reference.K),
    ]


KIND = RunKind(
    name="pf_ode",
    config=PFODERun,
    metrics=(
        Metric("h", "step $h = (S - s_{min})/K$", "closed_form", "the step in OU time"),
        shared.NFE,
        *shared.COUPLED,
        Metric(
            "init_error",
            "initialisation error (rms)",
            "monte_carlo",
            "rms |Flow(W) - Flow(X_S)|: starting from N(0, I) instead of p_S",
            unit="x",
        ),
        Metric("init_coupling", "start difference (rms)", "monte_carlo", "rms |W - X_S|", unit="x"),
        Metric(
            "init_w2_paired",
            "$W_2$(Flow(W), Flow($X_S$))",
            "sampled",
            "exact W2 between the two flowed clouds (at most init_error)",
            unit="x",
        ),
        Metric(
            "sampler_w2_ub",
            r"upper bound on $W_2$(sampler, $\nu$)",
            "monte_carlo",
            "rms |Y_K(W) - Flow(X_S)|",
            unit="x",
        ),
        Metric(
            "score_error_rms",
            "score error (rms)",
            "monte_carlo",
            "rms of the injected score error over draws of the target",
            unit="x",
        ),
        Metric(
            "score_error_effect",
            "effect of the score error (rms)",
            "monte_carlo",
            "rms |Y_K(W) - Y_K(W) with the exact score|",
            unit="x",
            when="score_error.eps > 0",
        ),
        Metric(
            "sampler_w2",
            r"$W_2$(sampler, $\nu$)",
            "closed_form",
            "exact W2 of the sampler's law to the target",
            unit="x",
            when="one Gaussian, and an exact or constant score error",
        ),
        Metric(
            "init_w2",
            r"$W_2$(Flow#N(0, I), $\nu$)",
            "closed_form",
            "exact W2 of the exact flow's law from N(0, I) to the target",
            unit="x",
            when="one Gaussian, and an exact or constant score error",
        ),
        replace(SUPPORT_RADIUS, when=SANDWICH),
        COMPONENT_STD,
        T_STAR,
        shared.TIME_TOTAL,
    ),
    body=run_pf_ode,
    memory=memory,
    # Runs of a K, solver or score-error sweep share the exact flows of their start points per process.
    artefacts=(Artefact("reference_flow", ("seed", "target", "S", "s_min", "n_coupled", "reference")),),
)
