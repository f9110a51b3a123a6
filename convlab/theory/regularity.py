"""Regularity of Gaussian interpolation flows (Gao, Huang, Jiao, arXiv 2311.11475): the Lipschitz
profile L_t = sup_x ||grad_x V(t, x)||_2, the early-stopping trade-off and the stability bound
(docs/concepts/theory.md §2, §6).

The Jacobian comes from the identity grad_x V = (a'/a) I + (b / a^3)(a b' - a' b) Cov(X1 | x), not from
autograd (tests check the two agree). The sup over x is estimated from below: the largest norm over draws of
p_t, of a wide moment-matched Gaussian (it reaches the medial axes, where the posterior stays spread as
t -> 1 and the blow-up happens), of midpoints between component means and the centroid, then refined by
gradient ascent, by continuation in t near t = 1. A lower estimate: a maximiser none of these reach is missed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from convlab.interpolants import Interpolant


@dataclass(frozen=True)
class LipschitzSearch:
    """How sup_x ||grad V(t, x)|| is searched: `n_samples` candidate draws, then `ascent_steps` of gradient ascent
    from the best `n_starts`."""

    n_samples: int = 1024
    n_starts: int = 8
    ascent_steps: int = 100


def jacobian_coefficients(interpolant: Interpolant, t: float) -> tuple[float, float]:
    """(alpha, beta) with grad_x V = alpha I + beta Cov(X1 | x): alpha = a'/a, beta = b (a b' - a' b) / a^3.

    Written with a a' so that follmer and vp stay finite in the products; needs a(t) > 0. beta is also the
    blow-up shape of L_t on atoms (L_t ~ beta(t) R^2 as t -> 1)."""
    a, b, db, a_da = (float(f(t)) for f in (interpolant.a, interpolant.b, interpolant.db, interpolant.a_da))
    if not a > 0:
        raise ValueError(f"t: the Jacobian identity divides by a(t), which vanishes at t = {t!r}")
    a2 = a * a
    return a_da / a2, b * (a2 * db - b * a_da) / (a2 * a2)


def velocity_jacobian(target, interpolant: Interpolant, t: float, x: Tensor) -> Tensor:
    """grad_x V(t, x), (n, D, D), from the posterior covariance; needs a(t) > 0."""
    alpha, beta = jacobian_coefficients(interpolant, t)
    eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    return alpha * eye + beta * target.posterior_cov(t, x, interpolant)


def spectral_norm(J: Tensor) -> Tensor:
    """||J||_2 per matrix, (n,)."""
    return torch.linalg.matrix_norm(J, ord=2)


@dataclass(frozen=True)
class LipschitzEstimate:
    """value: the sup estimate; sampled: the max over draws of p_t alone (what sampling without ascent sees)."""

    value: float
    sampled: float
    x_star: Tensor


def _candidates(target, ip: Interpolant, t: float, n: int, g: torch.Generator, dtype) -> tuple[Tensor, Tensor]:
    """Draws of p_t, of N(b m, a^2 I + b^2 Cov(nu)), midpoints b (mu_i + mu_j) / 2 of random pairs, the centroid."""
    a, b = float(ip.a(t)), float(ip.b(t))
    dev = g.device
    x1 = target.sample(n, generator=g, device=dev, dtype=dtype)
    p_t = a * torch.randn(n, target.ambient_dim, generator=g, device=dev, dtype=dtype) + b * x1
    mean, cov = target.mean().to(dev, dtype), target.covariance().to(dev, dtype)
    L = torch.linalg.cholesky(b * b * cov + (a * a + 1e-12) * torch.eye(target.ambient_dim, dtype=dtype, device=dev))
    wide = b * mean + torch.randn(n, target.ambient_dim, generator=g, device=dev, dtype=dtype) @ L.T
    mu = target.means.to(dev, dtype)
    i, j = (torch.randint(mu.shape[0], (n,), generator=g, device=dev) for _ in range(2))
    mid = b * (mu[i] + mu[j]) / 2
    return p_t, torch.cat([wide, mid, b * mean[None]])


def lipschitz_estimate(
    target,
    interpolant: Interpolant,
    t: float,
    *,
    generator: torch.Generator,
    search: LipschitzSearch = LipschitzSearch(),
    perturbation=None,
) -> LipschitzEstimate:
    """sup_x ||grad_x (V + delta)(t, x)||_2 estimated from below (float64), delta an optional Perturbation of the
    velocity; `search` sets the candidate draws and the ascent.

    Close to t = 1 the maximisers sit in transition layers of width ~ a(t)^2 that neither draws nor a local
    ascent can find, so the search follows them by continuation: it starts at 1 - t = 0.1 and moves towards t
    in steps of sqrt(10) in 1 - t, each level's best points (rescaled by the change of b) seeding the next.
    """
    gaps = (
        []
        if 1 - t >= 0.1
        else list(np.geomspace(0.1, 1 - t, max(2, int(np.ceil(2 * np.log10(0.1 / (1 - t)))) + 1)))[:-1]
    )
    carried, b_prev, sampled = None, None, None
    for level in [1.0 - g for g in gaps] + [t]:
        b = float(interpolant.b(level))
        starts = None if carried is None else carried * (b / b_prev if b_prev else 1.0)
        best, best_x, sampled, carried = _search(target, interpolant, level, generator, search, perturbation, starts)
        b_prev = b
    return LipschitzEstimate(best, sampled, best_x)


def lipschitz_profile(
    target,
    interpolant: Interpolant,
    ts,
    *,
    generator: torch.Generator,
    search: LipschitzSearch = LipschitzSearch(),
    perturbation=None,
) -> np.ndarray:
    """L_t on an increasing grid ts (as lipschitz_estimate), the grid itself serving as the continuation."""
    out, carried, b_prev = [], None, None
    for t in ts:
        b = float(interpolant.b(float(t)))
        starts = None if carried is None else carried * (b / b_prev if b_prev else 1.0)
        best, _, _, carried = _search(target, interpolant, float(t), generator, search, perturbation, starts)
        out.append(best)
        b_prev = b
    return np.array(out)


def _search(target, ip: Interpolant, t: float, g, search: LipschitzSearch, perturbation, starts):
    """(best norm, its x, max norm over draws of p_t, the ascended starting points) at one time t."""
    dtype = torch.float64

    def norm(x: Tensor) -> Tensor:
        J = velocity_jacobian(target, ip, t, x)
        if perturbation is not None:
            J = J + perturbation.jacobian(x)
        return spectral_norm(J)

    p_t, others = _candidates(target, ip, t, search.n_samples, g, dtype)
    if starts is not None:
        others = torch.cat([others, starts])
    with torch.no_grad():
        on_p_t, on_others = norm(p_t), norm(others)
    pool = torch.cat([p_t, others])
    values = torch.cat([on_p_t, on_others])
    x = pool[values.argsort(descending=True)[: search.n_starts]].clone().requires_grad_(True)
    # Adam moves every coordinate by about lr per step, so lr follows the width a^2 / (b |mu_i - mu_j| + a) of
    # the posterior's transition layers, which shrinks like a^2 as t -> 1.
    a, b = float(ip.a(t)), float(ip.b(t))
    spread = float(target.covariance().diagonal().sum().sqrt()) + 1e-12
    opt = torch.optim.Adam([x], lr=0.05 * a * a / (b * spread + a))
    best, best_x = float(values.max()), pool[values.argmax()]
    for step in range(search.ascent_steps + 1):
        opt.zero_grad()
        v = norm(x)
        top = int(v.detach().argmax())
        if float(v[top].detach()) > best:
            best, best_x = float(v[top].detach()), x[top].detach().clone()
        if step < search.ascent_steps:
            (-v.sum()).backward()
            opt.step()
    return best, best_x, float(on_p_t.max()), x.detach()


def log_time_grid(T: float, n: int) -> np.ndarray:
    """n times in [0, T], uniform in log(1 - t): dense where the profile of a manifold target blows up."""
    return 1.0 - np.geomspace(1.0, 1.0 - T, n)


def trapezoid_tail(ts: np.ndarray, f: np.ndarray) -> np.ndarray:
    """integral_{t_j}^{t_last} f(s) ds for every j (trapezoid), (n,)."""
    seg = 0.5 * (f[1:] + f[:-1]) * np.diff(ts)
    return np.concatenate([np.cumsum(seg[::-1])[::-1], [0.0]])


def stability_bound(ts: np.ndarray, lipschitz: np.ndarray, eps: np.ndarray) -> float:
    """integral_0^T exp(integral_t^T L~_s ds) eps_t dt on the grid ts (docs/concepts/theory.md §6, Gronwall)."""
    growth = np.exp(trapezoid_tail(ts, lipschitz))
    return float(np.trapezoid(growth * eps, ts))
