"""The JKO (Wasserstein proximal) scheme towards N(0, I) (Cheng, Lu, Tan, Xie, arXiv 2310.17582):

    p_{k+1} = argmin_p KL(p || N(0, I)) + W2^2(p, p_k) / (2 gamma).

For Gaussians with commuting covariances the step acts per eigen-direction in closed form (docs/concepts/theory.md §6):
m' = m / (1 + gamma), s' = (s + sqrt(s^2 + 4 gamma (1 + gamma))) / (2 (1 + gamma)). `affine_jko_step` solves
the same proximal problem numerically over affine maps x -> A x + c (the optimal map between Gaussians is
affine), so it must reproduce the closed form; it is the check that the objective is set up right.

The neural JKO flow: residual blocks T_k(x) = x + f_k(x) (convlab.models.residual), each trained on samples
of p_k to minimise KL(T#p_k || N(0, I)) + E|f_k(x)|^2 / (2 gamma) (`proximal_loss`), with log p_0 = log nu
exact (an analytic target) and the change of variables

    log p_{k+1}(T_k(x)) = log p_k(x) - log |det grad T_k(x)|,

so KL(p_k || N(0, I)) is a plain Monte Carlo mean over pushed samples (`kl_to_standard_normal`): no density
estimator. Generation inverts the blocks from N(0, I) (`generate`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

LOG_2PI = math.log(2 * math.pi)


def gaussian_jko_step(m: Tensor, s: Tensor, gamma: float) -> tuple[Tensor, Tensor]:
    """One exact JKO step per eigen-direction: means m and standard deviations s, shapes (D,)."""
    if not gamma > 0:
        raise ValueError(f"gamma: the step size must be > 0 (got {gamma!r})")
    return m / (1 + gamma), (s + torch.sqrt(s * s + 4 * gamma * (1 + gamma))) / (2 * (1 + gamma))


def gaussian_kl(m: Tensor, s: Tensor) -> Tensor:
    """KL(N(m, diag s^2) || N(0, I)) = sum_i (s_i^2 + m_i^2 - 1) / 2 - log s_i."""
    return ((s * s + m * m - 1) / 2 - torch.log(s)).sum()


def gaussian_jko_path(m0: Tensor, s0: Tensor, gamma: float, N: int) -> list[float]:
    """KL(p_k || N(0, I)) for k = 0..N along the exact recursion."""
    m, s, out = m0, s0, [float(gaussian_kl(m0, s0))]
    for _ in range(N):
        m, s = gaussian_jko_step(m, s, gamma)
        out.append(float(gaussian_kl(m, s)))
    return out


def proximal_objective(A: Tensor, c: Tensor, m: Tensor, S: Tensor, gamma: float) -> Tensor:
    """KL(T#p || N(0, I)) + E|T(x) - x|^2 / (2 gamma) for T(x) = A x + c and p = N(m, S), in closed form.

    The transport term is the cost of the map T, which equals W2^2(T#p, p) when T is the optimal map
    (A symmetric positive definite); any other A only costs more, so the minimiser is the JKO step.
    """
    D = m.shape[0]
    mean, cov = A @ m + c, A @ S @ A.T
    kl = 0.5 * (torch.trace(cov) + mean @ mean - D - torch.logdet(cov))
    B = A - torch.eye(D, dtype=A.dtype, device=A.device)
    move = torch.trace(B @ S @ B.T) + ((B @ m + c) ** 2).sum()
    return kl + move / (2 * gamma)


def affine_jko_step(m: Tensor, S: Tensor, gamma: float, *, max_iter: int = 200) -> tuple[Tensor, Tensor]:
    """Minimise the proximal objective over affine maps (L-BFGS from the identity); returns (mean, covariance)
    of T#N(m, S). float64 throughout."""
    D = m.shape[0]
    A = torch.eye(D, dtype=torch.float64, requires_grad=True)
    c = torch.zeros(D, dtype=torch.float64, requires_grad=True)
    m, S = m.to(torch.float64), S.to(torch.float64)
    opt = torch.optim.LBFGS(
        [A, c], max_iter=max_iter, tolerance_grad=1e-14, tolerance_change=1e-16, line_search_fn="strong_wolfe"
    )

    def closure():
        opt.zero_grad()
        loss = proximal_objective(A, c, m, S, gamma)
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return A @ m + c, A @ S @ A.T


def contraction(gamma: float) -> tuple[float, float]:
    """Per-step contraction factors of the exact scheme: 1 / (1 + gamma) for the mean, 1 / (1 + 2 gamma) for the
    spread near 1 (the linearisation of s' at s = 1)."""
    return 1 / (1 + gamma), 1 / (1 + 2 * gamma)


# -- the neural JKO flow ----------------------------------------------------------------------------------------------


def proximal_loss(block, x: Tensor, gamma: float) -> Tensor:
    """E[|T(x)|^2 / 2 - log det grad T(x)] + E|T(x) - x|^2 / (2 gamma) over samples x ~ p_k: the JKO step's
    objective KL(T#p_k || N(0, I)) + (transport cost) / (2 gamma), up to the constant E log p_k."""
    y, log_det = block.forward_and_log_det(x.requires_grad_(True), create_graph=True)
    move = (y - x).pow(2).sum(1)
    return (0.5 * y.pow(2).sum(1) - log_det + move / (2 * gamma)).mean()


class ProximalObjective(nn.Module):
    """proximal_loss(block, x, gamma) as a module's forward, so the block trains through the one training loop
    (convlab.models.stack.train calls its networks' forward only); the block's parameters are this module's."""

    def __init__(self, block: nn.Module, gamma: float):
        super().__init__()
        self.block, self.gamma = block, gamma

    def forward(self, x: Tensor) -> Tensor:
        return proximal_loss(self.block, x, self.gamma)


def kl_to_standard_normal(x: Tensor, log_p: Tensor) -> tuple[float, float]:
    """Monte Carlo KL(p || N(0, I)) = E_p[log p(x) - log phi(x)] from samples and their exact log-densities;
    returns the mean and its standard error."""
    integrand = log_p + 0.5 * x.pow(2).sum(1) + 0.5 * x.shape[1] * LOG_2PI
    return float(integrand.mean()), float(integrand.std() / math.sqrt(x.shape[0]))


def push(blocks, x: Tensor, log_p: Tensor, shifts: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """Samples and exact log-densities through the blocks (each followed by its shift, if any: a translation
    leaves the density's values unchanged)."""
    for k, block in enumerate(blocks):
        x, log_det = block.forward_and_log_det(x)
        log_p = log_p - log_det
        if shifts is not None:
            x = x + shifts[k]
    return x.detach(), log_p.detach()


def generate(blocks, z: Tensor, shifts: list[Tensor] | None = None) -> tuple[Tensor, float]:
    """Invert the flow from noise z: undo each shift and invert each block, last first; returns the samples
    and the largest fixed-point residual."""
    x, worst = z, 0.0
    for k in reversed(range(len(blocks))):
        if shifts is not None:
            x = x - shifts[k]
        x, res = blocks[k].inverse(x)
        worst = max(worst, res)
    return x, worst
