"""Time grids t_0 < t_1 < ... < t_K for fixed-step solvers."""

from __future__ import annotations

import torch
from torch import Tensor

from convlab.registry import lookup


def _check(K: int, t0: float, T: float) -> None:
    if not (isinstance(K, int) and not isinstance(K, bool) and K >= 1):
        raise ValueError(f"K: the number of steps must be an integer >= 1 (got {K!r})")
    if not (0.0 <= t0 < T <= 1.0):
        raise ValueError(f"T: need 0 <= t0 < T <= 1 (got t0={t0!r}, T={T!r})")


def uniform_grid(K: int, *, T: float = 1.0, t0: float = 0.0) -> Tensor:
    """t_k = t0 + (T - t0) k / K, (K + 1,) float64."""
    _check(K, t0, T)
    return t0 + (T - t0) * torch.arange(K + 1, dtype=torch.float64) / K


def quadratic_grid(K: int, *, T: float = 1.0, t0: float = 0.0) -> Tensor:
    """t_k = T - (T - t0)(1 - k/K)^2: steps shrink linearly towards T, where the velocity stiffens."""
    _check(K, t0, T)
    return T - (T - t0) * (1 - torch.arange(K + 1, dtype=torch.float64) / K) ** 2


GRIDS = {"uniform": uniform_grid, "quadratic": quadratic_grid}


def time_grid(K: int, *, T: float = 1.0, t0: float = 0.0, kind: str = "uniform") -> Tensor:
    """A (K + 1,) grid of the named kind."""
    return lookup(GRIDS, kind, kind="grid")(K, T=T, t0=t0)
