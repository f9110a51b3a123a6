"""Metric declarations and record helpers that several run kinds share: one declaration per quantity, so a metric
that two kinds emit means the same thing, with the same label, in both (tests/runs checks it)."""

from __future__ import annotations

from typing import Any

from convlab.metrics import CoupledError
from convlab.metrics import sampled_w2 as sampled_w2_estimate
from convlab.runs.kind import Metric


def coupled(prefix: str, label: str, doc: str, *, tail: bool = False) -> tuple[Metric, ...]:
    """<prefix>_error (rms over pairs from the same noise: an upper bound on the W2 of the two laws) and its 95% CI;
    with `tail`, the per-path error's median, 90% / 99% quantiles and maximum and the top-1% share of the mean
    square (a few paths carrying the rms: the heavy-tail diagnostic of the report)."""
    out = (
        Metric(f"{prefix}_error", label, "monte_carlo", doc, unit="x"),
        Metric(
            f"{prefix}_ci_low", f"{label}, 95% CI low", "monte_carlo", f"lower 95% limit of {prefix}_error", unit="x"
        ),
        Metric(
            f"{prefix}_ci_high", f"{label}, 95% CI high", "monte_carlo", f"upper 95% limit of {prefix}_error", unit="x"
        ),
    )
    if not tail:
        return out
    path = label.replace(" (rms)", "")
    return (
        *out,
        Metric(f"{prefix}_median", f"{path}, median path", "monte_carlo", "median of the per-path errors", unit="x"),
        Metric(
            f"{prefix}_q90", f"{path}, 90% of paths", "monte_carlo", "90% quantile of the per-path errors", unit="x"
        ),
        Metric(
            f"{prefix}_q99", f"{path}, 99% of paths", "monte_carlo", "99% quantile of the per-path errors", unit="x"
        ),
        Metric(f"{prefix}_max", f"{path}, worst path", "monte_carlo", "largest per-path error", unit="x"),
        Metric(
            f"{prefix}_top1_share",
            "share of the mean square in the top 1% of paths",
            "monte_carlo",
            "0.01 when every path errs alike; near 1 when a few paths carry the rms",
        ),
    )


def coupled_values(prefix: str, err: CoupledError, *, tail: bool = False) -> dict[str, float]:
    out = {f"{prefix}_error": err.rms, f"{prefix}_ci_low": err.ci_low, f"{prefix}_ci_high": err.ci_high}
    if tail:
        out.update(
            {
                f"{prefix}_median": err.median,
                f"{prefix}_q90": err.q90,
                f"{prefix}_q99": err.q99,
                f"{prefix}_max": err.max,
                f"{prefix}_top1_share": err.top1_share,
            }
        )
    return out


COUPLED = coupled(
    "coupled",
    "coupled error (rms)",
    "rms |x_i - y_i| between the result under study and the exact one from the same noise",
    tail=True,
)
COUPLED_RESOLVED = Metric(
    "coupled_resolved",
    "coupled error resolved",
    "flag",
    "coupled_error is above float64 round-off (1e-10 of the flow's rms size)",
)
NFE = Metric("nfe", "field evaluations", "record", "evaluations of the field by the solver (counted, not assumed)")
EARLY_STOP_W2_UB = Metric(
    "early_stop_w2_ub",
    r"upper bound on $W_2(p_T, \nu)$",
    "closed_form",
    "W2(p_T, nu) <= this: the componentwise Bures coupling of p_T and the target",
    unit="x",
)
TIME_TOTAL = Metric("time_total_s", "wall time (s)", "record", "wall time of the run", unit="s")


def sampled_w2(name: str, label: str, when: str | None = None) -> tuple[Metric, ...]:
    """The exact W2 of n generated samples against n fresh target samples, beside the target's two-sample floor."""
    return (
        Metric(
            name,
            label,
            "sampled",
            "exact W2 between the generated samples and as many fresh target samples",
            unit="x",
            when=when,
        ),
        Metric(
            "w2_floor",
            "$W_2$ noise floor",
            "sampled",
            "mean W2 between two independent target samples of that size",
            unit="x",
            when=when,
        ),
        Metric(
            "w2_floor_sd",
            "sd of the $W_2$ noise floor",
            "sampled",
            "sd of the floor over its repeats",
            unit="x",
            when=when,
        ),
        Metric(
            "w2_resolved", "sampled $W_2$ resolved", "flag", "the sampled W2 > resolve_margin * w2_floor", when=when
        ),
    )


def measure_sampled_w2(name: str, samples, target, *, generator, repeats: int, margin: float) -> dict[str, Any]:
    """The metrics of `sampled_w2(name, ...)`: W2 of the samples against as many fresh target samples, the floor."""
    w2 = sampled_w2_estimate(samples, target, generator=generator, repeats=repeats, margin=margin)
    return {name: w2.w2, "w2_floor": w2.floor, "w2_floor_sd": w2.floor_sd, "w2_resolved": w2.resolved}


def run_sampled_w2(cfg, samples, target, ctx, stream: str) -> dict[str, Any]:
    """measure_sampled_w2('w2', ...) for a run whose config has n_w2, floor_repeats and resolve_margin: the first
    n_w2 samples, the floor's draws from the run's CPU stream `stream`; nothing when n_w2 is 0."""
    if not cfg.n_w2:
        return {}
    generator = ctx.rng(stream, "cpu")
    return measure_sampled_w2(
        "w2", samples[: cfg.n_w2], target, generator=generator, repeats=cfg.floor_repeats, margin=cfg.resolve_margin
    )
