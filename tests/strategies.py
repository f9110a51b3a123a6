"""Hypothesis strategies shared by the tests: small random mixtures of every covariance structure."""

import numpy as np
from hypothesis import strategies as st

from convlab.interpolants import VP, Follmer, Linear, Trig
from convlab.targets import GaussianMixture, low_rank

COV_KINDS = ["iso", "diag", "full", "lowrank", "lowrank+iso"]


def make_mixture(seed: int, K: int, D: int, kind: str, var_min: float = 0.2) -> GaussianMixture:
    """A random mixture with every variance in [var_min, 1] (or zero, off the span of a low-rank one)."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(K, 3.0))
    means = rng.standard_normal((K, D))
    lam = rng.uniform(var_min, 1.0, size=(K, D))
    if kind == "iso":
        covs = lam[:, 0]
    elif kind == "diag":
        covs = lam
    elif kind == "full":
        q = np.linalg.qr(rng.standard_normal((K, D, D)))[0]
        covs = np.einsum("kde,ke,kfe->kdf", q, lam, q)
    else:
        r = max(1, D - 1)
        factor = rng.standard_normal((K, D, r)) * np.sqrt(var_min + 0.3)
        covs = low_rank(factor, 0.0 if kind == "lowrank" else var_min)
    params = dict(seed=seed, K=K, D=D, kind=kind, var_min=var_min)
    return GaussianMixture(weights, means, covs, name="make_mixture", params=params)


@st.composite
def mixtures(draw, kinds=COV_KINDS, min_K=1, max_K=4, min_D=1, max_D=4, var_min=0.2):
    seed = draw(st.integers(0, 2**31 - 1))
    K = draw(st.integers(min_K, max_K))
    D = draw(st.integers(min_D, max_D))
    kind = draw(st.sampled_from(kinds))
    return make_mixture(seed, K, D, kind, var_min)


interpolants = st.sampled_from([Linear(), Trig(), Follmer(), VP(2.0), VP(10.0)])
