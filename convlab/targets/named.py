"""Named Gaussian-mixture targets with seeded, documented parameters: the 8-Gaussian ring and random mixtures."""

from __future__ import annotations

import math

import numpy as np

from convlab.device import format_bytes, memory_bytes
from convlab.targets.mixture import GaussianMixture


def ring8(*, radius: float = 4.0, s: float = 0.4) -> GaussianMixture:
    """Eight equal-weight isotropic Gaussians N(mu_k, s^2 I) with mu_k = radius (cos 2 pi k/8, sin 2 pi k/8), in 2-D:
    eight atoms smoothed by s (s = 0: the atoms)."""
    _positive("radius", radius)
    _nonneg("s", s)
    angles = 2 * math.pi * np.arange(8) / 8
    means = radius * np.stack([np.cos(angles), np.sin(angles)], 1)
    return GaussianMixture(np.full(8, 1 / 8), means, np.full(8, s**2), name="ring8", params={"radius": radius, "s": s})


def gaussian(*, D: int = 2, mean: float = 0.0, s: float = 1.0) -> GaussianMixture:
    """One isotropic Gaussian N(mean * 1, s^2 I) in R^D: every error has a closed form (docs/concepts/theory.md §5)."""
    _count("D", D)
    if not (isinstance(mean, int | float) and math.isfinite(mean)):
        raise ValueError(f"mean: must be a finite number (got {mean!r})")
    _positive("s", s)
    return GaussianMixture(
        np.ones(1),
        np.full((1, D), float(mean)),
        np.full(1, s**2),
        name="gaussian",
        params={"D": D, "mean": mean, "s": s},
    )


def random_mixture(
    *,
    D: int,
    K: int = 4,
    seed: int = 0,
    spread: float = 2.0,
    cov: str = "full",
    var_min: float = 0.05,
    var_max: float = 0.5,
    concentration: float = 5.0,
) -> GaussianMixture:
    """K random Gaussians in R^D, drawn from numpy's default_rng(seed).

    Means ~ N(0, spread^2 I); weights ~ Dirichlet(concentration); covariance per `cov`:
    'full' Q diag(l) Q^T with a Haar-random Q, 'diag' diag(l), 'iso' l_1 I, where the variances l are
    log-uniform in [var_min, var_max].
    """
    _count("D", D)
    _count("K", K)
    _nonneg("spread", spread)
    _positive("var_min", var_min)
    if not var_max >= var_min:
        raise ValueError(f"var_max: must be >= var_min={var_min} (got {var_max!r})")
    _positive("concentration", concentration)
    rng = np.random.default_rng(seed)
    means = spread * rng.standard_normal((K, D))
    weights = rng.dirichlet(np.full(K, concentration))
    lam = np.exp(rng.uniform(math.log(var_min), math.log(var_max), size=(K, D)))
    if cov == "full":
        Q = np.stack([haar_orthogonal(D, rng) for _ in range(K)])
        covs = np.einsum("kde,ke,kfe->kdf", Q, lam, Q)
    elif cov == "diag":
        covs = lam
    elif cov == "iso":
        covs = lam[:, 0]
    else:
        raise ValueError(f"cov: must be 'full', 'diag' or 'iso' (got {cov!r})")
    params = dict(
        D=D, K=K, seed=seed, spread=spread, cov=cov, var_min=var_min, var_max=var_max, concentration=concentration
    )
    return GaussianMixture(weights, means, covs, name="random_mixture", params=params)


def haar_orthogonal(D: int, rng: np.random.Generator, cols: int | None = None) -> np.ndarray:
    """D x cols matrix with orthonormal columns, Haar-distributed (QR of a Gaussian with the sign fix).

    Targets build it when they are made, at plan time too: a D it cannot hold is refused here by name, before numpy
    is asked for terabytes."""
    need = 3.0 * D * (cols or D) * 8  # the Gaussian, Q and QR's workspace, float64
    if need > memory_bytes("cpu"):
        raise ValueError(
            f"D: the target's random rotation of R^D is a {D} x {cols or D} matrix: with its QR about "
            f"{format_bytes(need)}, more than this machine's memory ({format_bytes(memory_bytes('cpu'))}) (got {D})"
        )
    q, r = np.linalg.qr(rng.standard_normal((D, cols or D)))
    return q * np.sign(np.diag(r))


def _positive(name: str, v) -> None:
    if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
        raise ValueError(f"{name}: must be a positive number (got {v!r})")


def _nonneg(name: str, v) -> None:
    if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
        raise ValueError(f"{name}: must be a number >= 0 (got {v!r})")


def _count(name: str, v, minimum: int = 1) -> None:
    if not (isinstance(v, int) and not isinstance(v, bool) and v >= minimum):
        raise ValueError(f"{name}: must be an integer >= {minimum} (got {v!r})")
