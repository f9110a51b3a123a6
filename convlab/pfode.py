"""The OU probability-flow ODE in its own time (seed 002; Kremling, Iafrate, Taheri, Lederer, arXiv 2510.17608).

Forward OU dX = -X ds + sqrt(2) dB over [0, S]: p_s is the law of e^{-s} X0 + sqrt(1 - e^{-2s}) Z, which is
the law of X_t under the vp interpolant with horizon S at t = 1 - s / S. So the exact score of p_s is the
target's exact vp score, and the reverse ODE in tau = S - s,

    dY/dtau = Y + score(S - tau, Y),    Y_0 ~ N(0, I),

is the vp probability-flow ODE read in its own time (V_vp(t, x) = S (x + score)). THEORY.md section 6.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from convlab.interpolants import VP
from convlab.registry import build
from convlab.targets.covariance import Isotropic

Score = Callable[[float, Tensor], Tensor]  # score(s, y): grad log p_s at forward time s, (n, D)


def ou_score(target, S: float) -> Score:
    """The exact score of p_s for s in [0, S], through the vp interpolant with horizon S."""
    vp = VP(S)
    return lambda s, y: target.score(1.0 - s / S, y, vp)


class OUStep:
    """One step of the reverse ODE from forward time s to s - h; `order` is the declared global order."""

    name: str
    order: int
    stages: int

    def step(self, score: Score, s: float, h: float, y: Tensor) -> Tensor:
        raise NotImplementedError


class OUEuler(OUStep):
    """y + h (y + score(s, y)).

    Order: 1. Stages: 1. Reference: Hairer, Norsett & Wanner, Solving ODEs I, section II.1.
    """

    name, order, stages = "euler", 1, 1

    def step(self, score, s, h, y):
        return y + h * (y + score(s, y))


class OUExponential(OUStep):
    """Exponential integrator, the score frozen on the step: e^h y + (e^h - 1) score(s, y).

    Order: 1; exact when the score is constant along the step. Stages: 1. Reference: seed 002, section 3
    (the linear drift y integrated exactly); Zhang & Chen, DEIS (ICLR 2023).
    """

    name, order, stages = "exp", 1, 1

    def step(self, score, s, h, y):
        return math.exp(h) * y + math.expm1(h) * score(s, y)


OU_STEPS: dict[str, type[OUStep]] = {"euler": OUEuler, "exp": OUExponential}


def solve_pf_ode(score: Score, y0: Tensor, *, S: float, K: int, method: str = "exp", s_min: float = 0.0) -> Tensor:
    """K uniform steps h = (S - s_min) / K of the reverse ODE from forward time S down to s_min; (n, D)."""
    if not (isinstance(K, int) and K >= 1):
        raise ValueError(f"K: the number of steps must be an integer >= 1 (got {K!r})")
    if not 0.0 <= s_min < S:
        raise ValueError(f"s_min: need 0 <= s_min < S (got s_min={s_min!r}, S={S!r})")
    stepper = build(OU_STEPS, method, kind="pf_ode method")
    h = (S - s_min) / K
    y = y0
    for k in range(K):
        y = stepper.step(score, S - k * h, h, y)
    return y


# -- weak log-concavity of p_s for isotropic mixtures (THEORY.md section 6) ------------------------------------------

def mixture_radius_and_std(target) -> tuple[float, float]:
    """(R, s) of a mixture sum_k pi_k N(mu_k, s^2 I) with one shared s: R = max_k |mu_k - mean|."""
    var = target.cov.var if isinstance(target.cov, Isotropic) else None
    if var is None or not bool((var == var[0]).all()):
        raise ValueError(f"target: the log-concavity sandwich needs isotropic components with one shared variance (got {target.name})")
    R = float((target.means - target.mean()).norm(dim=1).max())
    return R, math.sqrt(float(var[0]))


def log_concavity_bounds(R: float, s: float, t: float) -> tuple[float, float]:
    """(lower, upper) with lower I <= -Hess log p_t <= upper I:
    1 / s_t^2 - e^{-2t} R^2 / s_t^4  and  1 / s_t^2, with s_t^2 = e^{-2t} s^2 + 1 - e^{-2t}."""
    st2 = math.exp(-2 * t) * s * s - math.expm1(-2 * t)
    return 1 / st2 - math.exp(-2 * t) * R * R / st2**2, 1 / st2


def switch_time(R: float, s: float) -> float:
    """t* = 0.5 log(1 + R^2 - s^2): p_t is strongly log-concave for t > t* (0 when R <= s: from the start)."""
    return 0.5 * math.log1p(R * R - s * s) if R > s else 0.0


def neg_hessian_log_density(target, t: float, y: Tensor) -> Tensor:
    """-Hess log p_t(y) at forward OU time t > 0, (n, D, D), from Tweedie's identity
    (I - (b^2 / a^2) Cov(X0 | y)) / a^2 with b = e^{-t}, a^2 = 1 - e^{-2t} (vp with horizon t, read at 0)."""
    if not t > 0:
        raise ValueError(f"t: the identity needs t > 0 (got {t!r})")
    vp = VP(t)
    a2, b2 = -math.expm1(-2 * t), math.exp(-2 * t)
    eye = torch.eye(y.shape[1], dtype=y.dtype, device=y.device)
    return (eye - (b2 / a2) * target.posterior_cov(0.0, y, vp)) / a2
