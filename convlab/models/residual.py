"""The residual block of the neural JKO flow (arXiv 2310.17582): T(x) = x + lip * g(x), g an MLP of spectral-normalised
layers with ELU, so Lip(T - id) <= lip < 1 and T is invertible (by the fixed-point iteration x <- y - f(x), a
contraction with factor lip). Its log-determinant is exact (autograd Jacobian; low dimension). The JKO
objective it is trained on and the flow's density tracking are in convlab.theory.jko.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm


@dataclass(frozen=True)
class Block:
    """A residual block x + lip * g(x): g an MLP of `depth` spectral-normalised layers of `width` units with ELU;
    lip < 1 bounds Lip(T - id), so the block is invertible."""

    width: int = 64
    depth: int = 2
    lip: float = 0.9


class ResidualBlock(nn.Module):
    """T(x) = x + lip * g(x), g an MLP with spectral-normalised layers, so Lip(T - id) <= lip; (n, D) -> (n, D)."""

    def __init__(self, dim: int, cfg: Block):
        super().__init__()
        layers: list[nn.Module] = []
        w = dim
        for _ in range(cfg.depth):
            layers += [spectral_norm(nn.Linear(w, cfg.width)), nn.ELU()]
            w = cfg.width
        self.g = nn.Sequential(*layers, spectral_norm(nn.Linear(w, dim)))
        self.lip = cfg.lip

    def residual(self, x: Tensor) -> Tensor:
        return self.lip * self.g(x)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.residual(x)

    def forward_and_log_det(self, x: Tensor, *, create_graph: bool = False) -> tuple[Tensor, Tensor]:
        """T(x) (n, D) and log |det grad T(x)| (n,), the Jacobian by D reverse passes (exact; for small D)."""
        with torch.enable_grad():
            xg = x if x.requires_grad else x.detach().requires_grad_(True)
            f = self.residual(xg)
            rows = [
                torch.autograd.grad(f[:, i].sum(), xg, create_graph=create_graph, retain_graph=True)[0]
                for i in range(x.shape[1])
            ]
        J = torch.stack(rows, 1)  # [n, i, j] = d f_i / d x_j
        eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
        out = xg + f
        return (out if create_graph else out.detach()), torch.linalg.slogdet(eye + J).logabsdet

    @torch.no_grad()
    def inverse(self, y: Tensor, *, tol: float = 1e-10, max_iter: int = 500) -> tuple[Tensor, float]:
        """T^{-1}(y) by x <- y - f(x) from x = y; returns x and the final max |T(x) - y|."""
        x = y.clone()
        for _ in range(max_iter):
            x_new = y - self.residual(x)
            step = float((x_new - x).abs().max())
            x = x_new
            if step < tol:
                break
        return x, float((self(x) - y).abs().max())
