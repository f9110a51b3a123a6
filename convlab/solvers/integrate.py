"""The one integration loop over an explicit time grid, and the reference solve for coupled errors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.integrate import solve_ivp
from torch import Tensor

from convlab.solvers.grids import time_grid
from convlab.solvers.methods import RK4, Solver, as_solver


@dataclass(frozen=True)
class Reference:
    """How reference_flow solves: `solver` 'rk4' takes K RK4 steps on the named `grid` ('uniform' or 'quadratic',
    which crowds the steps towards T where fields stiffen; error ~ K^-4, on the device), or 'dop853', scipy's
    adaptive solver (K and grid unused)."""

    solver: str = "rk4"
    K: int = 2048
    grid: str = "quadratic"


@dataclass
class Solution:
    """End point x (n, D) at grid[-1]; trajectory (K + 1, n, D) on the grid if asked; nfe = field evaluations."""

    x: Tensor
    grid: Tensor
    nfe: int
    trajectory: Tensor | None = None


class _Counted:
    """Counts the field evaluations a solver makes (so NFE is measured, not assumed)."""

    def __init__(self, field):
        self.field, self.nfe = field, 0
        self.interpolant = getattr(field, "interpolant", None)

    def velocity(self, t, x):
        self.nfe += 1
        return self.field.velocity(t, x)

    def denoiser(self, t, x):
        self.nfe += 1
        return self.field.denoiser(t, x)

    def score(self, t, x):
        self.nfe += 1
        return self.field.score(t, x)


def integrate(
    field, x0: Tensor, grid, solver: Solver | str | dict = "euler", *, keep_trajectory: bool = False
) -> Solution:
    """Solve dx/dt = field.velocity(t, x) from x0 at grid[0] through every grid time with `solver`.

    `grid` is a (K + 1,) increasing sequence of times (see solvers.grids). Stays on x0's device: the grid
    times are Python floats known in advance, so the loop makes no host round trips.
    """
    solver = as_solver(solver)
    times = [float(t) for t in (grid.tolist() if isinstance(grid, Tensor) else grid)]
    if len(times) < 2 or any(b <= a for a, b in zip(times, times[1:])):
        raise ValueError(f"grid: needs at least two strictly increasing times (got {times[:5]}...)")
    counted = _Counted(field)
    traj = None
    if keep_trajectory:
        traj = x0.new_empty(len(times), *x0.shape)
        traj[0] = x0
    x = x0
    for k, (t0, t1) in enumerate(zip(times, times[1:])):
        x = solver.step(counted, t0, t1, x)
        if traj is not None:
            traj[k + 1] = x
    return Solution(x=x, grid=torch.tensor(times, dtype=torch.float64), nfe=counted.nfe, trajectory=traj)


def reference_flow(
    field,
    x0: Tensor,
    *,
    T: float = 1.0,
    t0: float = 0.0,
    reference: Reference = Reference(),
    rtol: float = 1e-11,
    atol: float = 1e-11,
) -> Tensor:
    """The flow map x0 -> x(T) solved far more accurately than the methods it judges.

    `reference`: solver 'rk4' takes K RK4 steps on the named grid (stays on the device; error ~ K^-4); 'dop853'
    is scipy's adaptive solver with rtol/atol: the state is float64 on the host and the field is evaluated in x0's
    dtype on x0's device (float64 x0 for a tight reference). Use the same x0 as the solver under test: coupled
    errors need shared noise.
    """
    ref = reference
    if ref.solver not in ("rk4", "dop853"):
        raise ValueError(f"reference.solver: 'rk4' or 'dop853' (got {ref.solver!r})")
    if ref.solver == "rk4":
        return integrate(field, x0, time_grid(ref.K, T=T, t0=t0, kind=ref.grid), RK4()).x
    shape, device = x0.shape, x0.device

    def rhs(t, y):
        x = torch.tensor(y, dtype=x0.dtype, device=device).reshape(shape)
        return field.velocity(float(t), x).detach().cpu().double().numpy().ravel()

    y0 = x0.detach().to("cpu", torch.float64).numpy().ravel()
    sol = solve_ivp(rhs, (t0, T), y0, method=ref.solver.upper(), rtol=rtol, atol=atol, t_eval=[T])
    if not sol.success:
        raise RuntimeError(f"reference_flow: {ref.solver} failed: {sol.message}")
    return torch.from_numpy(np.ascontiguousarray(sol.y[:, -1])).reshape(shape).to(device, x0.dtype)
