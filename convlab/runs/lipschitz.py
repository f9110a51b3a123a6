"""The 'lipschitz' run kind: L_t = sup_x ||grad_x V(t, x)||_2 of a target's exact velocity at one time
(arXiv 2311.11475; the estimator is convlab.theory.regularity.lipschitz_estimate)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from convlab.interpolants import as_interpolant
from convlab.runs import shared
from convlab.runs.config import InterpolantSpec, LipschitzSearch, RunConfig, core
from convlab.runs.kind import Metric, RunContext, RunKind
from convlab.runs.memory import Need, jacobians, target_of
from convlab.runs.pf_ode import SUPPORT_RADIUS
from convlab.targets import make_target
from convlab.theory.pf_ode import support_radius
from convlab.theory.regularity import jacobian_coefficients, lipschitz_estimate


class LipschitzRun(RunConfig):
    """L_t = sup_x ||grad_x V(t, x)||_2 of a target's exact velocity at one time t < 1 (arXiv 2311.11475)."""

    kind: Literal["lipschitz"] = "lipschitz"
    interpolant: InterpolantSpec = "linear"
    t: Annotated[float, Field(ge=0.0, lt=1.0, description="time of the flow")] = 0.5
    search: LipschitzSearch = LipschitzSearch()


def run_lipschitz(cfg: LipschitzRun, ctx: RunContext) -> dict:
    """L_t at one t, beside what sampling p_t alone finds and the blow-up shape beta(t) = b (a b' - a' b) / a^3."""
    target, ip, t = make_target(cfg.target), as_interpolant(cfg.interpolant), cfg.t
    with ctx.stage("search"):
        est = lipschitz_estimate(target, ip, t, generator=ctx.rng("lipschitz.search"), search=core(cfg.search))
    return {
        "lipschitz": est.value,
        "lipschitz_sampled": est.sampled,
        "one_minus_t": 1.0 - t,
        "beta": jacobian_coefficients(ip, t)[1],
        "support_radius": support_radius(target),
        "degenerate": target.is_degenerate,
    }


DEGENERATE = Metric(
    "degenerate", "target without smoothing", "flag", "some component covariance is singular (atoms, subspaces)"
)


def memory(cfg: LipschitzRun) -> list[Need]:
    """The search's Jacobians: the candidates (draws of p_t and points between components) and the ascent."""
    D, search = target_of(cfg.target).ambient_dim, cfg.search
    return [jacobians(("search.n_samples",), 2 * search.n_samples + search.n_starts, D)]


KIND = RunKind(
    name="lipschitz",
    config=LipschitzRun,
    metrics=(
        Metric(
            "lipschitz",
            r"$L_t = \sup_x \|\nabla_x V(t, x)\|_2$",
            "lower_estimate",
            "searched from below: draws, then ascent",
        ),
        Metric(
            "lipschitz_sampled",
            r"$\max \|\nabla_x V\|_2$ over draws of $p_t$",
            "lower_estimate",
            "what draws of p_t alone find",
        ),
        Metric("one_minus_t", "$1 - t$", "closed_form", "distance of t from the data end"),
        Metric(
            "beta", r"$\beta(t) = b (a b' - a' b) / a^3$", "closed_form", "the blow-up shape: L_t ~ beta R^2 on atoms"
        ),
        SUPPORT_RADIUS,
        DEGENERATE,
        shared.TIME_TOTAL,
    ),
    body=run_lipschitz,
    memory=memory,
)
