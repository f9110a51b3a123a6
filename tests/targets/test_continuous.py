"""Continuous manifold targets (uniform_sphere, uniform_torus, uniform_cube): exact fields against independent
routes -- quadrature of the posterior over the manifold, mpmath, autograd, the field identities, the atom-mixture
limit, and the flow's pushforward."""

import math

import mpmath
import numpy as np
import pytest
import torch

from convlab.fields import ExactField, score_coefficient
from convlab.interpolants import as_interpolant
from convlab.metrics.w2 import early_stopping_w2_bound
from convlab.solvers import integrate, time_grid
from convlab.targets import make_target, sphere_atoms, torus_atoms
from convlab.targets.continuous import bessel_log_ratio, interval_posterior

F64 = torch.float64
IP = as_interpolant("linear")
SPECS = [
    {"name": "uniform_sphere", "d": 1, "D": 4, "s": 0.1},
    {"name": "uniform_sphere", "d": 2, "D": 7, "radius": 1.5},
    {"name": "uniform_sphere", "d": 4, "D": 9, "s": 0.05},
    {"name": "uniform_torus", "d": 2, "D": 6, "s": 0.05},
    {"name": "uniform_torus", "d": 1},
    {"name": "uniform_cube", "d": 3, "D": 5, "side": 2.0},
    {"name": "uniform_cube", "d": 1, "s": 0.2},
    {"name": "curved_torus", "d": 1, "D": 9, "s": 0.05},
    {"name": "curved_torus", "d": 2, "D": 16},
]


def _points(target, n=64, t=0.7, seed=0):
    g = torch.Generator().manual_seed(seed)
    x1 = target.sample(n, generator=g, dtype=F64)
    return IP.a(t) * target.noise(n, generator=g, dtype=F64) + IP.b(t) * x1


# -- special functions against mpmath ----------------------------------------------------------------------------


@pytest.mark.parametrize("nu", [0.0, 0.5, 1.5, 3.0])
def test_bessel_log_ratio_matches_mpmath(nu):
    kappa = torch.tensor([0.0, 1e-7, 1e-3, 0.3, 2.0, 25.0, 700.0, 1e5, 1e9], dtype=F64)
    f, ratio_over_kappa = bessel_log_ratio(nu, kappa)
    mpmath.mp.dps = 40
    for k, fk, rk in zip(kappa.tolist(), f.tolist(), ratio_over_kappa.tolist()):
        if k == 0:
            want_f = -nu * math.log(2) - math.lgamma(nu + 1)
            want_r = 1 / (2 * nu + 2)
        else:
            K = mpmath.mpf(k)
            want_f = float(mpmath.log(mpmath.besseli(nu, K)) - nu * mpmath.log(K))
            want_r = float(mpmath.besseli(nu + 1, K) / (K * mpmath.besseli(nu, K)))
        assert fk == pytest.approx(want_f, rel=1e-12, abs=1e-12), k
        assert rk == pytest.approx(want_r, rel=1e-10, abs=1e-300), k


def test_bessel_log_ratio_gradient_is_the_ratio():
    for nu in (0.0, 1.5):
        kappa = torch.tensor([0.5, 3.0, 40.0], dtype=F64, requires_grad=True)
        f, ratio_over_kappa = bessel_log_ratio(nu, kappa)
        (grad,) = torch.autograd.grad(f.sum(), kappa)
        torch.testing.assert_close(grad, (kappa * ratio_over_kappa).detach(), rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "eta, lam",
    [
        (0.0, 0.0),
        (3.0, 0.5),
        (-39.0, 0.9),
        (45.0, 0.2),
        (0.5, 1.0),
        (80.0, 100.0),
        (-300.0, 40.0),
        (2e4, 1e4),
        (1e6, 1e6),
        (-5e5, 1e6),
        (5e6, 1e6),
        (1e3, 2.0),
    ],
)
def test_interval_posterior_matches_mpmath(eta, lam):
    L, mean = interval_posterior(torch.tensor([eta], dtype=F64), torch.tensor([lam], dtype=F64))
    mpmath.mp.dps = 50
    e, l_ = mpmath.mpf(eta), mpmath.mpf(lam)
    peak = max(0.0, min(1.0, eta / lam)) if lam > 0 else (1.0 if eta > 0 else 0.0)
    pts = sorted({0.0, peak, 1.0})
    shift = e * peak - l_ * peak**2 / 2  # integrate exp(. - shift) to stay in range
    Z = mpmath.quad(lambda u: mpmath.exp(e * u - l_ * u * u / 2 - shift), pts)
    M = mpmath.quad(lambda u: u * mpmath.exp(e * u - l_ * u * u / 2 - shift), pts) / Z
    assert L.item() == pytest.approx(float(mpmath.log(Z) + shift), rel=1e-11, abs=1e-11)
    assert mean.item() == pytest.approx(float(M), rel=1e-9, abs=1e-11)


# -- the posterior mean against quadrature over the manifold ------------------------------------------------------


def _quadrature_posterior(points: np.ndarray, logw: np.ndarray, y: np.ndarray, b: float, c: float):
    """log E_Unif exp((b <y, Y> - b^2 |Y|^2 / 2) / c) and E[Y | y] from weighted points of the manifold."""
    logits = logw + (b * points @ y - 0.5 * b * b * (points**2).sum(1)) / c
    top = logits.max()
    w = np.exp(logits - top)
    return top + math.log(w.sum()), (w[:, None] * points).sum(0) / w.sum()


def _sphere_quadrature(d: int, r: float):
    if d == 1:
        th = 2 * np.pi * np.arange(4096) / 4096
        return r * np.stack([np.cos(th), np.sin(th)], 1), np.full(4096, -math.log(4096))
    # S^2: Gauss-Legendre in cos(theta) times the trapezoid rule in phi (both spectrally accurate here)
    z, wz = np.polynomial.legendre.leggauss(400)
    phi = 2 * np.pi * np.arange(800) / 800
    Z, P = np.meshgrid(z, phi, indexing="ij")
    rho = np.sqrt(1 - Z**2)
    pts = r * np.stack([rho * np.cos(P), rho * np.sin(P), Z], -1).reshape(-1, 3)
    return pts, np.log(np.repeat(wz / 2, 800) / 800)


@pytest.mark.parametrize("d, r, s", [(1, 1.0, 0.0), (1, 2.0, 0.3), (2, 1.0, 0.0), (2, 0.7, 0.1)])
def test_sphere_posterior_matches_quadrature(d, r, s):
    target = make_target({"name": "uniform_sphere", "d": d, "radius": r, "s": s})
    pts, logw = _sphere_quadrature(d, r)
    x = _points(target, n=6, t=0.8)
    for t in (0.3, 0.8):
        b = float(IP.b(t))
        c = float(IP.a(t)) ** 2 + b * b * s * s
        L, mean = target._posterior(x, torch.tensor([[b]], dtype=F64), torch.tensor([[c]], dtype=F64))
        for i in range(x.shape[0]):
            want_L, want_mean = _quadrature_posterior(pts, logw, x[i].numpy(), b, c)
            assert L[i].item() == pytest.approx(want_L, abs=1e-10)
            np.testing.assert_allclose(mean[i].numpy(), want_mean, atol=1e-10)


def test_torus_posterior_matches_quadrature():
    target = make_target({"name": "uniform_torus", "d": 2, "radius": 1.3})
    th = 2 * np.pi * np.arange(256) / 256
    T1, T2 = np.meshgrid(th, th, indexing="ij")
    pts = 1.3 * np.stack([np.cos(T1), np.sin(T1), np.cos(T2), np.sin(T2)], -1).reshape(-1, 4)
    logw = np.full(len(pts), -math.log(len(pts)))
    x = _points(target, n=5, t=0.6)
    b, c = float(IP.b(0.6)), float(IP.a(0.6)) ** 2
    L, mean = target._posterior(x, torch.tensor([[b]], dtype=F64), torch.tensor([[c]], dtype=F64))
    for i in range(5):
        want_L, want_mean = _quadrature_posterior(pts, logw, x[i].numpy(), b, c)
        assert L[i].item() == pytest.approx(want_L, abs=1e-10)
        np.testing.assert_allclose(mean[i].numpy(), want_mean, atol=1e-10)


def test_sphere_of_dimension_one_is_the_torus_of_dimension_one():
    """Two routes to the circle: the sphere's Bessel order (d - 1)/2 = 0 and the torus's von Mises."""
    s1, t1 = (
        make_target({"name": "uniform_sphere", "d": 1, "D": 5, "s": 0.1}),
        make_target({"name": "uniform_torus", "d": 1, "D": 5, "s": 0.1}),
    )
    x = _points(s1, n=32)
    for method in ("velocity", "score", "denoiser", "log_density"):
        torch.testing.assert_close(
            getattr(s1, method)(0.7, x, IP), getattr(t1, method)(0.7, x, IP), rtol=1e-13, atol=1e-13
        )


# -- identities and autograd -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s['name']}-d{s['d']}")
@pytest.mark.parametrize("ip_name", ["linear", "follmer", "trig"])
def test_fields_satisfy_the_identities_and_the_score_is_the_gradient(spec, ip_name):
    target, ip = make_target(spec), as_interpolant(ip_name)
    x = _points(target, n=48, t=0.5)
    t = torch.linspace(0.1, 0.95, 48, dtype=F64)
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(target.log_density(t, xr, ip).sum(), xr)
    score, den, vel = (getattr(target, m)(t, x, ip) for m in ("score", "denoiser", "velocity"))
    torch.testing.assert_close(grad, score, rtol=1e-10, atol=1e-10)
    a, b = ip.a(t)[:, None], ip.b(t)[:, None]
    torch.testing.assert_close(score, (b * den - x) / (a * a), rtol=1e-10, atol=1e-10)
    bt = ip.b(t)[:, None]
    want_v = (ip.db(t)[:, None] / bt) * x + score_coefficient(ip, t, x) * score
    torch.testing.assert_close(vel, want_v, rtol=1e-10, atol=1e-10)


def test_fields_at_time_zero_see_the_support_mean():
    """b(0) = 0 for the linear interpolant: the posterior is the prior, the denoiser the mean of nu."""
    target = make_target({"name": "uniform_cube", "d": 3, "D": 6, "side": 2.0, "s": 0.1})
    x = _points(target, n=8)
    den = target.denoiser(0.0, x, IP)
    torch.testing.assert_close(den, target.mean().expand_as(den), rtol=0, atol=1e-12)


def test_clean_targets_need_t_below_one():
    target = make_target({"name": "uniform_sphere", "d": 2, "D": 4})
    with pytest.raises(ValueError, match=r"t: uniform_sphere with s = 0 has fields only for t < 1"):
        target.velocity(1.0, torch.zeros(3, 4, dtype=F64), IP)
    make_target({"name": "uniform_sphere", "d": 2, "D": 4, "s": 0.1}).velocity(1.0, torch.zeros(3, 4, dtype=F64), IP)


# -- the atom-mixture limit and the flow ---------------------------------------------------------------------------


@pytest.mark.parametrize("atoms, name", [(sphere_atoms, "uniform_sphere"), (torus_atoms, "uniform_torus")])
def test_atom_mixtures_converge_to_the_continuous_target(atoms, name):
    """Sobol atoms stratify the uniform measure: the atom mixture's velocity approaches the exact one as N grows."""
    exact = make_target({"name": name, "d": 2, "s": 0.15})
    x = _points(exact, n=400, t=0.6)
    errs = []
    for n_atoms in (64, 512, 4096):
        mix = atoms(d=2, s=0.15, n_atoms=n_atoms)
        errs.append((mix.velocity(0.6, x, IP) - exact.velocity(0.6, x, IP)).pow(2).sum(1).mean().sqrt().item())
    assert errs[0] > 3 * errs[1] > 9 * errs[2], errs
    assert errs[2] < 3e-3


def test_exact_flow_pushes_the_noise_to_the_target():
    """Flow[V] of N(0, I) at T = 1 is nu (s > 0): its second moment and the cube's mean, within Monte Carlo error."""
    target = make_target({"name": "uniform_cube", "d": 2, "D": 5, "side": 2.0, "s": 0.1})
    z = target.noise(4000, generator=torch.Generator().manual_seed(3), dtype=F64)
    x = integrate(ExactField(target, IP), z, time_grid(100, T=1.0), "rk4").x
    n = x.shape[0]
    sq = x.pow(2).sum(1)
    assert abs(sq.mean().item() - target.second_moment()) < 4 * sq.std().item() / math.sqrt(n)
    err = (x.mean(0) - target.mean()).norm().item()
    assert err < 4 * math.sqrt(target.covariance().trace().item() / n)


# -- sampling, pairing, embedding -----------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s['name']}-d{s['d']}")
def test_samples_have_the_closed_form_moments(spec):
    target = make_target(spec)
    x = target.sample(40000, generator=7, dtype=F64)
    n = x.shape[0]
    cov = torch.cov(x.T).reshape(target.ambient_dim, target.ambient_dim)
    torch.testing.assert_close(x.mean(0), target.mean(), rtol=0, atol=5 / math.sqrt(n))
    torch.testing.assert_close(cov, target.covariance(), rtol=0, atol=8 / math.sqrt(n))
    assert x.pow(2).sum(1).mean().item() == pytest.approx(target.second_moment(), rel=0.02)


def test_draws_are_paired_across_the_ambient_dimension():
    """One seed: the same manifold points and the same natural-coordinate noise in every D, at the same distances."""
    natural = make_target({"name": "uniform_torus", "d": 2, "s": 0.1})
    ref = natural.sample(50, generator=5, dtype=F64)
    for D in (5, 16, 128):
        target = make_target({"name": "uniform_torus", "d": 2, "D": D, "s": 0.1})
        y = target.sample_support(50, generator=5, dtype=F64)
        torch.testing.assert_close(
            target.natural(y), natural.sample_support(50, generator=5, dtype=F64), rtol=0, atol=1e-13
        )
        x = target.sample(50, generator=5, dtype=F64)
        torch.testing.assert_close(target.natural(x), ref, rtol=0, atol=1e-13)
        torch.testing.assert_close(target.embed(target.natural(y)), y, rtol=0, atol=1e-13)  # y lies in M's span
        z = target.noise(50, generator=torch.Generator().manual_seed(1), dtype=F64)
        z0 = natural.noise(50, generator=torch.Generator().manual_seed(1), dtype=F64)
        torch.testing.assert_close(target.natural(z), z0, rtol=0, atol=1e-13)


def test_early_stopping_bound_is_a_bound_and_exact_for_a_point_mass():
    target = make_target({"name": "uniform_sphere", "d": 2, "D": 4, "s": 0.05})
    T = 0.9
    bound = early_stopping_w2_bound(target, IP, T)
    a, b = IP.a(T), IP.b(T)
    want = math.sqrt((1 - b) ** 2 * 1.0 + 4 * (math.sqrt(a * a + b * b * 0.05**2) - 0.05) ** 2)
    assert bound == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize(
    "spec, message",
    [
        (
            {"name": "uniform_sphere", "d": 2, "D": 2},
            r"D: uniform_sphere with d=2 needs an ambient dimension >= 3 \(got 2\)",
        ),
        ({"name": "uniform_torus", "d": 0}, r"d: must be an integer >= 1 \(got 0\)"),
        ({"name": "uniform_cube", "d": 2, "s": -0.1}, r"s: must be a number >= 0 \(got -0.1\)"),
        ({"name": "uniform_cube", "d": 2, "side": 0}, r"side: must be a positive number \(got 0\)"),
    ],
)
def test_bad_parameters_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        make_target(spec)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s['name']}-d{s['d']}")
def test_fields_on_cuda_match_the_cpu(spec):
    target = make_target(spec)
    x = _points(target, n=32)
    for method in ("velocity", "score", "denoiser"):
        cpu = getattr(target, method)(0.6, x, IP)
        gpu = getattr(target, method)(0.6, x.cuda(), IP).cpu()
        torch.testing.assert_close(gpu, cpu, rtol=1e-12, atol=1e-12)


# -- the curved torus (fields by quadrature) ------------------------------------------------------------------------


def test_curved_torus_with_one_frequency_is_the_flat_torus():
    """D = 2d leaves one frequency per circle: the curve is the round circle, and the quadrature posterior equals
    uniform_torus's closed form (von Mises) in the curve's rotated frame."""
    curved = make_target({"name": "curved_torus", "d": 2, "D": 4, "radius": 1.3, "s": 0.1})
    flat = make_target({"name": "uniform_torus", "d": 2, "radius": 1.3, "s": 0.1})
    R = curved.rotation
    y = _points(flat, n=40, t=0.8)
    b, c = torch.tensor([[0.8]], dtype=F64), torch.tensor([[0.04 + 0.64 * 0.01]], dtype=F64)
    L_c, mean_c = curved._posterior(y @ R.T, b, c)
    L_f, mean_f = flat._posterior(y, b, c)
    torch.testing.assert_close(L_c, L_f, rtol=0, atol=1e-11)
    torch.testing.assert_close(mean_c, mean_f @ R.T, rtol=0, atol=1e-11)


def test_curved_torus_has_unit_speed_and_spans_the_ambient_space():
    target = make_target({"name": "curved_torus", "d": 1, "D": 16, "radius": 2.0})
    theta = torch.linspace(0, 6, 50, dtype=F64)[:, None].requires_grad_(True)
    speed = torch.stack(
        [torch.autograd.grad(target.curve(theta)[:, i].sum(), theta, retain_graph=True)[0][:, 0] for i in range(16)], 1
    ).norm(dim=1)
    torch.testing.assert_close(speed, torch.full_like(speed, 2.0), rtol=1e-12, atol=0)  # length 2 pi r in every D
    x = target.sample_support(2000, generator=0, dtype=F64)
    assert torch.linalg.matrix_rank(x - x.mean(0), atol=1e-9).item() == 16  # in no lower-dimensional subspace


def test_curved_torus_posterior_matches_adaptive_quadrature():
    """The trapezoid rule against scipy's adaptive Gauss-Kronrod (an independent route), at t = 0.95 where the
    posterior is narrow."""
    from scipy.integrate import quad_vec

    target = make_target({"name": "curved_torus", "d": 1, "D": 12})
    x = _points(target, n=4, t=0.95)
    b, a = float(IP.b(0.95)), float(IP.a(0.95))
    c = a * a
    _, mean = target._posterior(x, torch.tensor([[b]], dtype=F64), torch.tensor([[c]], dtype=F64))
    for i in range(4):
        xi = x[i].numpy()
        phi = lambda th: target.curve(torch.tensor([[th]], dtype=F64))[0].numpy()  # noqa: E731
        top = max(b * xi @ phi(th) / c for th in np.linspace(0, 2 * np.pi, 2000))
        w = lambda th: math.exp(b * xi @ phi(th) / c - top)  # noqa: E731
        Z = quad_vec(w, 0, 2 * np.pi, epsabs=1e-14, epsrel=1e-13, points=np.linspace(0, 2 * np.pi, 64))[0]
        M = quad_vec(
            lambda th: w(th) * phi(th), 0, 2 * np.pi, epsabs=1e-14, epsrel=1e-13, points=np.linspace(0, 2 * np.pi, 64)
        )[0]
        np.testing.assert_allclose(mean[i].numpy(), M / Z, atol=1e-9)


def test_curved_torus_quadrature_error_is_far_below_the_studies_errors():
    """At the manifold_dim study's settings (T = 0.99, the narrowest posterior it integrates; 1024 nodes) the velocity
    changes by less than 1e-12 of its rms when the nodes double: far below the study's smallest error (0.018)."""
    for D in (16, 128):
        target = make_target({"name": "curved_torus", "d": 2, "D": D, "decay": 3, "nodes": 1024})  # the study's
        x = _points(target, n=200, t=0.99)
        assert target.quadrature_error(0.99, x, IP) < 1e-12


@pytest.mark.parametrize("decay", [2.0, 3.0])
def test_curved_torus_curvature_is_the_closed_form(decay):
    """|d^2 phi / ds^2| by finite differences along the unit-speed curve equals `curvature`, constant in theta; it grows
    with D for decay 2 and stays bounded for decay 3."""
    r = 1.5
    target = make_target({"name": "curved_torus", "d": 1, "D": 24, "radius": r, "decay": decay})
    theta, h = torch.linspace(0.1, 6.0, 40, dtype=F64)[:, None], 1e-4
    second = (target.curve(theta + h) - 2 * target.curve(theta) + target.curve(theta - h)) / h**2 / r**2
    torch.testing.assert_close(second.norm(dim=1), torch.full((40,), target.curvature, dtype=F64), rtol=1e-6, atol=0)
    growth = [make_target({"name": "curved_torus", "d": 1, "D": D, "decay": decay}).curvature for D in (16, 128)]
    assert (growth[1] / growth[0] > 2) if decay == 2.0 else (growth[1] / growth[0] < 1.05), growth


def test_curved_torus_draws_are_paired_across_the_ambient_dimension():
    """One seed: the same angles (latent points) and the same noise in the frame coordinates two D share, to 1e-12,
    so the flows of two D share their noise along every plane they share (issue 23: unpaired, its intervals were
    +/- 0.07 to 0.15)."""
    small, large = (make_target({"name": "curved_torus", "d": 2, "D": D, "decay": 3}) for D in (16, 128))
    for target in (small, large):  # a coordinate of the frame is one plane's cos or sin of one frequency and circle
        assert [c[:4].tolist() for c in target._columns] == [[0, 1, 4, 5], [2, 3, 6, 7]]
    a, b = (t.angles(300, torch.Generator().manual_seed(3)) for t in (small, large))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    za, zb = (t.noise(300, generator=torch.Generator().manual_seed(4), dtype=F64) for t in (small, large))
    torch.testing.assert_close(small.frame(za), large.frame(zb)[:, :16], rtol=0, atol=1e-12)
    # and the generator advances alike: the next draw is paired too
    ga, gb = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    small.noise(10, generator=ga, dtype=F64), large.noise(10, generator=gb, dtype=F64)
    torch.testing.assert_close(small.angles(7, ga), large.angles(7, gb), rtol=0, atol=0)
    # the shared planes carry the same frequencies: the curve in the frame differs only by the amplitudes' scale
    y_small, y_large = small.frame(small.curve(a)), large.frame(large.curve(a))
    ratio = small.amplitudes[0] / large.amplitudes[0]
    torch.testing.assert_close(y_small[:, :4], ratio * y_large[:, :4], rtol=1e-12, atol=1e-12)
