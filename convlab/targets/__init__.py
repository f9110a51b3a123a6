"""Analytic targets: Gaussian mixtures with exact fields, named and manifold constructors, one registry."""

import inspect
from collections.abc import Callable

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


# A target's natural dimension (its D when D is not given) from its parameters, for the targets whose D is not a
# plain default: `ambient_dim` reads D from a spec without building the target (tests/targets compare the two).
NATURAL_DIM: dict[str, Callable[[dict], int]] = {
    "ring8": lambda p: 2,
    "swiss_roll": lambda p: p.get("dim", 2),
    "sphere_atoms": lambda p: p["d"] + 1,
    "uniform_sphere": lambda p: p["d"] + 1,
    "torus_atoms": lambda p: 2 * p["d"],
    "uniform_torus": lambda p: 2 * p["d"],
    "cube_atoms": lambda p: p["d"],
    "uniform_cube": lambda p: p["d"],
    "gaussian_mixture": lambda p: len(p["means"][0]),
}


def ambient_dim(spec: str | dict) -> int:
    """D of a valid target spec, without building the target (building some costs seconds and memory): the given
    D, else the constructor's default D, else the target's natural dimension."""
    params = {"name": spec} if isinstance(spec, str) else spec
    if params.get("D") is not None:
        return params["D"]
    default = inspect.signature(TARGETS[params["name"]]).parameters.get("D")
    if default is not None and isinstance(default.default, int):
        return default.default
    return NATURAL_DIM[params["name"]](params)


def make_target(spec: str | dict) -> GaussianMixture | SmoothedManifold:
    """A target from a registry name or {'name': ..., **params}, e.g. {'name': 'uniform_sphere', 'd': 2, 'D': 16}."""
    return build(TARGETS, spec, kind="target")


__all__ = [
    "TARGETS",
    "make_target",
    "ambient_dim",
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


def check_target_spec(
    spec: dict, renamed: dict[str, str] | None = None, renamed_targets: dict[str, str] | None = None
) -> list[tuple[str, str, object]]:
    """Problems with a target spec as (parameter path, message, value), without raising: unknown name or
    parameter (with a did-you-mean), then whatever the constructor rejects (its messages name the parameter).
    `renamed` ({old parameter: new} of this target) and `renamed_targets` ({old target name: new}) come from
    convlab.study.renames: an old name is told its new one."""

    name = spec.get("name")
    if isinstance(name, str) and name in (renamed_targets or {}):
        return [("name", f"renamed to {renamed_targets[name]!r} (convlab migrate updates stored results)", name)]
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
