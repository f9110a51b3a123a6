"""The neural JKO flow (seed 003): residual blocks T_k(x) = x + f_k(x), each trained on samples of p_k to
minimise KL(T#p_k || N(0, I)) + E|f_k(x)|^2 / (2 gamma), the proximal objective with the map's transport cost.

KL through the change of variables, with log p_0 = log nu exact (an analytic target) and

    log p_{k+1}(T_k(x)) = log p_k(x) - log |det grad T_k(x)|,

the log-determinant exact (autograd Jacobian, low dimension), so KL(p_k || N(0, I)) is a plain Monte Carlo
mean over pushed samples: no density estimator. Lip(f_k) <= lip < 1 (spectral-normalised layers and 1-Lipschitz
ELU) makes every block invertible; generation inverts them from N(0, I) by the fixed-point iteration
x <- y - f(x), a contraction with factor lip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

LOG_2PI = math.log(2 * math.pi)


class ResidualBlock(nn.Module):
    """T(x) = x + lip * g(x), g an MLP with spectral-normalised layers, so Lip(T - id) <= lip."""

    def __init__(self, dim: int, *, width: int = 64, depth: int = 2, lip: float = 0.9):
        super().__init__()
        if not 0 < lip < 1:
            raise ValueError(f"lip: the residual's Lipschitz bound must be in (0, 1) for invertibility (got {lip!r})")
        layers: list[nn.Module] = []
        w = dim
        for _ in range(depth):
            layers += [spectral_norm(nn.Linear(w, width)), nn.ELU()]
            w = width
        self.g = nn.Sequential(*layers, spectral_norm(nn.Linear(w, dim)))
        self.lip = lip

    def residual(self, x: Tensor) -> Tensor:
        return self.lip * self.g(x)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.residual(x)

    def forward_and_log_det(self, x: Tensor, *, create_graph: bool = False) -> tuple[Tensor, Tensor]:
        """T(x) (n, D) and log |det grad T(x)| (n,), the Jacobian by D reverse passes (exact; for small D)."""
        with torch.enable_grad():
            xg = x if x.requires_grad else x.detach().requires_grad_(True)
            f = self.residual(xg)
            rows = [torch.autograd.grad(f[:, i].sum(), xg, create_graph=create_graph, retain_graph=True)[0] for i in range(x.shape[1])]
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


@dataclass
class BlockTraining:
    """Optimisation of one block: Adam with a cosine schedule on minibatches of the pushed samples."""

    steps: int = 400
    lr: float = 2e-3
    batch_size: int = 256


def train_block(block: ResidualBlock, x: Tensor, log_p: Tensor, gamma: float, opt_cfg: BlockTraining, generator: torch.Generator) -> list[float]:
    """Fit one JKO step on samples x ~ p_k: minimise E[|T(x)|^2 / 2 - log det grad T(x)] + E|f(x)|^2 / (2 gamma)
    (KL(T#p_k || N(0, I)) up to the constant E log p_k, which does not depend on T). Returns the losses."""
    del log_p  # the KL's x-only term: constant in the block's parameters
    opt = torch.optim.Adam(block.parameters(), lr=opt_cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, opt_cfg.steps))
    losses = []
    block.train()
    for _ in range(opt_cfg.steps):
        xb = x[torch.randint(x.shape[0], (min(opt_cfg.batch_size, x.shape[0]),), generator=generator, device=x.device)]
        y, log_det = block.forward_and_log_det(xb.requires_grad_(True), create_graph=True)
        move = (y - xb).pow(2).sum(1)
        loss = (0.5 * y.pow(2).sum(1) - log_det + move / (2 * gamma)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    block.eval()
    return losses


def kl_to_standard_normal(x: Tensor, log_p: Tensor) -> tuple[float, float]:
    """Monte Carlo KL(p || N(0, I)) = E_p[log p(x) - log phi(x)] from samples and their exact log-densities;
    returns the mean and its standard error."""
    integrand = log_p + 0.5 * x.pow(2).sum(1) + 0.5 * x.shape[1] * LOG_2PI
    return float(integrand.mean()), float(integrand.std() / math.sqrt(x.shape[0]))


def push(blocks: list[ResidualBlock], x: Tensor, log_p: Tensor, shifts: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """Samples and exact log-densities through the blocks (each followed by its shift, if any: a translation
    leaves the density's values unchanged)."""
    for k, block in enumerate(blocks):
        x, log_det = block.forward_and_log_det(x)
        log_p = log_p - log_det
        if shifts is not None:
            x = x + shifts[k]
    return x.detach(), log_p.detach()


def generate(blocks: list[ResidualBlock], z: Tensor, shifts: list[Tensor] | None = None) -> tuple[Tensor, float]:
    """Invert the flow from noise z: undo each shift and invert each block, last first; returns the samples
    and the largest fixed-point residual."""
    x, worst = z, 0.0
    for k in reversed(range(len(blocks))):
        if shifts is not None:
            x = x - shifts[k]
        x, res = blocks[k].inverse(x)
        worst = max(worst, res)
    return x, worst
