"""Known, seeded perturbation fields delta(x): an injected score error, or a velocity error for stability checks.

Both kinds are time-independent and smooth, with their Jacobian in closed form (so the Lipschitz constant of
a perturbed field is exact, not differenced):

- 'fourier': delta(x) = eps sqrt(2 / m) sum_j u_j cos(w_j . x + c_j), with u_j uniform on the unit sphere,
  w_j ~ N(0, I / lengthscale^2), c_j ~ U[0, 2 pi). Its mean square is eps^2 on average over the draw of the
  features (E cos^2 = 1/2), at every x; its Lipschitz constant is of order eps / lengthscale.
- 'constant': delta(x) = eps u, u uniform on the unit sphere. Affine, so Gaussian targets stay Gaussian under
  the perturbed flow and the closed-form W2 still applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class PerturbationSpec:
    """A perturbation to draw: `kind` 'fourier' or 'constant', root mean square size `eps`, and (fourier only)
    `n_features` features with frequencies of scale 1 / `lengthscale`."""

    kind: str = "fourier"
    eps: float = 0.0
    n_features: int = 64
    lengthscale: float = 1.0


@dataclass(frozen=True)
class Perturbation:
    """delta(x) = eps * shape(x); `u` (m, D) directions, `w` (m, D) frequencies and `c` (m,) phases (fourier)."""

    eps: float
    u: Tensor
    w: Tensor | None = None
    c: Tensor | None = None

    def __call__(self, x: Tensor) -> Tensor:
        """delta(x), (n, D)."""
        u = self.u.to(x)
        if self.w is None:
            return (self.eps * u[0]).expand_as(x)
        m = u.shape[0]
        return self.eps * math.sqrt(2 / m) * torch.cos(x @ self.w.to(x).T + self.c.to(x)) @ u

    def jacobian(self, x: Tensor) -> Tensor:
        """grad_x delta(x), (n, D, D) with [i, j] = d delta_i / d x_j."""
        n, D = x.shape
        u = self.u.to(x)
        if self.w is None:
            return x.new_zeros(n, D, D)
        m = u.shape[0]
        w = self.w.to(x)
        s = -self.eps * math.sqrt(2 / m) * torch.sin(x @ w.T + self.c.to(x))  # (n, m)
        return torch.einsum("nm,mi,mj->nij", s, u, w)


def make_perturbation(spec: PerturbationSpec, *, D: int, generator: torch.Generator) -> Perturbation:
    """A seeded perturbation of kind spec.kind and size spec.eps in R^D (float64; moved to the input's device and
    dtype when applied)."""
    if spec.kind not in ("fourier", "constant"):
        raise ValueError(f"perturbation kind: 'fourier' or 'constant' (got {spec.kind!r})")
    dev = generator.device
    m = spec.n_features if spec.kind == "fourier" else 1
    u = torch.randn(m, D, generator=generator, device=dev, dtype=torch.float64)
    u = u / u.norm(dim=1, keepdim=True)
    if spec.kind == "constant":
        return Perturbation(float(spec.eps), u)
    w = torch.randn(m, D, generator=generator, device=dev, dtype=torch.float64) / spec.lengthscale
    c = 2 * math.pi * torch.rand(m, generator=generator, device=dev, dtype=torch.float64)
    return Perturbation(float(spec.eps), u, w, c)
