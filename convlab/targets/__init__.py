"""Analytic targets: Gaussian mixtures with exact fields, named and manifold constructors, one registry."""

from convlab.registry import build
from convlab.targets.covariance import Covariance, Diagonal, Isotropic, Spectral, low_rank
from convlab.targets.manifolds import cube, sphere, subspaces, swiss_roll, torus
from convlab.targets.mixture import GaussianMixture
from convlab.targets.named import random_mixture, ring8

TARGETS = {
    "ring8": ring8,
    "random_mixture": random_mixture,
    "swiss_roll": swiss_roll,
    "sphere": sphere,
    "torus": torus,
    "cube": cube,
    "subspaces": subspaces,
    "gaussian_mixture": GaussianMixture,
}


def make_target(spec: str | dict) -> GaussianMixture:
    """A target from a registry name or {'name': ..., **params}, e.g. {'name': 'sphere', 'd': 2, 'D': 16}."""
    return build(TARGETS, spec, kind="target")


__all__ = [
    "TARGETS", "make_target", "GaussianMixture", "Covariance", "Isotropic", "Diagonal", "Spectral", "low_rank",
    "ring8", "random_mixture", "swiss_roll", "sphere", "torus", "cube", "subspaces",
]
