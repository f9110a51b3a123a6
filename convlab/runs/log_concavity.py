"""The 'log_concavity' run kind: -Hess log p_t of the OU marginal of an isotropic mixture at forward time t,
against the sandwich of docs/concepts/theory.md §6 (convlab.theory.pf_ode), with the switch time t*."""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
from pydantic import Field

from convlab.record import RunFailed
from convlab.runs import shared
from convlab.runs.config import PositiveInt, RunConfig
from convlab.runs.kind import Metric, RunContext, RunKind
from convlab.runs.memory import Need, jacobians, target_of
from convlab.runs.pf_ode import COMPONENT_STD, SUPPORT_RADIUS, T_STAR
from convlab.targets import make_target
from convlab.theory.pf_ode import log_concavity_bounds, mixture_radius_and_std, neg_hessian_log_density, switch_time


class LogConcavityRun(RunConfig):
    """-Hess log p_t of the OU marginal at forward time t against the sandwich of docs/concepts/theory.md §6."""

    kind: Literal["log_concavity"] = "log_concavity"
    t: Annotated[float, Field(gt=0.0, description="forward OU time")] = 0.5
    n_points: Annotated[PositiveInt, Field(description="draws of p_t and as many points between its components")] = 2000


def run_log_concavity(cfg: LogConcavityRun, ctx: RunContext) -> dict:
    """Extreme eigenvalues of -Hess log p_t over draws of p_t and midpoints between its components, beside the
    sandwich bounds and the switch time t*."""
    target = make_target(cfg.target)
    try:
        R, s = mixture_radius_and_std(target)
    except ValueError as e:
        raise RunFailed(str(e)) from None
    g = ctx.rng("log_concavity.points")
    f64, t, n, dev = torch.float64, cfg.t, cfg.n_points, ctx.device
    x1 = target.sample(n, generator=g, device=dev, dtype=f64)
    p_t = math.exp(-t) * x1 + math.sqrt(-math.expm1(-2 * t)) * torch.randn(
        n, target.ambient_dim, generator=g, device=dev, dtype=f64
    )
    # The lower bound is approached where the posterior over components is most spread: between the means.
    mu = math.exp(-t) * target.means.to(dev, f64)
    i, j = (torch.randint(mu.shape[0], (n,), generator=g, device=dev) for _ in range(2))
    lam = torch.rand(n, 1, generator=g, device=dev, dtype=f64)
    between = lam * mu[i] + (1 - lam) * mu[j]
    with ctx.stage("measure"), torch.no_grad():
        eig = torch.linalg.eigvalsh(neg_hessian_log_density(target, t, torch.cat([p_t, between])))
    lower, upper = log_concavity_bounds(R, s, t)
    lo, hi = float(eig.min()), float(eig.max())
    slack = 1e-9 * max(abs(lower), upper)  # round-off of the eigenvalues, not a tolerance on the claim
    return {
        "hess_min": lo,
        "hess_max": hi,
        "hess_bound_lower": lower,
        "hess_bound_upper": upper,
        "hess_min_gap": abs(1.0 - lo),
        "sandwich_holds": bool(lower - slack <= lo and hi <= upper + slack),
        "support_radius": R,
        "s": s,
        "t_star": switch_time(R, s),
        "strongly_log_concave": bool(lo > 0),
    }


def _hess(name: str, label: str, estimate: str, doc: str) -> Metric:
    return Metric(name, label, estimate, doc)


def memory(cfg: LogConcavityRun) -> list[Need]:
    """The Hessians of log p_t at the draws and the points between components, and their eigenvalues."""
    return [jacobians(("n_points",), 2 * cfg.n_points, target_of(cfg.target).ambient_dim)]


KIND = RunKind(
    name="log_concavity",
    config=LogConcavityRun,
    metrics=(
        _hess(
            "hess_min",
            r"$\lambda_{\min}(-\nabla^2 \log p_t)$",
            "lower_estimate",
            "smallest eigenvalue over the points (>= the true inf)",
        ),
        _hess(
            "hess_max",
            r"$\lambda_{\max}(-\nabla^2 \log p_t)$",
            "lower_estimate",
            "largest eigenvalue over the points (<= the true sup)",
        ),
        _hess("hess_bound_lower", "sandwich lower bound", "closed_form", "1/s_t^2 - e^{-2t} R^2 / s_t^4"),
        _hess("hess_bound_upper", "sandwich upper bound", "closed_form", "1/s_t^2, s_t^2 = e^{-2t} s^2 + 1 - e^{-2t}"),
        _hess("hess_min_gap", r"$|1 - \lambda_{\min}|$", "lower_estimate", "distance of hess_min from N(0, I)'s 1"),
        Metric(
            "sandwich_holds",
            "sandwich holds",
            "flag",
            "hess_bound_lower <= hess_min and hess_max <= hess_bound_upper (to round-off)",
        ),
        SUPPORT_RADIUS,
        COMPONENT_STD,
        T_STAR,
        Metric("strongly_log_concave", "strongly log-concave", "flag", "hess_min > 0"),
        shared.TIME_TOTAL,
    ),
    body=run_log_concavity,
    memory=memory,
)
