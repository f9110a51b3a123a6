"""Honest Wasserstein-2 measurements (docs/concepts/theory.md §5). Names ending in _sq are squared distances.

- exact_w2 / exact_w2_sq: the W2 of two empirical measures, solved exactly (POT network simplex or, for
  equal-size uniform samples, scipy's linear_sum_assignment; the faster is chosen automatically).
- coupled_rms: rms |x_i - y_i| over pairs built from the same noise; an upper bound on W2 with an ordinary
  n^{-1/2} confidence interval. The primary estimator for K-rates.
- gaussian_w2_sq: the Bures closed form; empirical_gaussian_w2_sq: the same for moment-matched samples.
- sliced_w2: a lower bound, a sanity check only.
- sinkhorn_w2: geomloss's debiased Sinkhorn divergence with epsilon-scaling, with its marginal error (how far
  the final potentials' plan is from a coupling): measured against exact_w2 by benchmarks/bench_sinkhorn.py and
  not used by any run kind, because that measurement found it unconverged and biased (docs in README).
- noise_floor_w2 and sampled_w2: the two-sample floor of a target at size n and whether a sampled W2 is
  resolved above it. Never fit a rate on unresolved points.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import ot
import torch
from scipy import stats
from scipy.optimize import linear_sum_assignment

from convlab.interpolants import as_interpolant
from convlab.targets.continuous import SmoothedManifold

# linear_sum_assignment beats the network simplex once the point clouds are spread over about this many
# effective dimensions (measured by benchmarks/bench_w2.py; the simplex wins on low-dimensional clouds).
LSA_MIN_EFFECTIVE_DIM = 7.0


def _np64(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(-1, 1) if x.ndim == 1 else x


def effective_dim(x, y) -> float:
    """Participation ratio (sum l)^2 / sum l^2 of the pooled sample covariance spectrum."""
    z = np.concatenate([_np64(x), _np64(y)])
    lam = np.clip(np.linalg.eigvalsh(np.cov(z, rowvar=False).reshape(z.shape[1], z.shape[1])), 0, None)
    return float(lam.sum() ** 2 / max((lam**2).sum(), 1e-300))


def exact_w2_sq(x, y, *, method: str = "auto", num_iter_max: int | None = None) -> float:
    """Squared W2 between the uniform empirical measures of x (n, D) and y (m, D), exactly.

    method: 'emd' (POT network simplex, convergence checked), 'lsa' (assignment; needs n == m) or 'auto'
    (lsa for equal sizes spread over >= LSA_MIN_EFFECTIVE_DIM effective dimensions, emd otherwise). If the
    simplex stops before optimality the assignment solver finishes the job (equal sizes) or it raises.
    The two agree to round-off (tests/metrics/test_w2.py).
    """
    x, y = _np64(x), _np64(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x, y: dimensions differ ({x.shape[1]} vs {y.shape[1]})")
    if method not in ("auto", "emd", "lsa"):
        raise ValueError(f"method: must be 'auto', 'emd' or 'lsa' (got {method!r})")
    square = x.shape[0] == y.shape[0]
    if method == "lsa" and not square:
        raise ValueError(f"method: 'lsa' needs equal sample sizes (got {x.shape[0]} and {y.shape[0]})")
    if method == "auto":
        method = "lsa" if square and x.shape[0] > 1 and effective_dim(x, y) >= LSA_MIN_EFFECTIVE_DIM else "emd"
    M_sq = ot.dist(x, y)  # SQUARED Euclidean costs, clipped at 0 by POT
    if method == "emd":
        n, m = M_sq.shape
        iters = num_iter_max or max(10**7, 50 * n * m)
        with warnings.catch_warnings():  # non-convergence is handled below, not merely warned about
            warnings.simplefilter("ignore", UserWarning)
            cost, log = ot.emd2(np.full(n, 1 / n), np.full(m, 1 / m), M_sq, numItermax=iters, log=True)
        if log["result_code"] == 1:
            return float(cost)
        if not square:
            raise RuntimeError(f"exact_w2_sq: network simplex did not converge: {log['warning']}")
    # Subtracting row and column minima leaves the optimal assignment unchanged and makes the
    # shortest-augmenting-path solver several times faster (benchmarks/bench_w2.py).
    reduced = M_sq - M_sq.min(1, keepdims=True)
    reduced -= reduced.min(0, keepdims=True)
    rows, cols = linear_sum_assignment(reduced)
    return float(M_sq[rows, cols].mean())


@dataclass(frozen=True)
class SinkhornW2:
    """sqrt(2 S_eps) of geomloss's debiased Sinkhorn divergence (its cost is |x - y|^2 / 2), eps = blur^2, and the
    largest relative violation of either marginal by the plan of the final (biased) potentials: converged
    when it is below the tolerance asked for."""

    w2: float
    marginal_error: float
    converged: bool


def sinkhorn_w2(x, y, *, blur: float, scaling: float = 0.9, tol: float = 1e-3, chunk: int = 2048) -> SinkhornW2:
    """Debiased Sinkhorn W2 between the uniform empirical measures of x (n, D) and y (m, D) (geomloss, tensorized
    backend, the inputs' device and dtype), with its convergence check: epsilon-scaling ends after one iteration
    at the final blur, which leaves the potentials short of the fixed point unless scaling is close to 1."""
    from geomloss import SamplesLoss

    x, y = torch.as_tensor(x), torch.as_tensor(y)
    common = dict(p=2, blur=blur, scaling=scaling, backend="tensorized")
    value = 2 * SamplesLoss("sinkhorn", debias=True, **common)(x, y)
    f, g = (p.reshape(-1) for p in SamplesLoss("sinkhorn", debias=False, potentials=True, **common)(x, y))
    eps = blur**2
    err = 0.0
    for p, q, fp, gq in ((x, y, f, g), (y, x, g, f)):  # row sums of the plan, then column sums
        log_b = -math.log(q.shape[0])
        for i in range(0, p.shape[0], chunk):
            cost = torch.cdist(p[i : i + chunk], q).pow(2) / 2
            mass = torch.logsumexp((fp[i : i + chunk, None] + gq[None, :] - cost) / eps, dim=1) + log_b
            err = max(err, (mass.exp() - 1).abs().max().item())
    return SinkhornW2(math.sqrt(max(value.item(), 0.0)), err, err < tol)


def exact_w2(x, y, **kwargs) -> float:
    """W2 (not squared) between the empirical measures of x and y; see exact_w2_sq."""
    return math.sqrt(exact_w2_sq(x, y, **kwargs))


@dataclass(frozen=True)
class CoupledError:
    """rms |x_i - y_i| with a confidence interval from the sampling distribution of the mean square, and the tail of
    the per-path errors |x_i - y_i|: their median, 90% and 99% quantiles and maximum, and the share of the mean
    square that the largest 1% of them carry (0.01 when every path errs alike; near 1 when a few paths near a sharp
    boundary carry the rms, and its rate is not the typical path's)."""

    rms: float
    ci_low: float
    ci_high: float
    n: int
    median: float = math.nan
    q90: float = math.nan
    q99: float = math.nan
    max: float = math.nan
    top1_share: float = math.nan


def coupled_rms(x, y, *, confidence: float = 0.95) -> CoupledError:
    """Pathwise error sqrt(mean_i |x_i - y_i|^2) of pairs made from the same noise: an upper bound on W2."""
    x, y = _np64(x), _np64(y)
    if x.shape != y.shape:
        raise ValueError(f"x, y: coupled pairs need equal shapes (got {x.shape} and {y.shape})")
    e2 = ((x - y) ** 2).sum(1)
    n = e2.shape[0]
    mean = float(e2.mean())
    half = stats.t.ppf(0.5 + confidence / 2, max(n - 1, 1)) * (e2.std(ddof=1) / math.sqrt(n) if n > 1 else math.inf)
    paths = np.sqrt(e2)
    median, q90, q99 = np.quantile(paths, [0.5, 0.9, 0.99])
    top = max(1, math.ceil(0.01 * n))
    share = float(np.sort(e2)[-top:].sum() / e2.sum()) if e2.sum() > 0 else 0.0
    return CoupledError(
        math.sqrt(mean),
        math.sqrt(max(mean - half, 0.0)),
        math.sqrt(mean + half),
        n,
        float(median),
        float(q90),
        float(q99),
        float(paths.max()),
        share,
    )


def _psd_sqrt(S: np.ndarray) -> np.ndarray:
    lam, U = np.linalg.eigh((S + S.T) / 2)
    return (U * np.sqrt(np.clip(lam, 0, None))) @ U.T


def gaussian_w2_sq(m1, S1, m2, S2) -> float:
    """Bures closed form |m1 - m2|^2 + tr(S1 + S2 - 2 (S2^{1/2} S1 S2^{1/2})^{1/2}) for N(m1, S1), N(m2, S2)."""
    m1, m2 = _np64(m1).ravel(), _np64(m2).ravel()
    S1, S2 = np.atleast_2d(_np64(S1)), np.atleast_2d(_np64(S2))
    r2 = _psd_sqrt(S2)
    cross = np.clip(np.linalg.eigvalsh(r2 @ S1 @ r2), 0, None)
    return float(max(((m1 - m2) ** 2).sum() + np.trace(S1) + np.trace(S2) - 2 * np.sqrt(cross).sum(), 0.0))


def empirical_gaussian_w2_sq(x, y) -> float:
    """gaussian_w2_sq between moment-matched Gaussians of two samples: a lower bound on their W2^2 (Gelbrich)."""
    x, y = _np64(x), _np64(y)
    cov = lambda z: np.atleast_2d(np.cov(z, rowvar=False, bias=True))  # noqa: E731
    return gaussian_w2_sq(x.mean(0), cov(x), y.mean(0), cov(y))


def sliced_w2(x, y, *, n_projections: int = 256, seed: int) -> float:
    """Sliced W2 (root of the mean over random directions of the squared 1-D W2): a lower bound on W2."""
    return float(ot.sliced_wasserstein_distance(_np64(x), _np64(y), n_projections=n_projections, p=2, seed=seed))


def early_stopping_w2_bound(target, interpolant, T: float) -> float:
    """Upper bound on W2(p_T, nu), p_T the law of X_T = a(T) Z + b(T) X1, in closed form.

    Couple p_T = sum_k pi_k N(b mu_k, a^2 I + b^2 Sigma_k) with nu component by component; each pair of
    Gaussians shares an eigenbasis, so its Bures distance is (1 - b)^2 |mu_k|^2 + sum_i (sqrt(a^2 + b^2 l_ki)
    - sqrt(l_ki))^2. Exact for a single Gaussian; O(1 - T) for smoothed targets and O(sqrt(1 - T)) for
    atoms, as the early-stopping error should be.
    """

    ip = as_interpolant(interpolant)
    a, b = float(ip.a(T)), float(ip.b(T))
    if isinstance(target, SmoothedManifold):  # Unif(M) * N(0, s^2 I): couple given the manifold point Y, the same way
        s = target.s
        per_point = (1 - b) ** 2 * target.support_second_moment() + target.ambient_dim * (
            math.sqrt(a * a + b * b * s * s) - s
        ) ** 2
        return math.sqrt(per_point)
    lam = target.cov.eigenvalues().clamp_min(0.0)
    per_k = (1 - b) ** 2 * (target.means**2).sum(1) + ((a * a + b * b * lam).sqrt() - lam.sqrt()).pow(2).sum(1)
    return math.sqrt(float(target.weights @ per_k))


@dataclass(frozen=True)
class NoiseFloor:
    """W2 between independent samples of the same target at size n, over `repeats` pairs."""

    n: int
    mean: float
    sd: float
    values: tuple[float, ...]


def noise_floor_w2(
    target, n: int, *, generator: torch.Generator | int, repeats: int = 3, method: str = "auto"
) -> NoiseFloor:
    """The two-sample noise floor W2(nu_n, nu'_n) of `target` at sample size n (docs/concepts/theory.md §5)."""
    g = torch.Generator().manual_seed(generator) if isinstance(generator, int) else generator
    vals = tuple(
        exact_w2(
            target.sample(n, generator=g, dtype=torch.float64),
            target.sample(n, generator=g, dtype=torch.float64),
            method=method,
        )
        for _ in range(repeats)
    )
    return NoiseFloor(n, float(np.mean(vals)), float(np.std(vals, ddof=1)) if repeats > 1 else 0.0, vals)


@dataclass(frozen=True)
class SampledW2:
    """A sample-vs-target W2 with the target's floor at the same size; resolved when w2 > margin * floor."""

    w2: float
    floor: float
    floor_sd: float
    n: int
    resolved: bool


def sampled_w2(
    x, target, *, generator: torch.Generator | int, repeats: int = 3, margin: float = 2.0, method: str = "auto"
) -> SampledW2:
    """W2 of samples x (n, D) against n fresh target samples, beside the target's noise floor at n.

    A point is resolved only when its W2 exceeds `margin` times the floor: below that the floor, not the
    quantity under study, dominates (sample-vs-sample W2 cannot see a 1/K rate at realistic n).
    """
    g = torch.Generator().manual_seed(generator) if isinstance(generator, int) else generator
    n = _np64(x).shape[0]
    w2 = exact_w2(x, target.sample(n, generator=g, dtype=torch.float64), method=method)
    floor = noise_floor_w2(target, n, generator=g, repeats=repeats, method=method)
    return SampledW2(w2, floor.mean, floor.sd, n, w2 > margin * floor.mean)
