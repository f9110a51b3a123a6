"""The 'early_stopping' run kind: stopping the flow at T < 1 (arXiv 2311.11475). W2(p_T, nu) between closed-form bounds,
and the integrated Lipschitz constant on [0, T] that enters every stability bound (convlab.theory.regularity)."""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field

from convlab.interpolants import as_interpolant
from convlab.metrics import early_stopping_w2_bound, gaussian_w2_sq
from convlab.runs import shared
from convlab.runs.config import InterpolantSpec, LipschitzSearch, RunConfig, core
from convlab.runs.kind import Metric, RunContext, RunKind
from convlab.runs.lipschitz import DEGENERATE
from convlab.runs.memory import F64, Need, jacobians, points, target_of
from convlab.targets import make_target
from convlab.theory.regularity import lipschitz_profile, log_time_grid


class EarlyStoppingRun(RunConfig):
    """Stopping the flow at T < 1: bounds on W2(p_T, nu) and the integrated Lipschitz constant on [0, T]."""

    kind: Literal["early_stopping"] = "early_stopping"
    interpolant: InterpolantSpec = "linear"
    T: Annotated[float, Field(gt=0.0, lt=1.0, description="early-stopping time")] = 0.99
    n_mc: Annotated[int, Field(ge=2, description="draws of p_T for the distance-to-support lower bound")] = 4000
    n_t: Annotated[int, Field(ge=3, description="quadrature times on [0, T], uniform in log(1 - t)")] = 24
    search: LipschitzSearch = LipschitzSearch()


def run_early_stopping(cfg: EarlyStoppingRun, ctx: RunContext) -> dict:
    """W2(p_T, nu) between closed-form bounds, and integral_0^T L_t dt on a grid uniform in log(1 - t).

    Upper: the componentwise Bures coupling (metrics.early_stopping_w2_bound). Lower: Gelbrich's moment bound
    and, for atoms, the rms distance from X_T to the support (every coupling moves X_T at least that far)."""
    target, ip, T, f64 = make_target(cfg.target), as_interpolant(cfg.interpolant), cfg.T, torch.float64
    a, b = float(ip.a(T)), float(ip.b(T))
    m, cov = target.mean(), target.covariance()
    lower = math.sqrt(gaussian_w2_sq(b * m, a * a * torch.eye(len(m), dtype=f64) + b * b * cov, m, cov))
    out = {
        "one_minus_T": 1.0 - T,
        "early_stop_w2_ub": early_stopping_w2_bound(target, ip, T),
        "early_stop_w2_lb_gelbrich": lower,
        "degenerate": target.is_degenerate,
    }
    if bool((target.cov.eigenvalues() == 0).all()):
        g = ctx.rng("early_stopping.p_T")
        x1 = target.sample(cfg.n_mc, generator=g, device=ctx.device, dtype=f64)
        x_T = a * torch.randn(cfg.n_mc, target.ambient_dim, generator=g, device=ctx.device, dtype=f64) + b * x1
        out["early_stop_w2_lb_support"] = float(
            torch.cdist(x_T, target.means.to(ctx.device, f64)).min(1).values.pow(2).mean().sqrt()
        )
    out["early_stop_w2_lb"] = max(v for k, v in out.items() if k.startswith("early_stop_w2_lb_"))
    with ctx.stage("search"):
        ts = log_time_grid(T, cfg.n_t)
        L = lipschitz_profile(target, ip, ts, generator=ctx.rng("early_stopping.search"), search=core(cfg.search))
    out.update(integrated_lipschitz=float(np.trapezoid(L, ts)), lipschitz_T=float(L[-1]))
    return out


INTEGRATED_LIPSCHITZ = Metric(
    "integrated_lipschitz",
    r"$\int_0^T L_t\,dt$",
    "lower_estimate",
    "integral of the Lipschitz profile over [0, T] (trapezoid on a log(1 - t) grid)",
)


def memory(cfg: EarlyStoppingRun) -> list[Need]:
    """The draws of p_T with their distances to every atom, the covariance, and the Lipschitz search's Jacobians."""
    target = target_of(cfg.target)
    D, search = target.ambient_dim, cfg.search
    atoms = getattr(target, "n_components", 1)
    return [
        points(("n_mc",), cfg.n_mc, D + atoms, F64, 2, "the draws of p_T and their distances to the atoms"),
        Need(("target",), 3.0 * D * D * F64, f"the target's {D} x {D} covariance"),
        jacobians(("search.n_samples",), 2 * search.n_samples + search.n_starts, D),
    ]


KIND = RunKind(
    name="early_stopping",
    config=EarlyStoppingRun,
    metrics=(
        Metric("one_minus_T", "$1 - T$", "closed_form", "distance of the stopping time from the data end"),
        shared.EARLY_STOP_W2_UB,
        Metric(
            "early_stop_w2_lb",
            r"lower bound on $W_2(p_T, \nu)$",
            "closed_form",
            "the larger of the lower bounds below",
            unit="x",
        ),
        Metric(
            "early_stop_w2_lb_gelbrich",
            "Gelbrich lower bound",
            "closed_form",
            "W2 between the moment-matched Gaussians",
            unit="x",
        ),
        Metric(
            "early_stop_w2_lb_support",
            "distance-to-support lower bound",
            "monte_carlo",
            "rms distance of X_T to the atoms",
            unit="x",
            when="atoms (every component covariance zero)",
        ),
        DEGENERATE,
        INTEGRATED_LIPSCHITZ,
        Metric("lipschitz_T", "$L_T$", "lower_estimate", "the Lipschitz constant at T"),
        shared.TIME_TOTAL,
    ),
    body=run_early_stopping,
    memory=memory,
)
