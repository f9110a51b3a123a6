"""convlab: checks the convergence theory of flow-based generative models by experiment.

Pipeline: targets -> interpolants -> fields -> solvers -> metrics/rates (-> models/training -> pipeline, theory ->
runs -> study/sweep/store -> figures). `open_study` is the Python API of the `convlab` command.
"""

from convlab.api import Study, open_study
from convlab.fields import ExactField, FunctionField, exact_field
from convlab.interpolants import INTERPOLANTS, Interpolant, as_interpolant
from convlab.metrics import (
    coupled_rms,
    exact_w2,
    exact_w2_sq,
    fit_rate,
    gaussian_w2_sq,
    noise_floor_w2,
    sampled_w2,
    sliced_w2,
)
from convlab.solvers import SOLVERS, as_solver, integrate, reference_flow, time_grid
from convlab.targets import TARGETS, GaussianMixture, make_target

__version__ = "0.1.0"

__all__ = [
    "Study",
    "open_study",
    "ExactField",
    "FunctionField",
    "exact_field",
    "INTERPOLANTS",
    "Interpolant",
    "as_interpolant",
    "coupled_rms",
    "exact_w2",
    "exact_w2_sq",
    "fit_rate",
    "gaussian_w2_sq",
    "noise_floor_w2",
    "sampled_w2",
    "sliced_w2",
    "SOLVERS",
    "as_solver",
    "integrate",
    "reference_flow",
    "time_grid",
    "TARGETS",
    "GaussianMixture",
    "make_target",
]
