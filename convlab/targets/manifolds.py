"""Gaussian-smoothed manifolds nu = Unif(M) * N(0, s^2 I) as exact mixtures (docs/concepts/theory.md §2).

A curved d-manifold M is represented by N atoms y_i spread uniformly over it (a scrambled Sobol point set
mapped through a measure-preserving parametrisation, so the atoms stratify the uniform measure), each
carrying N(y_i, s^2 I); s = 0 leaves the atoms themselves. M lives in its natural dimension m (d + 1 for the
sphere, 2d for the flat torus, ...) and is embedded into R^D, D >= m, by a seeded random isometry (the
identity when D = m). Atoms and embedding use separate random streams of `seed`, so changing D moves the
same manifold measure into another ambient space. Flat manifolds (`subspaces`) are exact rank-d Gaussians.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats
from scipy.stats import qmc

from convlab.targets.covariance import low_rank
from convlab.targets.mixture import GaussianMixture
from convlab.targets.named import _count, _nonneg, _positive, haar_orthogonal


def sphere_atoms(
    *, d: int, D: int | None = None, radius: float = 1.0, s: float = 0.0, n_atoms: int = 4096, seed: int = 0
) -> GaussianMixture:
    """N atoms on the round sphere S^d of the given radius (natural dimension d + 1), each N(y_i, s^2 I); the exact
    uniform measure is convlab.targets.continuous.uniform_sphere."""
    _count("d", d)
    _positive("radius", radius)
    u = _sobol(n_atoms, d + 1, seed)
    g = stats.norm.ppf(np.clip(u, 1e-12, 1 - 1e-12))
    atoms = radius * g / np.linalg.norm(g, axis=1, keepdims=True)
    return _embedded("sphere_atoms", atoms, d, D, s, seed, dict(d=d, radius=radius))


def torus_atoms(
    *, d: int, D: int | None = None, radius: float = 1.0, s: float = 0.0, n_atoms: int = 4096, seed: int = 0
) -> GaussianMixture:
    """N atoms on the flat torus T^d, a product of d circles of the given radius (natural dimension 2d), each
    N(y_i, s^2 I); the exact uniform measure is uniform_torus."""
    _count("d", d)
    _positive("radius", radius)
    theta = 2 * math.pi * _sobol(n_atoms, d, seed)
    atoms = radius * np.stack([np.cos(theta), np.sin(theta)], axis=2).reshape(n_atoms, 2 * d)
    return _embedded("torus_atoms", atoms, d, D, s, seed, dict(d=d, radius=radius))


def cube_atoms(
    *, d: int, D: int | None = None, side: float = 2.0, s: float = 0.0, n_atoms: int = 4096, seed: int = 0
) -> GaussianMixture:
    """N atoms in the flat cube [-side/2, side/2]^d (natural dimension d), each N(y_i, s^2 I); the exact uniform
    measure is uniform_cube."""
    _count("d", d)
    _positive("side", side)
    atoms = side * (_sobol(n_atoms, d, seed) - 0.5)
    return _embedded("cube_atoms", atoms, d, D, s, seed, dict(d=d, side=side))


def swiss_roll(
    *,
    dim: int = 2,
    D: int | None = None,
    scale: float = 0.2,
    height: float = 21.0,
    s: float = 0.0,
    n_atoms: int = 4096,
    seed: int = 0,
) -> GaussianMixture:
    """The Swiss roll of scikit-learn's make_swiss_roll, uniform in arc length (area in 3-D), times `scale`.

    dim = 2: the curve theta (cos theta, sin theta), theta in [1.5 pi, 4.5 pi] (d = 1, natural dimension 2).
    dim = 3: the surface (theta cos theta, h, theta sin theta), h in [0, height] (d = 2, natural dimension 3).
    """
    if dim not in (2, 3):
        raise ValueError(f"dim: the Swiss roll comes in 2-D or 3-D (got {dim!r})")
    _positive("scale", scale)
    _positive("height", height)
    u = _sobol(n_atoms, dim - 1, seed)
    theta = _arc_length_inverse(u[:, 0])
    curve = [theta * np.cos(theta), theta * np.sin(theta)]
    cols = curve if dim == 2 else [curve[0], height * u[:, 1], curve[1]]
    atoms = scale * np.stack(cols, axis=1)
    return _embedded("swiss_roll", atoms, dim - 1, D, s, seed, dict(dim=dim, scale=scale, height=height))


def subspaces(*, d: int, D: int, K: int = 4, var: float = 1.0, s: float = 0.0, seed: int = 0) -> GaussianMixture:
    """Union of K random d-dimensional linear subspaces of R^D, each carrying N(0, var P_k + s^2 I), equal weights."""
    _count("d", d)
    _count("K", K)
    _positive("var", var)
    _nonneg("s", s)
    if not (isinstance(D, int) and D >= d):
        raise ValueError(f"D: the ambient dimension must be an integer >= d={d} (got {D!r})")
    rng = np.random.default_rng(seed)
    factors = np.stack([math.sqrt(var) * haar_orthogonal(D, rng, d) for _ in range(K)])
    params = dict(d=d, D=D, K=K, var=var, s=s, seed=seed)
    return GaussianMixture(
        np.full(K, 1 / K), np.zeros((K, D)), low_rank(factors, s**2), intrinsic_dim=d, name="subspaces", params=params
    )


def _embedded(
    name: str, atoms: np.ndarray, d: int, D: int | None, s: float, seed: int, params: dict
) -> GaussianMixture:
    N, m = atoms.shape
    D = m if D is None else D
    if not (isinstance(D, int) and D >= m):
        raise ValueError(f"D: {name} with d={d} needs an ambient dimension >= {m} (got {D!r})")
    if d > D:
        raise ValueError(f"d: intrinsic dimension {d} exceeds the ambient dimension D={D}")
    _nonneg("s", s)
    if D > m:
        embed_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
        atoms = atoms @ haar_orthogonal(D, embed_rng, m).T
    params = {**params, "D": D, "s": s, "n_atoms": N, "seed": seed}
    return GaussianMixture(np.full(N, 1 / N), atoms, np.full(N, s * s), intrinsic_dim=d, name=name, params=params)


def _sobol(n: int, dim: int, seed: int) -> np.ndarray:
    """n scrambled Sobol points in [0, 1)^dim from the atoms' stream of `seed`."""
    _count("n_atoms", n)
    atoms_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.qmc.__dict__.get("QMCWarning", UserWarning))
        warnings.simplefilter("ignore", UserWarning)  # balance properties need n = 2^m; any n is still stratified
        return qmc.Sobol(dim, scramble=True, seed=atoms_rng).random(n)


def _arc_length_inverse(u: np.ndarray, lo: float = 1.5 * math.pi, hi: float = 4.5 * math.pi) -> np.ndarray:
    """theta with arc length of theta (cos, sin)(theta) from lo equal to u times the total: uniform on the curve."""
    grid = np.linspace(lo, hi, 20001)
    arc = 0.5 * (grid * np.sqrt(1 + grid**2) + np.arcsinh(grid))  # antiderivative of sqrt(1 + theta^2)
    arc -= arc[0]
    return np.interp(u * arc[-1], arc, grid)
