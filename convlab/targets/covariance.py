"""Per-component covariances Sigma_k of a Gaussian mixture, with the solves the exact fields need.

At time t the component law of X_t is N(b mu_k, C_k) with C_k = a^2 I + b^2 Sigma_k (docs/concepts/theory.md §2).
Each structure solves with C_k in its own basis, so no inverse is ever formed:

- Isotropic:  Sigma_k = v_k I                          (cost O(D) per point and component)
- Diagonal:   Sigma_k = diag(v_k)                      (O(D))
- Spectral:   Sigma_k = v_k I + U_k diag(l_k) U_k^T    (O(D r), Woodbury in the eigenbasis; U_k orthonormal
              D x r). Full covariances are r = D with v_k = 0; low-rank (degenerate) ones r < D.

Shapes in the solves: residuals r are (n, k, D) for a slice of k components; a2 = a^2 and b2 = b^2 are
(n, 1) tensors (one time per point) or (1, 1) (one time for all).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np
import torch
from torch import Tensor


class Covariance(ABC):
    """K covariances in R^D stored as float64 parameters; `to` gives a copy for a device and dtype."""

    K: int
    D: int

    @abstractmethod
    def to(self, device: torch.device, dtype: torch.dtype) -> Covariance: ...

    @abstractmethod
    def dense(self) -> Tensor:
        """(K, D, D) matrices."""

    @abstractmethod
    def eigenvalues(self) -> Tensor:
        """(K, D) eigenvalues of each Sigma_k (unordered)."""

    @abstractmethod
    def ranks(self) -> Tensor:
        """(K,) ranks of Sigma_k."""

    @abstractmethod
    def sqrt_apply(self, idx: Tensor, z: Tensor) -> Tensor:
        """Sigma_{idx_i}^{1/2} z_i for z of shape (n, D): the noise of a sample from component idx_i."""

    @abstractmethod
    def solve(self, sl: slice, a2: Tensor, b2: Tensor, r: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """u = C^{-1} r (n, k, D), quadratic form r.u (n, k) and log det C (n|1, k) for components sl."""

    @abstractmethod
    def apply(self, sl: slice, u: Tensor) -> Tensor:
        """Sigma u for u of shape (n, k, D)."""

    @abstractmethod
    def within(self, sl: slice, a2: Tensor, b2: Tensor) -> Tensor:
        """Sigma - b^2 Sigma C^{-1} Sigma = Cov(X1 | X_t, k), shape (n|1, k, D, D)."""


def _col(v: Tensor) -> Tensor:
    """(n|1, 1) time factor -> (n|1, 1, 1), broadcastable against (n, k, D)."""
    return v.unsqueeze(-1)


class Isotropic(Covariance):
    """Sigma_k = var_k I."""

    def __init__(self, var: Tensor, D: int):
        self.var = var
        self.K, self.D = var.shape[0], D

    def to(self, device, dtype):
        return Isotropic(self.var.to(device, dtype), self.D)

    def dense(self):
        eye = torch.eye(self.D, dtype=self.var.dtype, device=self.var.device)
        return self.var[:, None, None] * eye

    def eigenvalues(self):
        return self.var[:, None].expand(self.K, self.D)

    def ranks(self):
        return torch.where(self.var > 0, self.D, 0)

    def sqrt_apply(self, idx, z):
        return self.var[idx].sqrt()[:, None] * z

    def solve(self, sl, a2, b2, r):
        c = a2 + b2 * self.var[sl]
        u = r / c.unsqueeze(-1)
        return u, (r * u).sum(-1), self.D * torch.log(c)

    def apply(self, sl, u):
        return self.var[sl][:, None] * u

    def within(self, sl, a2, b2):
        var = self.var[sl]
        eye = torch.eye(self.D, dtype=var.dtype, device=var.device)
        return (var * a2 / (a2 + b2 * var))[..., None, None] * eye


class Diagonal(Covariance):
    """Sigma_k = diag(var_k), var of shape (K, D)."""

    def __init__(self, var: Tensor):
        self.var = var
        self.K, self.D = var.shape

    def to(self, device, dtype):
        return Diagonal(self.var.to(device, dtype))

    def dense(self):
        return torch.diag_embed(self.var)

    def eigenvalues(self):
        return self.var

    def ranks(self):
        return (self.var > 0).sum(-1)

    def sqrt_apply(self, idx, z):
        return self.var[idx].sqrt() * z

    def solve(self, sl, a2, b2, r):
        c = _col(a2) + _col(b2) * self.var[sl]
        u = r / c
        return u, (r * u).sum(-1), torch.log(c).sum(-1)

    def apply(self, sl, u):
        return self.var[sl] * u

    def within(self, sl, a2, b2):
        var = self.var[sl]
        return torch.diag_embed(var * _col(a2) / (_col(a2) + _col(b2) * var))


class Spectral(Covariance):
    """Sigma_k = var_k I + U_k diag(lam_k) U_k^T with orthonormal U_k (K, D, r), lam_k >= 0 (K, r).

    With r = D this is any PSD matrix (its eigendecomposition); with r < D and var_k = 0 a degenerate
    (low-rank) covariance, with var_k > 0 a low-rank-plus-isotropic one. C_k has eigenvalues
    a^2 + b^2 (var_k + lam_k) on span U_k and c0 = a^2 + b^2 var_k on its complement.
    """

    def __init__(self, U: Tensor, lam: Tensor, var: Tensor):
        self.U, self.lam, self.var = U, lam, var
        self.K, self.D, self.r = U.shape
        # With r = D the complement is empty; skipping it avoids 0/0 where c0 = a^2 vanishes at t = 1.
        self.has_complement = self.r < self.D

    @classmethod
    def from_dense(cls, cov: np.ndarray) -> Spectral:
        """Eigendecomposition of (K, D, D) symmetric PSD matrices (validated by the caller)."""
        lam, U = np.linalg.eigh(cov)
        lam = np.clip(lam, 0.0, None)
        K = cov.shape[0]
        return cls(torch.from_numpy(U), torch.from_numpy(lam), torch.zeros(K, dtype=torch.float64))

    @classmethod
    def from_factor(cls, factor: np.ndarray, var: np.ndarray) -> Spectral:
        """Sigma_k = F_k F_k^T + var_k I from factors F (K, D, r), orthonormalised by SVD."""
        U, s, _ = np.linalg.svd(factor, full_matrices=False)
        return cls(torch.from_numpy(U), torch.from_numpy(s**2), torch.from_numpy(var))

    def to(self, device, dtype):
        return Spectral(self.U.to(device, dtype), self.lam.to(device, dtype), self.var.to(device, dtype))

    def dense(self):
        eye = torch.eye(self.D, dtype=self.U.dtype, device=self.U.device)
        return self.var[:, None, None] * eye + torch.einsum("kdr,kr,ker->kde", self.U, self.lam, self.U)

    def eigenvalues(self):
        on_span = self.var[:, None] + self.lam
        return torch.cat([on_span, self.var[:, None].expand(self.K, self.D - self.r)], 1)

    def ranks(self):
        tol = 1e-12 * self.lam.amax(-1, keepdim=True).clamp_min(1e-300)
        return torch.where(self.var > 0, self.D, (self.lam > tol).sum(-1))

    def sqrt_apply(self, idx, z):
        U, lam, var = self.U[idx], self.lam[idx], self.var[idx]
        proj = torch.einsum("ndr,nd->nr", U, z)
        gain = (var[:, None] + lam).sqrt() - var.sqrt()[:, None]
        return var.sqrt()[:, None] * z + torch.einsum("ndr,nr->nd", U, gain * proj)

    def solve(self, sl, a2, b2, r):
        U, lam, var = self.U[sl], self.lam[sl], self.var[sl]
        c0 = a2 + b2 * var  # (n|1, k)
        ce = c0.unsqueeze(-1) + _col(b2) * lam  # (n|1, k, r)
        rho = torch.einsum("nkd,kdr->nkr", r, U)
        u = torch.einsum("kdr,nkr->nkd", U, rho / ce)
        quad = (rho * rho / ce).sum(-1)
        logdet = torch.log(ce).sum(-1)
        if self.has_complement:
            perp = r - torch.einsum("kdr,nkr->nkd", U, rho)
            u = u + perp / c0.unsqueeze(-1)
            quad = quad + (perp * perp).sum(-1) / c0
            logdet = logdet + (self.D - self.r) * torch.log(c0)
        return u, quad, logdet

    def apply(self, sl, u):
        U, lam, var = self.U[sl], self.lam[sl], self.var[sl]
        return var[:, None] * u + torch.einsum("kdr,kr,nkr->nkd", U, lam, torch.einsum("nkd,kdr->nkr", u, U))

    def within(self, sl, a2, b2):
        U, lam, var = self.U[sl], self.lam[sl], self.var[sl]
        c0 = a2 + b2 * var
        on_span = (var.unsqueeze(-1) + lam) * _col(a2) / (c0.unsqueeze(-1) + _col(b2) * lam)
        eye = torch.eye(self.D, dtype=U.dtype, device=U.device)
        if not self.has_complement:
            return torch.einsum("kdr,nkr,ker->nkde", U, on_span.expand(*c0.shape, self.r), U)
        off_span = var * a2 / c0
        gain = (on_span - off_span.unsqueeze(-1)).expand(*c0.shape, self.r)
        return off_span[..., None, None] * eye + torch.einsum("kdr,nkr,ker->nkde", U, gain, U)


def as_covariance(covs, K: int, D: int) -> Covariance:
    """Covariance from a Covariance, a scalar or (K,) variances (isotropic), (K, D) (diagonal) or (K, D, D) (full).

    Raises ValueError naming `covs` and the offending value for negative variances, wrong shapes,
    asymmetric or non-PSD matrices.
    """
    if isinstance(covs, Covariance):
        if (covs.K, covs.D) != (K, D):
            raise ValueError(f"covs: structure is for K={covs.K}, D={covs.D} but the mixture has K={K}, D={D}")
        return covs
    arr = np.asarray(covs.detach().cpu() if isinstance(covs, Tensor) else covs, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"covs: must be finite (got {arr!r})")
    if arr.ndim == 0:
        arr = np.full(K, float(arr))
    if arr.ndim == 1:
        if arr.shape != (K,):
            raise ValueError(f"covs: isotropic variances need shape ({K},) (got shape {arr.shape})")
        _check_nonneg("covs", arr)
        return Isotropic(torch.from_numpy(arr.copy()), D)
    if arr.ndim == 2:
        if arr.shape != (K, D):
            raise ValueError(f"covs: diagonal variances need shape ({K}, {D}) (got shape {arr.shape})")
        _check_nonneg("covs", arr)
        return Diagonal(torch.from_numpy(arr.copy()))
    if arr.ndim == 3:
        if arr.shape != (K, D, D):
            raise ValueError(f"covs: full covariances need shape ({K}, {D}, {D}) (got shape {arr.shape})")
        scale = max(np.abs(arr).max(), 1e-300)
        asym = np.abs(arr - arr.transpose(0, 2, 1)).max()
        if asym > 1e-10 * scale:
            k = int(np.abs(arr - arr.transpose(0, 2, 1)).reshape(K, -1).max(1).argmax())
            raise ValueError(f"covs[{k}]: must be symmetric (got max |S - S^T| = {asym:.3g})")
        sym = (arr + arr.transpose(0, 2, 1)) / 2
        eig = np.linalg.eigvalsh(sym)
        bad = np.where(eig.min(1) < -1e-10 * scale)[0]
        if bad.size:
            k = int(bad[0])
            raise ValueError(f"covs[{k}]: must be positive semi-definite (got smallest eigenvalue {eig[k].min():.3g})")
        return Spectral.from_dense(sym)
    raise ValueError(f"covs: expected a scalar, (K,), (K, D) or (K, D, D) array (got shape {arr.shape})")


def low_rank(factor, var=0.0) -> Spectral:
    """Sigma_k = F_k F_k^T + var_k I from factors F of shape (K, D, r); var a scalar or (K,), >= 0."""
    F = np.asarray(factor, dtype=np.float64)
    if F.ndim != 3 or not np.all(np.isfinite(F)):
        raise ValueError(f"factor: expected a finite (K, D, r) array (got shape {F.shape})")
    v = np.broadcast_to(np.asarray(var, dtype=np.float64), (F.shape[0],)).copy()
    _check_nonneg("var", v)
    return Spectral.from_factor(F, v)


def _check_nonneg(name: str, arr: np.ndarray) -> None:
    if np.any(arr < 0):
        idx = np.unravel_index(int(np.argmin(arr)), arr.shape)
        where = name + "[" + ", ".join(map(str, idx)) + "]"
        raise ValueError(f"{where}: variance must be >= 0 (got {arr[idx]:.6g})")


LOG_2PI = math.log(2 * math.pi)
