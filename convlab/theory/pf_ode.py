"""The OU probability-flow ODE (Kremling, Iafrate, Taheri, Lederer, arXiv 2510.17608): its time map
and the weak log-concavity of the OU marginals of isotropic mixtures (docs/concepts/theory.md §6).

Forward OU dX = -X ds + sqrt(2) dB over [0, S]: p_s is the law of e^{-s} X0 + sqrt(1 - e^{-2s}) Z, which is
the law of X_t under the vp interpolant with horizon S at t = 1 - s / S. The reverse ODE in tau = S - s,

    dY/dtau = Y + score(S - tau, Y),    Y_0 ~ N(0, I),

is therefore the vp probability-flow ODE read in its own time (V_vp(t, x) = S (x + score), tau = S t), so it
is integrated by the ordinary solvers (convlab.solvers) on the vp field: K uniform steps h in tau are K
uniform steps h / S in t. `euler` is the paper's Euler step and `exp_score` its exponential integrator
(e^h y + (e^h - 1) score, the score frozen on the step).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from convlab.interpolants import VP
from convlab.targets.covariance import Isotropic


def ou_end_time(S: float, s_min: float) -> float:
    """The vp time T = 1 - s_min / S at which the reverse ODE has reached forward OU time s_min."""
    if not 0.0 <= s_min < S:
        raise ValueError(f"s_min: need 0 <= s_min < S (got s_min={s_min!r}, S={S!r})")
    return 1.0 - s_min / S


def mixture_radius_and_std(target) -> tuple[float, float]:
    """(R, s) of a mixture sum_k pi_k N(mu_k, s^2 I) with one shared s: R = max_k |mu_k - mean|."""
    var = target.cov.var if isinstance(target.cov, Isotropic) else None
    if var is None or not bool((var == var[0]).all()):
        raise ValueError(
            "target: the log-concavity sandwich needs isotropic components with one shared variance "
            f"(got {target.name})"
        )
    return support_radius(target), math.sqrt(float(var[0]))


def support_radius(target) -> float:
    """R = max_k |mu_k - mean|: the radius of the component means around the target's mean."""
    return float((target.means - target.mean()).norm(dim=1).max())


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
