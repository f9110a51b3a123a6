"""Analytic targets: Gaussian mixtures with exact fields, named and manifold constructors, one registry."""

import inspect

from convlab.registry import build, did_you_mean
from convlab.targets.continuous import SmoothedManifold, curved_torus, uniform_cube, uniform_sphere, uniform_torus
from convlab.targets.covariance import Covariance, Diagonal, Isotropic, Spectral, low_rank
from convlab.targets.manifolds import cube_atoms, sphere_atoms, subspaces, swiss_roll, torus_atoms
from convlab.targets.mixture import GaussianMixture
from convlab.targets.named import gaussian, random_mixture, ring8

TARGETS = {
    "ring8": ring8,
    "gaussian": gaussian,
    "random_mixture": random_mixture,
    "swiss_roll": swiss_roll,
    "sphere_atoms": sphere_atoms,
    "torus_atoms": torus_atoms,
    "cube_atoms": cube_atoms,
    "subspaces": subspaces,
    "uniform_sphere": uniform_sphere,
    "uniform_torus": uniform_torus,
    "uniform_cube": uniform_cube,
    "curved_torus": curved_torus,
    "gaussian_mixture": GaussianMixture,
}


def make_target(spec: str | dict) -> GaussianMixture | SmoothedManifold:
    """A target from a registry name or {'name': ..., **params}, e.g. {'name': 'uniform_sphere', 'd': 2, 'D': 16}."""
    return build(TARGETS, spec, kind="target")


__all__ = [
    "TARGETS",
    "make_target",
    "GaussianMixture",
    "Covariance",
    "Isotropic",
    "Diagonal",
    "Spectral",
    "low_rank",
    "gaussian",
    "ring8",
    "random_mixture",
    "swiss_roll",
    "sphere_atoms",
    "torus_atoms",
    "cube_atoms",
    "subspaces",
    "SmoothedManifold",
    "uniform_sphere",
    "uniform_torus",
    "uniform_cube",
    "curved_torus",
]


def check_target_spec(spec: dict, renamed: dict[str, str] | None = None) -> list[tuple[str, str, object]]:
    """Problems with a target spec as (parameter path, message, value), without raising: unknown name or
    parameter (with a did-you-mean), then whatever the constructor rejects (its messages name the parameter)."""

    name = spec.get("name")
    if name not in TARGETS:
        return [
            (
                "name",
                f"unknown target{did_you_mean(str(name), sorted(TARGETS))}; known: {', '.join(sorted(TARGETS))}",
                name,
            )
        ]
    params = inspect.signature(TARGETS[name]).parameters
    known = [p for p in params if p not in ("self",)]
    renamed = renamed or {}  # {old parameter: new} of this target (convlab.study.renames), quoted to the user
    problems = [
        (
            key,
            f"renamed to {renamed[key]!r} (convlab migrate updates stored results)"
            if key in renamed
            else f"unknown parameter of {name}{did_you_mean(key, known)}; known: {', '.join(known)}",
            spec[key],
        )
        for key in spec
        if key != "name" and key not in params
    ]
    if problems:
        return problems
    try:
        make_target(spec)
    except MemoryError as err:  # numpy refuses an allocation beyond RAM and swap at once: say which spec asked
        if "D" in spec:
            return [("D", f"building this target needs more memory than this machine has ({err})", spec["D"])]
        return [("", f"building this target needs more memory than this machine has ({err})", spec)]
    except (ValueError, TypeError) as err:
        text = str(err)
        head, _, rest = text.partition(": ")
        root = head.split("[")[0]
        if rest and root in params:
            return [(head, rest, spec.get(root, None))]
        return [("", text, {k: v for k, v in spec.items() if k != "name"})]
    return []
