"""The 'pf_ode' and 'log_concavity' run kinds: the OU probability-flow ODE of seed 002 on exact mixture scores.

pf_ode couples everything through one noise draw W ~ N(0, I) and one data draw X1 ~ nu:
X_S = e^{-S} X1 + sqrt(1 - e^{-2S}) W is an exact draw of p_S, so Flow(X_S) is an exact draw of nu and

- solver_error = rms |Y_K(W) - Flow(W)|      the discretisation (and injected score) error, O(h) (+ O(eps))
- init_error   = rms |Flow(W) - Flow(X_S)|   the initialisation term, an upper bound on W2(Flow#N(0,I), nu)
- init_w2_paired = exact W2 between the clouds Flow(W) and Flow(X_S): at most init_error, floor-limited (n)
- w2_ub        = rms |Y_K(W) - Flow(X_S)|    an upper bound on the W2 of the sampler's law to nu

Flow is the exact reverse ODE solved as the vp flow by the reference solver. For a single Gaussian target
(and an affine score error) the sampler is an affine map, so its law and W2 are exact (w2_exact).
"""

from __future__ import annotations

import math
import time

import torch

from convlab.config import LogConcavityRun, PFODERun
from convlab.device import generator, resolve_device
from convlab.fields import ExactField
from convlab.interpolants import VP
from convlab.metrics import coupled_rms, exact_w2, gaussian_w2_sq
from convlab.pfode import log_concavity_bounds, mixture_radius_and_std, neg_hessian_log_density, ou_score, solve_pf_ode, switch_time
from convlab.perturbation import make_perturbation
from convlab.record import RunRecord
from convlab.runs.cache import memo_key, memoised
from convlab.solvers import reference_flow
from convlab.targets import make_target

_REFERENCES: dict[str, torch.Tensor] = {}


def _reference(cfg: PFODERun, target, x0: torch.Tensor, device) -> torch.Tensor:
    """Exact flow of the starting points, shared by the runs of a K or method sweep in one process."""
    ref = cfg.reference
    key = memo_key(cfg, {"seed", "target", "S", "s_min", "n", "reference"}, len(x0), device)
    return memoised(_REFERENCES, key, lambda: reference_flow(ExactField(target, VP(cfg.S)), x0, T=1.0 - cfg.s_min / cfg.S,
                                                             method=ref.method, steps=ref.steps, grid=ref.grid))


def _failed(stage: str, reason: str, device) -> RunRecord:
    return RunRecord("failed", {}, {"device": str(device)}, stage=stage, reason=reason)


def run_pf_ode(cfg: PFODERun | dict, *, device: str | torch.device = "auto", teacher_cache=None) -> RunRecord:
    """One sampler (method, K, S, eps) on one target: coupled errors against the exact flow (float64)."""
    cfg = cfg if isinstance(cfg, PFODERun) else PFODERun.model_validate(cfg)
    device = resolve_device(device)
    start = time.perf_counter()
    target = make_target(cfg.target)
    D, S, f64 = target.ambient_dim, cfg.S, torch.float64
    exact = ou_score(target, S)
    err = cfg.score_error
    delta = make_perturbation(err.kind, eps=err.eps, D=D, generator=generator(cfg.seed, "pf_ode.score_error", device),
                              n_features=err.n_features, lengthscale=err.lengthscale)
    score = exact if err.eps == 0 else (lambda s, y: exact(s, y) + delta(y))
    w = torch.randn(cfg.n, D, generator=generator(cfg.seed, "pf_ode.noise", device), device=device, dtype=f64)
    x1 = target.sample(cfg.n, generator=generator(cfg.seed, "pf_ode.data", device), device=device, dtype=f64)
    x_S = math.exp(-S) * x1 + math.sqrt(-math.expm1(-2 * S)) * w
    gaussian = target.n_components == 1 and (err.eps == 0 or err.kind == "constant")
    # The sampler of a Gaussian target is affine, so pushing 0 and the basis vectors gives its law exactly.
    basis = torch.cat([torch.zeros(1, D, dtype=f64, device=device), torch.eye(D, dtype=f64, device=device)]) if gaussian else w[:0]
    solve = lambda sc, y0: solve_pf_ode(sc, y0, S=S, K=cfg.K, method=cfg.method, s_min=cfg.s_min)  # noqa: E731
    with torch.no_grad():
        flows = _reference(cfg, target, torch.cat([w, x_S, basis]), device)
        flow_w, flow_xS, flow_basis = flows[: cfg.n], flows[cfg.n : 2 * cfg.n], flows[2 * cfg.n :]
        y = solve(score, torch.cat([w, basis]))
        y, y_basis = y[: cfg.n], y[cfg.n :]
        y_exact_score = solve(exact, w) if err.eps > 0 else y
    if not (torch.isfinite(y).all() and torch.isfinite(flows).all()):
        return _failed("integrate", "non-finite sampler or reference (step too large for this target?)", device)
    solver = coupled_rms(y, flow_w)
    metrics = {
        "h": (S - cfg.s_min) / cfg.K, "nfe": cfg.K,
        "solver_error": solver.rms, "solver_ci_low": solver.ci_low, "solver_ci_high": solver.ci_high,
        "init_error": coupled_rms(flow_w, flow_xS).rms, "init_coupling": coupled_rms(w, x_S).rms,
        # Exact OT between the two flowed clouds: re-pairs the points a small start difference sent to
        # different modes, which dominate the pathwise rms when the flow nearly tears (separated modes).
        "init_w2_paired": exact_w2(flow_w, flow_xS),
        "w2_ub": coupled_rms(y, flow_xS).rms, "score_error_rms": float(delta(flow_xS).pow(2).sum(1).mean().sqrt()),
    }
    if err.eps > 0:
        metrics["score_error_effect"] = coupled_rms(y, y_exact_score).rms
    if gaussian:
        m, cov = target.mean(), target.covariance()
        law = lambda pts: (pts[0], (pts[1:] - pts[0]).T @ (pts[1:] - pts[0]))  # noqa: E731
        metrics["w2_exact"] = math.sqrt(gaussian_w2_sq(*law(y_basis), m, cov))
        metrics["init_w2_exact"] = math.sqrt(gaussian_w2_sq(*law(flow_basis), m, cov))
    try:
        R, s = mixture_radius_and_std(target)
        metrics.update(R=R, std=s, t_star=switch_time(R, s))
    except ValueError:
        pass  # not an isotropic mixture with one shared variance: no sandwich, no switch time
    bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        return _failed("measure", f"non-finite {', '.join(bad)}", device)
    return RunRecord("ok", metrics, {"device": str(device), "time_total_s": time.perf_counter() - start})


def run_log_concavity(cfg: LogConcavityRun | dict, *, device: str | torch.device = "auto", teacher_cache=None) -> RunRecord:
    """Extreme eigenvalues of -Hess log p_t over draws of p_t and midpoints between its components, beside
    the sandwich bounds and the switch time t*."""
    cfg = cfg if isinstance(cfg, LogConcavityRun) else LogConcavityRun.model_validate(cfg)
    device = resolve_device(device)
    start = time.perf_counter()
    target = make_target(cfg.target)
    try:
        R, s = mixture_radius_and_std(target)
    except ValueError as e:
        return _failed("setup", str(e), device)
    g = generator(cfg.seed, "log_concavity.points", device)
    f64, t = torch.float64, cfg.t
    x1 = target.sample(cfg.n, generator=g, device=device, dtype=f64)
    p_t = math.exp(-t) * x1 + math.sqrt(-math.expm1(-2 * t)) * torch.randn(cfg.n, target.ambient_dim, generator=g, device=device, dtype=f64)
    # The lower bound is approached where the posterior over components is most spread: between the means.
    mu = math.exp(-t) * target.means.to(device, f64)
    i, j = (torch.randint(mu.shape[0], (cfg.n,), generator=g, device=device) for _ in range(2))
    lam = torch.rand(cfg.n, 1, generator=g, device=device, dtype=f64)
    between = lam * mu[i] + (1 - lam) * mu[j]
    with torch.no_grad():
        eig = torch.linalg.eigvalsh(neg_hessian_log_density(target, t, torch.cat([p_t, between])))
    lower, upper = log_concavity_bounds(R, s, t)
    lo, hi = float(eig.min()), float(eig.max())
    slack = 1e-9 * max(abs(lower), upper)  # round-off of the eigenvalues, not a tolerance on the claim
    metrics = {"hess_min": lo, "hess_max": hi, "bound_lower": lower, "bound_upper": upper, "hess_min_gap": abs(1.0 - lo),
               "sandwich_holds": bool(lower - slack <= lo and hi <= upper + slack), "R": R, "std": s,
               "t_star": switch_time(R, s), "strongly_log_concave": bool(lo > 0)}
    return RunRecord("ok", metrics, {"device": str(device), "time_total_s": time.perf_counter() - start})
