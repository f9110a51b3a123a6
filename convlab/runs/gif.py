"""The 'lipschitz', 'early_stopping' and 'stability' run kinds: regularity of Gaussian interpolation flows
(seed 004) on exact mixture velocities. See convlab.lipschitz for the estimator of L_t."""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from convlab.config import EarlyStoppingRun, LipschitzRun, StabilityRun
from convlab.device import generator, resolve_device
from convlab.fields import ExactField, PerturbedField
from convlab.interpolants import as_interpolant
from convlab.lipschitz import lipschitz_estimate, lipschitz_profile, log_time_grid, stability_bound, trapezoid_tail
from convlab.metrics import coupled_rms, early_stopping_w2_bound, gaussian_w2_sq
from convlab.perturbation import make_perturbation
from convlab.record import RunRecord
from convlab.runs.cache import memo_key, memoised
from convlab.solvers import reference_flow
from convlab.targets import make_target


def _profile(target, ip, ts, search, g, perturbation=None) -> np.ndarray:
    return lipschitz_profile(target, ip, ts, generator=g, n_samples=search.n_samples, n_starts=search.n_starts,
                             ascent_steps=search.ascent_steps, perturbation=perturbation)


def _record(metrics: dict, device, start: float) -> RunRecord:
    bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        return RunRecord("failed", {}, {"device": str(device)}, stage="measure", reason=f"non-finite {', '.join(bad)}")
    return RunRecord("ok", metrics, {"device": str(device), "time_total_s": time.perf_counter() - start})


def run_lipschitz(cfg: LipschitzRun | dict, *, device: str | torch.device = "auto", teacher_cache=None) -> RunRecord:
    """L_t at one t, beside what sampling p_t alone finds and the blow-up shape beta(t) = b (a b' - a' b) / a^3."""
    cfg = cfg if isinstance(cfg, LipschitzRun) else LipschitzRun.model_validate(cfg)
    device = resolve_device(device)
    start = time.perf_counter()
    target, ip, t = make_target(cfg.target), as_interpolant(cfg.interpolant), cfg.t
    s = cfg.search
    est = lipschitz_estimate(target, ip, t, generator=generator(cfg.seed, "lipschitz.search", device),
                             n_samples=s.n_samples, n_starts=s.n_starts, ascent_steps=s.ascent_steps)
    a, b = float(ip.a(t)), float(ip.b(t))
    beta = b * (a * a * float(ip.db(t)) - b * float(ip.a_da(t))) / a**4
    radius = float((target.means - target.mean()).norm(dim=1).max())
    return _record({"lipschitz": est.value, "lipschitz_sampled": est.sampled, "one_minus_t": 1.0 - t, "beta": beta,
                    "support_radius": radius, "degenerate": target.is_degenerate}, device, start)


def run_early_stopping(cfg: EarlyStoppingRun | dict, *, device: str | torch.device = "auto", teacher_cache=None) -> RunRecord:
    """W2(p_T, nu) between closed-form bounds, and integral_0^T L_t dt on a grid uniform in log(1 - t).

    Upper: the componentwise Bures coupling (metrics.early_stopping_w2_bound). Lower: Gelbrich's moment bound
    and, for atoms, the rms distance from X_T to the support (every coupling moves X_T at least that far)."""
    cfg = cfg if isinstance(cfg, EarlyStoppingRun) else EarlyStoppingRun.model_validate(cfg)
    device = resolve_device(device)
    start = time.perf_counter()
    target, ip, T, f64 = make_target(cfg.target), as_interpolant(cfg.interpolant), cfg.T, torch.float64
    a, b = float(ip.a(T)), float(ip.b(T))
    m, cov = target.mean(), target.covariance()
    lower = math.sqrt(gaussian_w2_sq(b * m, a * a * torch.eye(len(m), dtype=f64) + b * b * cov, m, cov))
    metrics = {"one_minus_T": 1.0 - T, "w2_ub": early_stopping_w2_bound(target, ip, T), "w2_lb_gelbrich": lower,
               "degenerate": target.is_degenerate}
    if bool((target.cov.eigenvalues() == 0).all()):
        g = generator(cfg.seed, "early_stopping.p_T", device)
        x1 = target.sample(cfg.n, generator=g, device=device, dtype=f64)
        x_T = a * torch.randn(cfg.n, target.ambient_dim, generator=g, device=device, dtype=f64) + b * x1
        metrics["w2_lb_support"] = float(torch.cdist(x_T, target.means.to(device, f64)).min(1).values.pow(2).mean().sqrt())
    metrics["w2_lb"] = max(v for k, v in metrics.items() if k.startswith("w2_lb_"))
    ts = log_time_grid(T, cfg.n_t)
    L = _profile(target, ip, ts, cfg.search, generator(cfg.seed, "early_stopping.search", device))
    metrics.update(integrated_lipschitz=float(np.trapezoid(L, ts)), lipschitz_T=float(L[-1]))
    return _record(metrics, device, start)


_FLOWS: dict[str, torch.Tensor] = {}


def _unperturbed(cfg: StabilityRun, field, z, device) -> torch.Tensor:
    """Flow[V](z), shared by the runs that differ only in the perturbation in one process."""
    ref = cfg.reference
    key = memo_key(cfg, {"seed", "target", "interpolant", "T", "n", "reference"}, device)
    return memoised(_FLOWS, key, lambda: reference_flow(field, z, T=cfg.T, method=ref.method, steps=ref.steps, grid=ref.grid))


def run_stability(cfg: StabilityRun | dict, *, device: str | torch.device = "auto", teacher_cache=None) -> RunRecord:
    """rms |Flow[V](z) - Flow[V + delta](z)| at T against integral_0^T exp(integral_t^T L~) eps_t dt, with
    L~ the Lipschitz profile of V + delta and eps_t = ||delta||_{L2(p_t)} from exact draws of p_t."""
    cfg = cfg if isinstance(cfg, StabilityRun) else StabilityRun.model_validate(cfg)
    device = resolve_device(device)
    start = time.perf_counter()
    target, ip, T, f64 = make_target(cfg.target), as_interpolant(cfg.interpolant), cfg.T, torch.float64
    p = cfg.perturbation
    delta = make_perturbation(p.kind, eps=p.eps, D=target.ambient_dim, generator=generator(cfg.seed, "stability.delta", device),
                              n_features=p.n_features, lengthscale=p.lengthscale)
    field = ExactField(target, ip)
    z = torch.randn(cfg.n, target.ambient_dim, generator=generator(cfg.seed, "stability.noise", device), device=device, dtype=f64)
    ref = cfg.reference
    with torch.no_grad():
        x = _unperturbed(cfg, field, z, device)
        x_pert = reference_flow(PerturbedField(field, delta), z, T=T, method=ref.method, steps=ref.steps, grid=ref.grid)
    if not (torch.isfinite(x).all() and torch.isfinite(x_pert).all()):
        return RunRecord("failed", {}, {"device": str(device)}, stage="integrate", reason="non-finite flow")
    ts = log_time_grid(T, cfg.n_t)
    g = generator(cfg.seed, "stability.p_t", device)
    x1 = target.sample(cfg.n, generator=g, device=device, dtype=f64)
    zt = torch.randn(cfg.n, target.ambient_dim, generator=g, device=device, dtype=f64)
    eps_t = np.array([float(delta(float(ip.a(t)) * zt + float(ip.b(t)) * x1).pow(2).sum(1).mean().sqrt()) for t in ts])
    L = _profile(target, ip, ts, cfg.search, generator(cfg.seed, "stability.search", device), perturbation=delta)
    measured = coupled_rms(x_pert, x)
    bound = stability_bound(ts, L, eps_t)
    return _record({"measured": measured.rms, "measured_ci_high": measured.ci_high, "bound": bound, "bound_ratio": bound / measured.rms,
                    "bound_holds": bool(measured.ci_high <= bound), "eps_rms": float(np.sqrt(np.mean(eps_t**2))),
                    "integrated_lipschitz": float(trapezoid_tail(ts, L)[0])}, device, start)
