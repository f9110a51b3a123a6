"""Manifold targets: atoms on the manifold, uniform over it, embedded isometrically, seeded."""

import inspect
import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.spatial.distance import pdist

from convlab.targets import (
    NATURAL_DIM,
    TARGETS,
    ambient_dim,
    cube_atoms,
    make_target,
    random_mixture,
    ring8,
    sphere_atoms,
    subspaces,
    swiss_roll,
    torus_atoms,
)

F64 = torch.float64


def _atoms(target):
    return target.means.numpy()


@pytest.mark.parametrize("D", [3, 17])
def test_sphere_atoms_are_on_the_sphere_and_uniform(D):
    target = sphere_atoms(d=2, D=D, radius=1.5, n_atoms=4096)
    atoms = _atoms(target)
    np.testing.assert_allclose(np.linalg.norm(atoms, axis=1), 1.5, rtol=1e-12)
    # uniform on S^2 in R^3: mean 0, covariance r^2/3 on the sphere's span
    assert np.abs(atoms.mean(0)).max() < 0.02
    eig = np.sort(np.linalg.eigvalsh(np.cov(atoms, rowvar=False)))[::-1]
    np.testing.assert_allclose(eig[:3], 1.5**2 / 3, rtol=0.03)
    assert (target.intrinsic_dim, target.ambient_dim) == (2, D)


def test_embedding_is_an_isometry_that_keeps_the_measure():
    """The same seed gives the same manifold measure in every ambient dimension: pairwise distances agree."""
    for make in (
        lambda D: sphere_atoms(d=3, D=D, n_atoms=300),
        lambda D: torus_atoms(d=2, D=D, n_atoms=300),
        lambda D: cube_atoms(d=3, D=D, n_atoms=300),
        lambda D: swiss_roll(dim=3, D=D, n_atoms=300),
    ):
        natural = make(None)
        for D in (natural.ambient_dim + 1, 64):
            np.testing.assert_allclose(pdist(_atoms(make(D))), pdist(_atoms(natural)), rtol=1e-10, atol=1e-12)


def test_torus_is_a_product_of_circles():
    atoms = _atoms(torus_atoms(d=3, radius=2.0, n_atoms=1000)).reshape(1000, 3, 2)
    np.testing.assert_allclose(np.linalg.norm(atoms, axis=2), 2.0, rtol=1e-12)
    angles = np.arctan2(atoms[..., 1], atoms[..., 0]).ravel()
    assert stats.kstest((angles + np.pi) / (2 * np.pi), "uniform").pvalue > 0.01


def test_cube_fills_the_cube_uniformly():
    atoms = _atoms(cube_atoms(d=4, side=3.0, n_atoms=2048))
    assert atoms.min() >= -1.5 and atoms.max() <= 1.5
    for j in range(4):
        assert stats.kstest(atoms[:, j] / 3 + 0.5, "uniform").pvalue > 0.01


def test_swiss_roll_is_uniform_in_arc_length():
    target = swiss_roll(dim=2, scale=1.0, n_atoms=2048)
    atoms = _atoms(target)
    theta = np.linalg.norm(atoms, axis=1)  # |theta (cos, sin)| = theta
    np.testing.assert_allclose(np.arctan2(atoms[:, 1], atoms[:, 0]), np.angle(np.exp(1j * theta)), atol=1e-9)
    arc = lambda th: 0.5 * (th * np.sqrt(1 + th**2) + np.arcsinh(th))  # noqa: E731
    frac = (arc(theta) - arc(1.5 * np.pi)) / (arc(4.5 * np.pi) - arc(1.5 * np.pi))
    assert stats.kstest(frac, "uniform").pvalue > 0.01
    assert target.intrinsic_dim == 1 and swiss_roll(dim=3).intrinsic_dim == 2


def test_subspaces_samples_lie_on_the_union():
    target = subspaces(d=2, D=10, K=3, seed=4)
    x = target.sample(500, generator=1, dtype=F64).numpy()
    U = target.cov.U.numpy()  # (K, D, d) orthonormal
    resid = np.stack([np.linalg.norm(x - x @ U[k] @ U[k].T, axis=1) for k in range(3)]).min(0)
    assert resid.max() < 1e-10
    assert target.intrinsic_dim == 2 and target.cov.ranks().tolist() == [2, 2, 2]


def test_smoothing_adds_isotropic_noise():
    target = sphere_atoms(d=1, D=5, s=0.1, n_atoms=512)
    x = target.sample(20000, generator=0, dtype=F64)
    dist = torch.cdist(x, target.means).min(1).values
    # the nearest atom is at most the noise norm away, and the noise has E|e|^2 = D s^2
    assert dist.pow(2).mean() < 5 * 0.1**2
    assert dist.pow(2).mean() > 0.5 * 0.1**2


def test_seeds_are_explicit_and_reproducible():
    for name, kw in [("sphere_atoms", dict(d=2, D=6)), ("random_mixture", dict(D=4)), ("subspaces", dict(d=1, D=3))]:
        a, b, c = (
            make_target({"name": name, **kw, "seed": 1}),
            make_target({"name": name, **kw, "seed": 1}),
            make_target({"name": name, **kw, "seed": 2}),
        )
        torch.testing.assert_close(a.means, b.means)
        torch.testing.assert_close(a.cov.dense(), b.cov.dense())
        assert not (torch.equal(a.means, c.means) and torch.equal(a.cov.dense(), c.cov.dense()))


def test_registry_entries_have_documented_parameters():
    for name, make in TARGETS.items():
        assert make.__doc__, name
    assert ring8().spec() == {"name": "ring8", "radius": 4.0, "s": 0.4}
    rm = random_mixture(D=3, K=2, cov="diag")
    assert make_target(rm.spec()).spec() == rm.spec()
    assert math.isclose(float(rm.weights.sum()), 1.0)


@pytest.mark.parametrize(
    "spec",
    [
        "ring8",
        {"name": "gaussian"},
        {"name": "gaussian", "D": 5},
        {"name": "random_mixture", "D": 3},
        {"name": "swiss_roll"},
        {"name": "swiss_roll", "dim": 3},
        {"name": "swiss_roll", "dim": 3, "D": 7},
        {"name": "sphere_atoms", "d": 2, "n_atoms": 16},
        {"name": "torus_atoms", "d": 2, "n_atoms": 16},
        {"name": "torus_atoms", "d": 1, "D": 9, "n_atoms": 16},
        {"name": "cube_atoms", "d": 3, "n_atoms": 16},
        {"name": "subspaces", "d": 1, "D": 4},
        {"name": "uniform_sphere", "d": 1},
        {"name": "uniform_torus", "d": 2},
        {"name": "uniform_cube", "d": 2, "D": 6},
        {"name": "curved_torus", "d": 1, "D": 5, "nodes": 64},
        {"name": "gaussian_mixture", "weights": [1.0], "means": [[0.0, 1.0, 2.0]], "covs": [1.0]},
    ],
    ids=lambda s: s if isinstance(s, str) else "-".join(f"{v}" for v in s.values() if not isinstance(v, list)),
)
def test_ambient_dim_reads_D_from_the_spec_as_the_built_target_has_it(spec):
    """The planner learns D without building targets (batch keys): the spec's D, the default, or the natural one."""
    assert ambient_dim(spec) == make_target(spec).ambient_dim


def test_every_target_has_a_rule_for_its_D():
    for name, make in TARGETS.items():
        D = inspect.signature(make).parameters.get("D")
        has_default = D is not None and isinstance(D.default, int)
        required = D is not None and D.default is inspect.Parameter.empty
        assert has_default or required or name in NATURAL_DIM, name
