"""Bring your own model: measure any flow model -- a velocity model v(t, x) or a one-step generator g(z), trained
with convlab or another library (facebookresearch's flow_matching, TorchCFM, your own code) -- against the exact
velocity, flow and samples of an analytic target.

    from convlab.evaluate import evaluate_velocity
    result = evaluate_velocity(model, make_target("ring8"), schedule="linear")   # flow_matching's CondOT path
    print(result.summary())

The model's time convention and schedule are declared (convlab.evaluate.convention) and proved on the exact field
before anything is measured; a model that raises, or returns the wrong shape, dtype, device or non-finite values is
refused with the reason (ModelError).
"""

from convlab.evaluate.convention import (
    ConventionError,
    ModelError,
    ModelField,
    ModelInterpolant,
    check_convention,
    check_model,
    model_interpolant,
)
from convlab.evaluate.measure import GeneratorEvaluation, VelocityEvaluation, evaluate_generator, evaluate_velocity

__all__ = [
    "ConventionError",
    "GeneratorEvaluation",
    "ModelError",
    "ModelField",
    "ModelInterpolant",
    "VelocityEvaluation",
    "check_convention",
    "check_model",
    "evaluate_generator",
    "evaluate_velocity",
    "model_interpolant",
]
