"""The exact fields against independent routes: the identities of theory §2 (docs/concepts/theory.md), autograd,
scipy densities, Monte Carlo conditional expectations and the streamed-softmax chunking."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from convlab.interpolants import Linear, as_interpolant
from convlab.targets import GaussianMixture, make_target, ring8, sphere_atoms
from tests.strategies import interpolants, make_mixture, mixtures

F64 = torch.float64


def _points(target, seed, n=6):
    g = torch.Generator().manual_seed(seed)
    return 1.5 * torch.randn(n, target.ambient_dim, generator=g, dtype=F64) + target.mean()


def _coeffs(ip, t):
    return [f(t).reshape(-1, 1) for f in (ip.a, ip.b, ip.da, ip.db)]


@given(target=mixtures(), ip=interpolants, seed=st.integers(0, 10**6), per_point_t=st.booleans())
def test_score_velocity_denoiser_identities(target, ip, seed, per_point_t):
    x = _points(target, seed)
    g = torch.Generator().manual_seed(seed + 1)
    t = (0.02 + 0.96 * torch.rand(x.shape[0], generator=g, dtype=F64)) if per_point_t else torch.tensor(0.37, dtype=F64)
    a, b, da, db = _coeffs(ip, t)
    V, S, Dn = target.velocity(t, x, ip), target.score(t, x, ip), target.denoiser(t, x, ip)
    scale = 1 + x.abs().max()
    # score = (b D - x) / a^2 ; V = (a'/a) x + (b' - a' b / a) D
    torch.testing.assert_close(S * a**2, b * Dn - x, rtol=0, atol=1e-11 * scale)
    torch.testing.assert_close(V, (da / a) * x + (db - da * b / a) * Dn, rtol=1e-9, atol=1e-9 * scale)


@given(target=mixtures(), ip=interpolants, seed=st.integers(0, 10**6))
def test_score_is_the_gradient_of_log_density(target, ip, seed):
    x = _points(target, seed).requires_grad_()
    t = 0.55
    grad = torch.autograd.grad(target.log_density(t, x, ip).sum(), x)[0]
    torch.testing.assert_close(grad, target.score(t, x.detach(), ip), rtol=1e-9, atol=1e-10)


@settings(max_examples=15)
@given(target=mixtures(max_D=3), ip=interpolants, seed=st.integers(0, 10**6), t=st.floats(0.05, 0.95))
def test_velocity_jacobian_identity(target, ip, seed, t):
    """grad_x V = (a'/a) I + (b / a^3)(a b' - a' b) Cov(X1 | x), the Jacobian by autograd."""
    x = _points(target, seed, n=3)
    a, b, da, db = (float(v) for v in _coeffs(ip, torch.tensor(t, dtype=F64)))
    cov = target.posterior_cov(t, x, ip)
    D = target.ambient_dim
    for i in range(x.shape[0]):
        J = torch.autograd.functional.jacobian(lambda y: target.velocity(t, y[None], ip)[0], x[i])
        expect = (da / a) * torch.eye(D, dtype=F64) + (b / a**3) * (a * db - da * b) * cov[i]
        torch.testing.assert_close(J, expect, rtol=1e-8, atol=1e-8)


@given(target=mixtures(), seed=st.integers(0, 10**6))
def test_posterior_cov_is_symmetric_psd(target, seed):
    cov = target.posterior_cov(0.6, _points(target, seed), "trig")
    torch.testing.assert_close(cov, cov.transpose(1, 2))
    assert torch.linalg.eigvalsh(cov).min() > -1e-10


@given(target=mixtures(kinds=["iso", "diag", "full", "lowrank+iso"]), seed=st.integers(0, 10**6))
def test_log_prob_matches_scipy(target, seed):
    x = _points(target, seed)
    covs = target.cov.dense().numpy()
    dens = sum(
        w * stats.multivariate_normal(m, c).pdf(x.numpy()).reshape(-1)
        for w, m, c in zip(target.weights.numpy(), target.means.numpy(), covs)
    )
    np.testing.assert_allclose(target.log_prob(x).numpy(), np.log(dens), rtol=1e-9, atol=1e-9)


@given(seed=st.integers(0, 10**6), K=st.integers(1, 5), D=st.integers(1, 4), shared=st.booleans())
def test_isotropic_fast_path_equals_generic_path(seed, K, D, shared):
    iso = make_mixture(seed, K, D, "iso")
    var = np.full(K, 0.3) if shared else iso.cov.var.numpy()
    fast = GaussianMixture(iso.weights, iso.means, var)
    generic = GaussianMixture(iso.weights, iso.means, np.repeat(var[:, None], D, 1))
    x = _points(fast, seed)
    t = torch.linspace(0.05, 0.95, x.shape[0], dtype=F64)
    for field in ("velocity", "score", "denoiser", "log_density"):
        torch.testing.assert_close(getattr(fast, field)(t, x, "follmer"), getattr(generic, field)(t, x, "follmer"))


@pytest.mark.parametrize("kind", ["iso", "diag", "full", "lowrank"])
def test_streamed_softmax_is_independent_of_chunking(kind):
    """Tiny chunks force many point and component blocks through the online log-sum-exp."""
    big = make_mixture(3, 9, 3, kind)
    small = GaussianMixture(big.weights, big.means, big.cov, chunk_size=40)
    x = _points(big, 0, n=37)
    for field in ("velocity", "log_density", "posterior_cov"):
        torch.testing.assert_close(getattr(small, field)(0.8, x, "linear"), getattr(big, field)(0.8, x, "linear"))


def test_thousands_of_components_stay_finite_near_t1():
    """Sharp atoms (s = 0.01) at t = 0.999 give logits ~ 1e5 apart: log-space weights must not overflow."""
    target = sphere_atoms(d=2, D=8, s=0.01, n_atoms=5000, seed=1)
    x = target.sample(64, generator=0, dtype=F64) + 0.05 * torch.randn(
        64, 8, dtype=F64, generator=torch.Generator().manual_seed(1)
    )
    for dtype in (F64, torch.float32):
        v = target.velocity(0.999, x.to(dtype), "follmer")
        assert torch.isfinite(v).all()
    chunked = GaussianMixture(target.weights, target.means, target.cov, chunk_size=4096)
    torch.testing.assert_close(chunked.velocity(0.999, x, "follmer"), target.velocity(0.999, x, "follmer"))


@pytest.mark.parametrize("t", [0.3, 0.7])
def test_velocity_matches_monte_carlo_conditional_expectation(t):
    """V(t, x) = E[a' Z + b' X1 | X_t = x] by self-normalised importance sampling over X1 ~ nu:
    given X1, Z = (x - b X1) / a, so the weight of X1 is the N(0, I) density of that Z."""
    target = make_target({"name": "random_mixture", "D": 2, "K": 3, "seed": 4, "spread": 1.0})
    ip = as_interpolant("trig")
    a, b, da, db = ip.a(t), ip.b(t), ip.da(t), ip.db(t)
    x1 = target.sample(400_000, generator=7, dtype=F64)
    x = torch.tensor([[0.3, -0.2], [1.0, 0.5], [-0.8, 0.9]], dtype=F64)
    exact = target.velocity(t, x, ip)
    for i in range(x.shape[0]):
        z = (x[i] - b * x1) / a
        logw = -0.5 * (z * z).sum(1)
        w = torch.softmax(logw, 0)
        f = da * z + db * x1
        mc = (w[:, None] * f).sum(0)
        ess = 1 / (w * w).sum()
        se = torch.sqrt((w[:, None] * (f - mc) ** 2).sum(0) / ess)
        assert ess > 1000
        assert ((mc - exact[i]).abs() <= 5 * se + 1e-12).all(), (mc, exact[i], se)


@pytest.mark.parametrize("kind", ["iso", "diag", "full", "lowrank", "lowrank+iso"])
def test_samples_have_the_mixture_moments(kind):
    target = make_mixture(11, 3, 3, kind)
    x = target.sample(200_000, generator=3, dtype=F64)
    n = x.shape[0]
    m, C = target.mean(), target.covariance()
    assert ((x.mean(0) - m).abs() <= 5 * torch.sqrt(torch.diag(C) / n)).all()
    xc = x - m
    prods = xc[:, :, None] * xc[:, None, :]
    se = prods.std(0) / n**0.5
    assert ((prods.mean(0) - C).abs() <= 5 * se + 1e-12).all()


def test_sampling_is_reproducible_and_seeded(device):
    target = ring8()
    g1, g2 = torch.Generator(device).manual_seed(5), torch.Generator(device).manual_seed(5)
    a, b = target.sample(100, generator=g1), target.sample(100, generator=g2)
    assert a.device.type == device.type and a.dtype == torch.get_default_dtype()
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, target.sample(100, generator=torch.Generator(device).manual_seed(6)))


def test_fields_follow_device_and_dtype(device):
    target = make_mixture(2, 3, 4, "full")
    x = _points(target, 1).to(device)
    for dtype in (F64, torch.float32):
        v = target.velocity(0.5, x.to(dtype), Linear())
        assert v.device.type == device.type and v.dtype == dtype
    torch.testing.assert_close(target.velocity(0.5, x, "linear").cpu(), target.velocity(0.5, x.cpu(), "linear"))


def test_mixture_mean_and_covariance_closed_forms():
    target = ring8(radius=2.0, s=0.5)
    torch.testing.assert_close(target.mean(), torch.zeros(2, dtype=F64), atol=1e-15, rtol=0)
    # 8 points on a circle of radius R: covariance R^2 / 2 I, plus the component variance
    torch.testing.assert_close(target.covariance(), (2.0**2 / 2 + 0.25) * torch.eye(2, dtype=F64))


@pytest.mark.parametrize("kind", ["iso", "diag", "full", "lowrank", "lowrank+iso"])
def test_eigenvalues_match_the_dense_covariances(kind):
    target = make_mixture(1, 3, 4, kind)
    expect = torch.linalg.eigvalsh(target.cov.dense())
    torch.testing.assert_close(target.cov.eigenvalues().sort(1).values, expect, atol=1e-12, rtol=1e-10)
