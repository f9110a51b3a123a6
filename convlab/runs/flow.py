"""The 'flow' run kind: integrate a target's exact velocity with a solver, no training.

Measures the coupled error against the reference flow from the same noise (the estimator that can see a
1/K rate), optionally the sampled W2 of the end points against the target beside its noise floor, and the
closed-form early-stopping bound.
"""

from __future__ import annotations

import math
import time

import torch

from convlab.config import FlowRun
from convlab.device import generator, resolve_device
from convlab.fields import ExactField
from convlab.interpolants import as_interpolant
from convlab.metrics import coupled_rms, early_stopping_w2_bound, sampled_w2
from convlab.record import RunRecord
from convlab.runs.cache import memo_key, memoised
from convlab.solvers import integrate, reference_flow, time_grid
from convlab.targets import make_target

# Coupled errors below this fraction of the flow's rms size are float64 round-off, not truncation.
ROUND_OFF = 1e-10


_REFERENCES: dict[str, torch.Tensor] = {}


def _reference(cfg: FlowRun, field, z: torch.Tensor, device) -> torch.Tensor:
    """The reference flow, shared by the runs of a K sweep in one process (it depends on the key only)."""
    ref = cfg.reference
    key = memo_key(cfg, {"seed", "target", "interpolant", "T", "n", "reference"}, device)
    return memoised(_REFERENCES, key, lambda: reference_flow(field, z, T=cfg.T, method=ref.method, steps=ref.steps, grid=ref.grid))


def run_flow(cfg: FlowRun | dict, *, device: str | torch.device = "auto", teacher_cache=None) -> RunRecord:
    """One solver at one K on one target: the coupled error against the reference flow (float64)."""
    cfg = cfg if isinstance(cfg, FlowRun) else FlowRun.model_validate(cfg)
    device = resolve_device(device)
    start = time.perf_counter()
    target = make_target(cfg.target)
    field = ExactField(target, as_interpolant(cfg.interpolant))
    g = generator(cfg.seed, "flow.noise", device)
    z = torch.randn(cfg.n, target.ambient_dim, generator=g, device=device, dtype=torch.float64)
    with torch.no_grad():
        truth = _reference(cfg, field, z, device)
        sol = integrate(field, z, time_grid(cfg.K, T=cfg.T, kind=cfg.grid), cfg.solver)
    if not (torch.isfinite(sol.x).all() and torch.isfinite(truth).all()):
        return RunRecord("failed", {}, {"device": str(device)}, stage="integrate", reason="non-finite flow (is the field singular at T?)")
    err = coupled_rms(sol.x, truth)
    scale = coupled_rms(truth, torch.zeros_like(truth)).rms
    metrics = {
        "coupled_error": err.rms, "coupled_ci_low": err.ci_low, "coupled_ci_high": err.ci_high,
        "coupled_resolved": err.rms > ROUND_OFF * max(scale, 1.0), "nfe": sol.nfe,
        "early_stop_w2_ub": early_stopping_w2_bound(target, field.interpolant, cfg.T),
    }
    if cfg.n_w2:
        w2 = sampled_w2(sol.x[: cfg.n_w2], target, generator=generator(cfg.seed, "flow.w2", torch.device("cpu")),
                        repeats=cfg.floor_repeats, margin=cfg.resolve_margin)
        metrics.update(w2=w2.w2, w2_floor=w2.floor, w2_floor_sd=w2.floor_sd, w2_resolved=w2.resolved, w2_n=w2.n)
    bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        return RunRecord("failed", {}, {"device": str(device)}, stage="measure", reason=f"non-finite {', '.join(bad)}")
    return RunRecord("ok", metrics, {"device": str(device), "time_total_s": time.perf_counter() - start})
