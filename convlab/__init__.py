"""convlab: checks the convergence theory of flow-based generative models by experiment.

Pipeline: targets -> interpolants -> fields -> solvers -> metrics/rates (-> models/training -> pipeline, theory ->
runs -> study/sweep/store -> figures). `open_study` is the Python API of the `convlab` command.

The names below are imported on first use (PEP 562): `import convlab` and `convlab --help` stay fast because
torch is imported only when something numerical is asked for.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_HOMES = {
    "convlab.api": ["Study", "open_study"],
    "convlab.fields": ["ExactField", "FunctionField", "exact_field"],
    "convlab.interpolants": ["INTERPOLANTS", "Interpolant", "as_interpolant"],
    "convlab.metrics": [
        "coupled_rms",
        "exact_w2",
        "exact_w2_sq",
        "fit_rate",
        "gaussian_w2_sq",
        "noise_floor_w2",
        "sampled_w2",
        "sliced_w2",
    ],
    "convlab.solvers": ["SOLVERS", "as_solver", "integrate", "reference_flow", "time_grid"],
    "convlab.targets": ["TARGETS", "GaussianMixture", "make_target"],
}
_HOME = {name: module for module, names in _HOMES.items() for name in names}
__all__ = list(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'convlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value  # once imported, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
