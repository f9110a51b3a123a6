"""Fixed-grid ODE solvers with declared orders, the shared integration loop and the reference solve."""

from convlab.solvers.grids import GRIDS, quadratic_grid, time_grid, uniform_grid
from convlab.solvers.integrate import Reference, Solution, integrate, reference_flow
from convlab.solvers.methods import RK4, SOLVERS, Euler, ExpEuler, ExpScore, Heun, Solver, as_solver

__all__ = [
    "GRIDS",
    "SOLVERS",
    "Solver",
    "Euler",
    "Heun",
    "RK4",
    "ExpEuler",
    "ExpScore",
    "as_solver",
    "Reference",
    "Solution",
    "integrate",
    "reference_flow",
    "time_grid",
    "uniform_grid",
    "quadratic_grid",
]
