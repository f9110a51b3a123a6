"""Bad target parameters fail early with a ValueError naming the parameter and the value."""

import numpy as np
import pytest
import torch

from convlab.targets import (
    GaussianMixture,
    make_target,
    random_mixture,
    ring8,
    sphere_atoms,
    subspaces,
    swiss_roll,
    torus_atoms,
)

OK_W, OK_MU = np.array([0.5, 0.5]), np.zeros((2, 3))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(weights=[0.5, 0.4], means=OK_MU, covs=1.0), r"weights: must sum to 1 \(got sum 0.9\)"),
        (dict(weights=[1.5, -0.5], means=OK_MU, covs=1.0), r"weights: must be >= 0 \(got -0.5 at index 1\)"),
        (dict(weights=[1.0], means=OK_MU, covs=1.0), r"weights: expected shape \(2,\)"),
        (dict(weights=OK_W, means=np.zeros(3), covs=1.0), r"means: expected shape \(K, D\)"),
        (dict(weights=OK_W, means=[[0, np.nan, 0], [0, 0, 0]], covs=1.0), "means: must be finite"),
        (dict(weights=OK_W, means=OK_MU, covs=[1.0, -0.1]), r"covs\[1\]: variance must be >= 0 \(got -0.1\)"),
        (
            dict(weights=OK_W, means=OK_MU, covs=[[1, 1, 1], [1, -2, 1]]),
            r"covs\[1, 1\]: variance must be >= 0 \(got -2\)",
        ),
        (dict(weights=OK_W, means=OK_MU, covs=np.ones(3)), r"covs: isotropic variances need shape \(2,\)"),
        (dict(weights=OK_W, means=OK_MU, covs=np.ones((2, 2))), r"covs: diagonal variances need shape \(2, 3\)"),
        (dict(weights=OK_W, means=OK_MU, covs=np.ones((2, 3, 2))), r"covs: full covariances need shape \(2, 3, 3\)"),
        (
            dict(weights=OK_W, means=OK_MU, covs=np.stack([np.eye(3), np.diag([1.0, -1.0, 1.0])])),
            r"covs\[1\]: must be positive semi-definite \(got smallest eigenvalue -1\)",
        ),
        (
            dict(weights=OK_W, means=OK_MU, covs=np.stack([np.eye(3), np.triu(np.ones((3, 3)))])),
            r"covs\[1\]: must be symmetric",
        ),
        (
            dict(weights=OK_W, means=OK_MU, covs=1.0, intrinsic_dim=4),
            r"intrinsic_dim: must be an integer in \[0, ambient_dim=3\] \(got 4\)",
        ),
    ],
)
def test_mixture_rejects(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(**kwargs)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ring8(s=-1.0), r"s: must be a number >= 0 \(got -1.0\)"),
        (lambda: sphere_atoms(d=0), r"d: must be an integer >= 1 \(got 0\)"),
        (lambda: sphere_atoms(d=3, D=3), r"D: sphere_atoms with d=3 needs an ambient dimension >= 4 \(got 3\)"),
        (lambda: torus_atoms(d=2, D=3), r"D: torus_atoms with d=2 needs an ambient dimension >= 4 \(got 3\)"),
        (lambda: subspaces(d=5, D=3), r"D: the ambient dimension must be an integer >= d=5 \(got 3\)"),
        (lambda: swiss_roll(dim=4), r"dim: the Swiss roll comes in 2-D or 3-D \(got 4\)"),
        (lambda: swiss_roll(s=-0.1), r"s: must be a number >= 0 \(got -0.1\)"),
        (lambda: random_mixture(D=3, cov="bogus"), r"cov: must be 'full', 'diag' or 'iso' \(got 'bogus'\)"),
        (lambda: random_mixture(D=0), r"D: must be an integer >= 1 \(got 0\)"),
        (lambda: random_mixture(D=2, var_min=1.0, var_max=0.5), r"var_max: must be >= var_min=1.0 \(got 0.5\)"),
        (lambda: make_target("sphre"), r"unknown target 'sphre' \(did you mean 'sphere_atoms'\?\)"),
    ],
)
def test_named_targets_reject(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_log_prob_needs_a_density():
    with pytest.raises(ValueError, match="singular covariances"):
        sphere_atoms(d=1).log_prob(torch.zeros(1, 2, dtype=torch.float64))


def test_bad_shapes_of_x_and_t():
    target = ring8()
    with pytest.raises(ValueError, match=r"x: expected shape \(n, 2\) \(got shape \(4, 3\)\)"):
        target.velocity(0.5, torch.zeros(4, 3), "linear")
    with pytest.raises(ValueError, match=r"t: expected a scalar or shape \(4,\)"):
        target.velocity(torch.zeros(3), torch.zeros(4, 2), "linear")
