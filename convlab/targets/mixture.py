"""Gaussian mixtures with exact velocity, score, denoiser and posterior covariance (docs/concepts/theory.md §2).

nu = sum_k pi_k N(mu_k, Sigma_k). Given X_t = x, component k has posterior weight
w_k = softmax_k(log pi_k + log N(x; b mu_k, C_k)), C_k = a^2 I + b^2 Sigma_k, and with u_k = C_k^{-1}(x - b mu_k):

    score    = - sum_k w_k u_k
    denoiser = sum_k w_k m_k,   m_k = mu_k + b Sigma_k u_k
    velocity = b' denoiser + a a' sum_k w_k u_k       (= sum_k w_k [b' mu_k + (a a' I + b b' Sigma_k) u_k])

The weights are streamed over component chunks with an online log-sum-exp, so memory is bounded by
`chunk_size` elements per block whatever the number of components. Isotropic components take a fast path
whose cost is two matrix products of the points with the means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from convlab.interpolants import Interpolant, as_interpolant
from convlab.targets.covariance import LOG_2PI, Covariance, Isotropic, as_covariance


@dataclass
class _Params:
    """Mixture parameters on one device and dtype."""

    weights: Tensor  # (K,)
    log_weights: Tensor  # (K,)
    means: Tensor  # (K, D)
    means_sq: Tensor  # (K,) |mu_k|^2
    cov: Covariance
    aug: Tensor | None = None  # (K, D + 2) [mu | 1 | v] for isotropic covariances (the fast path's one product)


class GaussianMixture:
    """A Gaussian mixture target with exact fields for any interpolant.

    Args:
        weights: (K,) nonnegative, summing to 1.
        means: (K, D).
        covs: a Covariance (e.g. `low_rank(F)`), a scalar or (K,) isotropic variances, (K, D) diagonal
            variances or (K, D, D) PSD matrices. Zero (degenerate) covariances are allowed: the fields
            are then defined for t < 1.
        intrinsic_dim: dimension of the support; by default the largest rank of the Sigma_k.
        name: the registry name the target was made under (for records); named constructors fill it in.
        params: the parameters it was made with (for records).
        chunk_size: most elements of any temporary block (points x components x width).

    Tensors in and out are batch-first (n, D) on the device and dtype of the input.
    """

    def __init__(
        self,
        weights,
        means,
        covs,
        *,
        intrinsic_dim: int | None = None,
        name: str = "gaussian_mixture",
        params: dict[str, Any] | None = None,
        chunk_size: int = 2**22,
    ):
        mu = _as_array("means", means)
        if mu.ndim != 2 or mu.shape[0] < 1 or mu.shape[1] < 1:
            raise ValueError(f"means: expected shape (K, D) with K, D >= 1 (got shape {mu.shape})")
        K, D = mu.shape
        w = _as_array("weights", weights)
        if w.shape != (K,):
            raise ValueError(f"weights: expected shape ({K},) to match means (got shape {w.shape})")
        if np.any(w < 0):
            raise ValueError(f"weights: must be >= 0 (got {w.min():.6g} at index {int(w.argmin())})")
        if abs(w.sum() - 1.0) > 1e-6:
            raise ValueError(f"weights: must sum to 1 (got sum {w.sum():.9g})")
        if not (isinstance(chunk_size, int) and chunk_size >= 1):
            raise ValueError(f"chunk_size: must be a positive integer (got {chunk_size!r})")
        cov = as_covariance(covs, K, D)
        self.name = name
        self.params = dict(params or {})
        self.chunk_size = chunk_size
        self.ambient_dim = D
        ranks = cov.ranks()
        self.intrinsic_dim = int(ranks.max()) if intrinsic_dim is None else intrinsic_dim
        if not (isinstance(self.intrinsic_dim, int) and 0 <= self.intrinsic_dim <= D):
            raise ValueError(f"intrinsic_dim: must be an integer in [0, ambient_dim={D}] (got {intrinsic_dim!r})")
        # Some Sigma_k singular: nu has no density, and the fields exist only for t < 1.
        self.is_degenerate = bool((ranks < D).any())
        self._shared_var = isinstance(cov, Isotropic) and bool((cov.var == cov.var[0]).all())
        w = w / w.sum()
        self._base = _Params(
            weights=torch.from_numpy(w),
            # A zero weight gets a huge negative (not -inf) logit, so a block of only such components cannot
            # produce exp(-inf + inf) = nan in the streamed softmax; later blocks rescale it to exactly 0.
            log_weights=torch.from_numpy(np.where(w > 0, np.log(np.where(w > 0, w, 1.0)), -1e30)),
            means=torch.from_numpy(mu),
            means_sq=torch.from_numpy((mu * mu).sum(1)),
            cov=cov,
        )
        self._cache: dict[tuple[torch.device, torch.dtype], _Params] = {}

    # -- structure -------------------------------------------------------------------------------------------

    @property
    def n_components(self) -> int:
        return self._base.means.shape[0]

    @property
    def weights(self) -> Tensor:
        return self._base.weights

    @property
    def means(self) -> Tensor:
        return self._base.means

    @property
    def cov(self) -> Covariance:
        return self._base.cov

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, **self.params}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({args}) [K={self.n_components}, D={self.ambient_dim}, d={self.intrinsic_dim}]"

    def mean(self) -> Tensor:
        """E[X1], (D,) float64."""
        return self.weights @ self.means

    def covariance(self) -> Tensor:
        """Cov(X1), (D, D) float64: sum_k pi_k (Sigma_k + mu_k mu_k^T) - m m^T."""
        dm = self.means - self.mean()
        return torch.einsum("k,kde->de", self.weights, self.cov.dense()) + torch.einsum(
            "k,kd,ke->de", self.weights, dm, dm
        )

    def _on(self, like: Tensor) -> _Params:
        key = (like.device, like.dtype)
        if key not in self._cache:
            b = self._base
            P = _Params(
                *(v.to(like.device, like.dtype) for v in (b.weights, b.log_weights, b.means, b.means_sq)),
                cov=b.cov.to(like.device, like.dtype),
            )
            if isinstance(P.cov, Isotropic):
                P.aug = torch.cat([P.means, torch.ones_like(P.cov.var)[:, None], P.cov.var[:, None]], 1)
            self._cache[key] = P
        return self._cache[key]

    # -- sampling ----------------------------------------------------------------------------------------------

    def sample(self, n: int, *, generator: torch.Generator | int, device=None, dtype=None) -> Tensor:
        """n draws of X1 ~ nu, (n, D). `generator` is a torch.Generator or an integer seed (CPU generator)."""
        generator, device, dtype = draw_args(generator, device, dtype)
        P = self._on(torch.empty(0, device=device, dtype=dtype))
        idx = torch.multinomial(P.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.ambient_dim, generator=generator, device=device, dtype=dtype)
        step = max(1, self.chunk_size // (self.ambient_dim * max(1, getattr(P.cov, "r", 1))))
        noise = [P.cov.sqrt_apply(idx[i : i + step], z[i : i + step]) for i in range(0, n, step)]
        return P.means[idx] + torch.cat(noise) if n else P.means[idx]

    def noise(self, n: int, *, generator: torch.Generator, device=None, dtype=None) -> Tensor:
        """n standard normal vectors in R^D (the interpolant's Z), from `generator`."""
        device = torch.device(device) if device is not None else generator.device
        return torch.randn(
            n, self.ambient_dim, generator=generator, device=device, dtype=dtype or torch.get_default_dtype()
        )

    # -- exact fields ------------------------------------------------------------------------------------------

    def score(self, t, x: Tensor, interpolant: Interpolant | str | dict) -> Tensor:
        """grad_x log p_t(x), (n, D)."""
        a, b = self._ab(as_interpolant(interpolant), t, x)[:2]
        return -self._moments(a, b, x)[1]

    def denoiser(self, t, x: Tensor, interpolant: Interpolant | str | dict) -> Tensor:
        """E[X1 | X_t = x], (n, D)."""
        a, b = self._ab(as_interpolant(interpolant), t, x)[:2]
        return self._moments(a, b, x)[2]

    def velocity(self, t, x: Tensor, interpolant: Interpolant | str | dict) -> Tensor:
        """V(t, x) = E[a'(t) Z + b'(t) X1 | X_t = x], (n, D)."""
        a, b, db, a_da = self._ab(as_interpolant(interpolant), t, x)
        _, ubar, den = self._moments(a, b, x)
        return db * den + a_da * ubar

    def log_density(self, t, x: Tensor, interpolant: Interpolant | str | dict) -> Tensor:
        """log p_t(x), (n,)."""
        a, b = self._ab(as_interpolant(interpolant), t, x)[:2]
        return self._moments(a, b, x)[0]

    def log_prob(self, x: Tensor) -> Tensor:
        """log density of nu at x, (n,); undefined (ValueError) when some Sigma_k is singular."""
        if self.is_degenerate:
            raise ValueError(f"log_prob: {self.name} has singular covariances, so nu has no density")
        one = torch.ones(1, 1, dtype=x.dtype, device=x.device)
        return self._moments(0 * one, one, x)[0]

    def posterior_cov(self, t, x: Tensor, interpolant: Interpolant | str | dict) -> Tensor:
        """Cov(X1 | X_t = x) = sum_k w_k [Cov_k + (m_k - D)(m_k - D)^T], (n, D, D); two passes for stability."""
        a, b = self._ab(as_interpolant(interpolant), t, x)[:2]
        lse, _, den = self._moments(a, b, x)
        P = self._on(x)
        n, D = x.shape
        out = torch.zeros(n, D, D, dtype=x.dtype, device=x.device)
        for pts, comps in self._blocks(n, width=D * D):
            xs, a2, b_, b2 = self._rows(pts, x, a, b)
            L, _, m = self._component_terms(P, comps, xs, a2, b_, b2)
            w = torch.exp(L - lse[pts, None])
            dm = m - den[pts, None, :]
            within = P.cov.within(comps, a2, b2)
            out[pts] = out[pts] + torch.einsum("nk,nkde->nde", w, within.expand(len(xs), *within.shape[1:]))
            out[pts] = out[pts] + torch.einsum("nk,nkd,nke->nde", w, dm, dm)
        return out

    # -- internals ---------------------------------------------------------------------------------------------

    def _ab(self, interpolant: Interpolant, t, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """a, b, b', a a' at t as (n, 1) or (1, 1) tensors on x's device and dtype."""
        t = time_column(t, x, self.ambient_dim)
        return interpolant.a(t), interpolant.b(t), interpolant.db(t), interpolant.a_da(t)

    def _blocks(self, n: int, width: int):
        """(point slice, component slice) pairs with at most ~chunk_size * width-elements per block."""
        K, budget = self.n_components, self.chunk_size
        if K * width * 16 <= budget:
            cn, ck = max(1, budget // (K * width)), K
        else:
            cn = min(n, 16) or 1
            ck = max(1, budget // (cn * width))
        for i in range(0, n, cn):
            for k in range(0, K, ck):
                yield slice(i, min(i + cn, n)), slice(k, min(k + ck, K))

    @staticmethod
    def _rows(pts: slice, x: Tensor, a: Tensor, b: Tensor):
        """Rows of x and of the (n|1, 1) time factors for one point block."""
        a_ = a[pts] if a.shape[0] > 1 else a
        b_ = b[pts] if b.shape[0] > 1 else b
        return x[pts], a_ * a_, b_, b_ * b_

    def _component_terms(self, P: _Params, comps: slice, xs: Tensor, a2: Tensor, b: Tensor, b2: Tensor):
        """Logits L (n, k), u_k = C_k^{-1}(x - b mu_k) and m_k = E[X1 | x, k] (n, k, D) for a block."""
        mu = P.means[comps]
        r = xs[:, None, :] - b.unsqueeze(-1) * mu
        u, quad, logdet = P.cov.solve(comps, a2, b2, r)
        L = P.log_weights[comps] - 0.5 * (self.ambient_dim * LOG_2PI + logdet + quad)
        m = mu + b.unsqueeze(-1) * P.cov.apply(comps, u)
        return L, u, m

    def _moments(self, a: Tensor, b: Tensor, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """log p_t(x) (n,), sum_k w_k u_k (n, D) and the denoiser (n, D)."""
        P = self._on(x)
        if isinstance(P.cov, Isotropic):
            return self._moments_isotropic(P, a, b, x)
        n, D = x.shape
        lse, ubar, den = x.new_empty(n), torch.empty_like(x), torch.empty_like(x)
        for pts, comps in self._blocks(n, width=D):
            if comps.start == 0:
                acc = _OnlineSoftmax()
            xs, a2, b_, b2 = self._rows(pts, x, a, b)
            L, u, m = self._component_terms(P, comps, xs, a2, b_, b2)
            e = acc.step(L)
            acc.add(e.sum(1, keepdim=True), torch.einsum("nk,nkd->nd", e, u), torch.einsum("nk,nkd->nd", e, m))
            if comps.stop == self.n_components:
                total, U, M = acc.sums
                lse[pts], ubar[pts], den[pts] = (acc.m + torch.log(total)).squeeze(1), U / total, M / total
        return lse, ubar, den

    def _moments_isotropic(self, P: _Params, a: Tensor, b: Tensor, x: Tensor):
        """Isotropic fast path: with c_k = a^2 + b^2 v_k and M = sum_k (w_k / c_k) mu_k,
        sum_k w_k u_k = x sum_k (w_k / c_k) - b M  and  denoiser = a^2 M + b x sum_k (w_k v_k / c_k).
        The weighted sums come out of one product with the augmented matrix [mu | 1 | v] (K, D + 2).
        """
        n, D = x.shape
        var, shared = P.cov.var, self._shared_var
        aug = P.aug
        lse, ubar, den = x.new_empty(n), torch.empty_like(x), torch.empty_like(x)
        for pts, comps in self._blocks(n, width=1):
            xs, a2, b_, b2 = self._rows(pts, x, a, b)
            # One shared variance (manifold atoms) makes c a per-row factor: the |x|^2 / 2c term drops out of
            # the softmax and 1/c is applied once after the reductions, leaving two matmuls and one exp pass.
            c = a2 + b2 * (var[:1] if shared else var[comps])
            inv_c = 1.0 / c
            xx = (xs * xs).sum(1, keepdim=True)
            if comps.start == 0:
                acc = _OnlineSoftmax()
            col = P.log_weights[comps] - 0.5 * D * torch.log(2 * math.pi * c) - 0.5 * b2 * P.means_sq[comps] * inv_c
            if shared:
                # The row scale b/c goes into the small (n, D) factor, so one fused addmm writes the logits:
                # every extra full-size temporary costs a fresh allocation and its page faults.
                e = acc.step(torch.addmm(col, xs * (b_ * inv_c), P.means[comps].T))
                acc.add(e @ aug[comps])  # [sum e mu, sum e, sum e v]
            else:
                L = torch.addcmul(col, xs @ P.means[comps].T, b_ * inv_c)
                e = acc.step(L.sub_(0.5 * xx * inv_c) if not L.requires_grad else L - 0.5 * xx * inv_c)
                acc.add(
                    e.sum(1, keepdim=True), (e * inv_c) @ aug[comps]
                )  # sum e, [sum e mu / c, sum e / c, sum e v / c]
            if comps.stop == self.n_components:
                if shared:
                    (sums,) = acc.sums
                    total = sums[:, D : D + 1]
                    M, S1 = sums[:, :D] * inv_c / total, inv_c
                    S2 = S1 * var[:1]
                    lse[pts] = (acc.m + torch.log(total) - 0.5 * xx * inv_c).squeeze(1)
                else:
                    total, sums = acc.sums
                    M, S1, S2 = sums[:, :D] / total, sums[:, D : D + 1] / total, sums[:, D + 1 :] / total
                    lse[pts] = (acc.m + torch.log(total)).squeeze(1)
                ubar[pts] = xs * S1 - b_ * M
                den[pts] = a2 * M + b_ * xs * S2
        return lse, ubar, den


def draw_args(generator: torch.Generator | int, device, dtype) -> tuple[torch.Generator, torch.device, torch.dtype]:
    """A sampler's generator (an integer seeds a generator on `device`, CPU by default), its device (the
    generator's unless given) and its dtype (torch's default unless given)."""
    if isinstance(generator, int):
        generator = torch.Generator(device or "cpu").manual_seed(generator)
    device = torch.device(device) if device is not None else generator.device
    return generator, device, dtype or torch.get_default_dtype()


def time_column(t, x: Tensor, ambient_dim: int) -> Tensor:
    """A scalar or (n,) time as a (1, 1) or (n, 1) tensor on x's device and dtype, after checking x is (n, D)."""
    if x.ndim != 2 or x.shape[1] != ambient_dim:
        raise ValueError(f"x: expected shape (n, {ambient_dim}) (got shape {tuple(x.shape)})")
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    if t.ndim == 0 or t.numel() == 1:
        return t.reshape(1, 1)
    if t.shape in ((x.shape[0],), (x.shape[0], 1)):
        return t.reshape(-1, 1)
    raise ValueError(f"t: expected a scalar or shape ({x.shape[0]},) (got shape {tuple(t.shape)})")


class _OnlineSoftmax:
    """Streams softmax-weighted sums over component blocks: a running row max m, and sums rescaled by
    exp(m_old - m_new) whenever a later block raises it (the log-sum-exp trick, one block at a time)."""

    def __init__(self):
        self.m: Tensor | None = None
        self.alpha: Tensor | None = None
        self.sums: list[Tensor] | None = None

    def step(self, L: Tensor) -> Tensor:
        """exp(L - m) for a block of logits (n, k) against the running max m."""
        m_block = L.amax(1, keepdim=True)
        if self.m is None:
            self.m = m_block
        else:
            m_new = torch.maximum(self.m, m_block)
            self.alpha = torch.exp(self.m - m_new)
            self.m = m_new
        # In place saves a full-size allocation; under autograd amax still needs L, so work on a copy then.
        return (L - self.m).exp_() if L.requires_grad else L.sub_(self.m).exp_()

    def add(self, *terms: Tensor) -> None:
        """Add the block's weighted sums (each (n, .)) to the running ones."""
        if self.sums is None:
            self.sums = list(terms)
        else:
            self.sums = [s * self.alpha + t for s, t in zip(self.sums, terms)]


def _as_array(name: str, value) -> np.ndarray:
    arr = np.asarray(value.detach().cpu() if isinstance(value, Tensor) else value, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: must be finite (got {arr!r})")
    return arr
