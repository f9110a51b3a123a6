"""Measurement: exact and coupled W2, closed forms, noise floors, and fitted rates."""

from convlab.metrics.rates import RateFit, fit_rate
from convlab.metrics.w2 import (
    CoupledError,
    NoiseFloor,
    SampledW2,
    coupled_rms,
    early_stopping_w2_bound,
    effective_dim,
    empirical_gaussian_w2_sq,
    exact_w2,
    exact_w2_sq,
    gaussian_w2_sq,
    noise_floor_w2,
    sampled_w2,
    sliced_w2,
)

__all__ = [
    "RateFit",
    "fit_rate",
    "CoupledError",
    "NoiseFloor",
    "SampledW2",
    "coupled_rms",
    "early_stopping_w2_bound",
    "effective_dim",
    "empirical_gaussian_w2_sq",
    "exact_w2",
    "exact_w2_sq",
    "gaussian_w2_sq",
    "noise_floor_w2",
    "sampled_w2",
    "sliced_w2",
]
