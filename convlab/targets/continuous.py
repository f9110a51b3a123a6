"""Uniform measures on continuous manifolds with exact fields: nu = Unif(M) * N(0, s^2 I_D), no atoms.

M is a compact d-manifold in its natural space R^m (the sphere S^d in R^{d+1}, the flat torus T^d in R^{2d},
the cube [0, side]^d in R^d), embedded into R^D by a seeded isometry Q (the identity when D = m). Given the
manifold point Y, X_t = a Z + b (Y + s eps) = b Y + sqrt(c) xi with c = a^2 + b^2 s^2, so the posterior of Y
given X_t = x is Unif(M) tilted by exp((b <x, Y> - b^2 |Y|^2 / 2) / c). It only sees x's natural coordinates
Q^T x, and every field follows from its log-partition L and mean E[Y | x] (docs/concepts/theory.md §2):

    log p_t(x) = -D/2 log(2 pi c) - |x|^2 / (2c) + L,      L = log E_Unif[exp((b <x, Y> - b^2 |Y|^2 / 2) / c)]
    score      = (b E[Y | x] - x) / c
    denoiser   = E[Y | x] + (b s^2 / c) (x - b E[Y | x])
    velocity   = b' denoiser + a a' (x - b E[Y | x]) / c

The posteriors are closed forms: von Mises-Fisher on the sphere (mean resultant length I_{p/2}/I_{p/2-1}, a
ratio of scaled Bessel functions, stable at any concentration), von Mises on each circle of the torus, a
truncated normal on each side of the cube. With s = 0 the fields exist for t < 1 (use T < 1).

Draws are paired across D: the manifold points come first from the generator (m numbers per point), then the
smoothing noise, natural coordinates first and the normal ones after, so one seed gives the same points and the
same natural-coordinate noise in every ambient dimension (`noise` draws standard normals the same way), and the
generator advances by the same amount whatever D is, so later draws stay paired too.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy import special
from torch import Tensor

from convlab.interpolants import Interpolant, as_interpolant
from convlab.targets.mixture import draw_args, time_column
from convlab.targets.named import _count, _nonneg, _positive, haar_orthogonal

LOG_2PI = math.log(2 * math.pi)


class SmoothedManifold:
    """Unif(M) * N(0, s^2 I_D) with exact fields; subclasses give the manifold in natural coordinates.

    Subclass API (tensors in natural coordinates, batch-first):
        natural_dim: m;  _latent(n, generator, device, dtype) -> (n, m) uniform points of M;
        _posterior(y, b, c) -> (L (n,), E[Y | x] (n, m)) for natural coordinates y = Q^T x;
        support_second_moment() -> E|Y|^2 (public: the early-stopping bound uses it);  _support_mean() -> E[Y] (m,);
        _coordinate_variance() -> Var Y_j (all j).
    """

    name = "manifold"
    natural_dim: int

    def __init__(self, *, d: int, D: int | None, s: float, seed: int, params: dict[str, Any]):
        _nonneg("s", s)
        _count("seed", seed, minimum=0)
        m = self.natural_dim
        D = m if D is None else D
        if not (isinstance(D, int) and not isinstance(D, bool) and D >= m):
            raise ValueError(f"D: {self.name} with d={d} needs an ambient dimension >= {m} (got {D!r})")
        self.intrinsic_dim, self.ambient_dim, self.s, self.seed = d, D, float(s), seed
        self.is_degenerate = s == 0
        self.params = {**params, "D": D, "s": s, "seed": seed}
        # A full Haar rotation: its first m columns embed M, the rest span the normal space (paired noise).
        rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
        self._Q = torch.from_numpy(haar_orthogonal(D, rng)) if D > m else None
        self._cache: dict[tuple, Tensor | None] = {}

    # -- structure ---------------------------------------------------------------------------------------------

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, **self.params}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({args}) [m={self.natural_dim}, D={self.ambient_dim}, d={self.intrinsic_dim}]"

    def _rotation(self, like: Tensor) -> Tensor | None:
        key = (like.device, like.dtype)
        if key not in self._cache:
            self._cache[key] = None if self._Q is None else self._Q.to(like.device, like.dtype)
        return self._cache[key]

    def embed(self, y: Tensor, normal: Tensor | None = None) -> Tensor:
        """Q [y; normal]: natural coordinates (n, m) and normal ones (n, D - m) to R^D."""
        Q = self._rotation(y)
        if Q is None:
            return y
        m = self.natural_dim
        x = y @ Q[:, :m].T
        return x if normal is None else x + normal @ Q[:, m:].T

    def natural(self, x: Tensor) -> Tensor:
        """Q^T x restricted to M's span, (n, m)."""
        Q = self._rotation(x)
        return x if Q is None else x @ Q[:, : self.natural_dim]

    def mean(self) -> Tensor:
        """E[X1], (D,) float64."""
        return self.embed(self._support_mean()[None].double())[0]

    def covariance(self) -> Tensor:
        """Cov(X1), (D, D) float64: Q diag(Var Y) Q^T + s^2 I (uniform measures have isotropic sides)."""
        nat = torch.diag(torch.full((self.natural_dim,), self._coordinate_variance(), dtype=torch.float64))
        Q = self._rotation(nat)
        full = torch.zeros(self.ambient_dim, self.ambient_dim, dtype=torch.float64)
        full[: self.natural_dim, : self.natural_dim] = nat
        cov = full if Q is None else Q @ full @ Q.T
        return cov + self.s**2 * torch.eye(self.ambient_dim, dtype=torch.float64)

    def second_moment(self) -> float:
        """E|X1|^2 = E|Y|^2 + D s^2."""
        return self.support_second_moment() + self.ambient_dim * self.s**2

    # -- sampling ------------------------------------------------------------------------------------------------

    def noise(self, n: int, *, generator: torch.Generator, device=None, dtype=None) -> Tensor:
        """n standard normal vectors in R^D, natural coordinates drawn first: paired across D for one generator."""
        device = torch.device(device) if device is not None else generator.device
        dtype = dtype or torch.get_default_dtype()
        m, D = self.natural_dim, self.ambient_dim
        nat = torch.randn(n, m, generator=generator, device=device, dtype=dtype)
        # The normal part comes from a stream seeded by one draw, so `generator` advances by the same amount in
        # every D and the draws after this one stay paired too.
        seed = int(torch.randint(2**62, (1,), generator=generator, device=generator.device).item())
        if D == m:
            return nat
        normal = torch.randn(n, D - m, generator=torch.Generator(device).manual_seed(seed), device=device, dtype=dtype)
        return self.embed(nat, normal)

    def sample_support(self, n: int, *, generator: torch.Generator | int, device=None, dtype=None) -> Tensor:
        """n draws of Unif(M), clean (no smoothing), embedded: (n, D)."""
        generator, device, dtype = draw_args(generator, device, dtype)
        # Drawn in float64 and cast, so the points do not depend on the dtype asked for.
        return self.embed(self._latent(n, generator, device).to(dtype))

    def sample(self, n: int, *, generator: torch.Generator | int, device=None, dtype=None) -> Tensor:
        """n draws of X1 ~ nu, (n, D): manifold points, then (s > 0) the smoothing noise."""
        generator, device, dtype = draw_args(generator, device, dtype)
        y = self.sample_support(n, generator=generator, device=device, dtype=dtype)
        return y + self.s * self.noise(n, generator=generator, device=device, dtype=dtype) if self.s > 0 else y

    # -- exact fields ------------------------------------------------------------------------------------------

    def log_density(self, t, x: Tensor, interpolant: Interpolant | str | dict) -> Tensor:
        """log p_t(x), (n,)."""
        a, b, c = self._abc(as_interpolant(interpolant), t, x)[:3]
        L, _ = self._posterior(self.natural(x), b, c)
        return -0.5 * self.ambient_dim * torch.log(2 * math.pi * c).squeeze(1) - 0.5 * (x * x).sum(1) / c.squeeze(1) + L

    def score(self, t, x: Tensor, interpolant: Interpolant | str | dict) -> Tensor:
        """grad_x log p_t(x), (n, D)."""
        a, b, c = self._abc(as_interpolant(interpolant), t, x)[:3]
        return (b * self.embed(self._posterior(self.natural(x), b, c)[1]) - x) / c

    def denoiser(self, t, x: Tensor, interpolant: Interpolant | str | dict) -> Tensor:
        """E[X1 | X_t = x], (n, D)."""
        a, b, c = self._abc(as_interpolant(interpolant), t, x)[:3]
        ey = self.embed(self._posterior(self.natural(x), b, c)[1])
        return ey + (b * self.s**2 / c) * (x - b * ey) if self.s > 0 else ey

    def velocity(self, t, x: Tensor, interpolant: Interpolant | str | dict) -> Tensor:
        """V(t, x) = E[a'(t) Z + b'(t) X1 | X_t = x], (n, D)."""
        a, b, c, db, a_da = self._abc(as_interpolant(interpolant), t, x)
        return self._velocity(x, self.embed(self._posterior(self.natural(x), b, c)[1]), b, c, db, a_da)

    def _velocity(self, x: Tensor, ey: Tensor, b: Tensor, c: Tensor, db: Tensor, a_da: Tensor) -> Tensor:
        """V from the posterior mean ey = E[Y | x] (embedded); V is affine in it."""
        residual = (x - b * ey) / c  # E[(X_t - b Y)] / c = E[(a Z + b s eps)] / c
        den = ey + (b * self.s**2) * residual if self.s > 0 else ey
        return db * den + a_da * residual

    def _abc(self, ip: Interpolant, t, x: Tensor) -> tuple[Tensor, ...]:
        """a, b, c = a^2 + b^2 s^2, b', a a' at t as (n, 1) or (1, 1) tensors on x's device and dtype."""
        t = time_column(t, x, self.ambient_dim)
        a, b = ip.a(t), ip.b(t)
        c = a * a + b * b * self.s**2
        if self.s == 0 and bool((c <= 0).any()):  # c > 0 whenever s > 0: no host sync needed then
            raise ValueError(f"t: {self.name} with s = 0 has fields only for t < 1 (a(t) = 0 at some t given)")
        return a, b, c, ip.db(t), ip.a_da(t)


# -- the three manifolds -------------------------------------------------------------------------------------------


class UniformSphere(SmoothedManifold):
    """The round sphere S^d of the given radius in R^{d+1}: the posterior is von Mises-Fisher with concentration
    kappa = b r |y| / c, so E[Y | x] = r A(kappa) y / |y| with A = I_{p/2} / I_{p/2-1}, p = d + 1."""

    name = "uniform_sphere"

    def __init__(self, *, d: int, D: int | None = None, radius: float = 1.0, s: float = 0.0, seed: int = 0):
        _count("d", d)
        _positive("radius", radius)
        self.natural_dim, self.radius, self.nu = d + 1, float(radius), (d - 1) / 2
        super().__init__(d=d, D=D, s=s, seed=seed, params=dict(d=d, radius=radius))

    def _latent(self, n: int, generator: torch.Generator, device) -> Tensor:
        g = torch.randn(n, self.natural_dim, generator=generator, device=device, dtype=torch.float64)
        return self.radius * g / g.norm(dim=1, keepdim=True)

    def _posterior(self, y: Tensor, b: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        r, p = self.radius, self.natural_dim
        scale = (b * r / c).squeeze(1)  # kappa = scale |y|
        kappa = scale * y.norm(dim=1)
        f, ratio_over_kappa = bessel_log_ratio(self.nu, kappa)
        # E_Unif exp(kappa <mu, u>) = Gamma(p/2) 2^nu exp(f(kappa)), f = log(I_nu(kappa) / kappa^nu)
        L = f + math.lgamma(p / 2) + self.nu * math.log(2) - 0.5 * (b * b).squeeze(1) * r * r / c.squeeze(1)
        return L, (r * scale * ratio_over_kappa)[:, None] * y

    def support_second_moment(self) -> float:
        return self.radius**2

    def _coordinate_variance(self) -> float:
        return self.radius**2 / self.natural_dim

    def _support_mean(self) -> Tensor:
        return torch.zeros(self.natural_dim, dtype=torch.float64)


class UniformTorus(SmoothedManifold):
    """The flat torus T^d, a product of d circles of the given radius in R^{2d}: independent von Mises posteriors,
    E[Y_j | x] = r (I_1 / I_0)(kappa_j) y_j / |y_j| with kappa_j = b r |y_j| / c on circle j."""

    name = "uniform_torus"

    def __init__(self, *, d: int, D: int | None = None, radius: float = 1.0, s: float = 0.0, seed: int = 0):
        _count("d", d)
        _positive("radius", radius)
        self.natural_dim, self.radius = 2 * d, float(radius)
        super().__init__(d=d, D=D, s=s, seed=seed, params=dict(d=d, radius=radius))

    def _latent(self, n: int, generator: torch.Generator, device) -> Tensor:
        theta = 2 * math.pi * torch.rand(n, self.intrinsic_dim, generator=generator, device=device, dtype=torch.float64)
        return self.radius * torch.stack([theta.cos(), theta.sin()], 2).reshape(n, self.natural_dim)

    def _posterior(self, y: Tensor, b: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        r, n, d = self.radius, y.shape[0], self.intrinsic_dim
        scale = b * r / c  # (n|1, 1)
        pairs = y.reshape(n, d, 2)
        kappa = scale * pairs.norm(dim=2)
        f, ratio_over_kappa = bessel_log_ratio(0.0, kappa)
        L = f.sum(1) - 0.5 * d * (b * b).squeeze(1) * r * r / c.squeeze(1)
        return L, (r * scale * ratio_over_kappa)[..., None].mul(pairs).reshape(n, 2 * d)

    def support_second_moment(self) -> float:
        return self.intrinsic_dim * self.radius**2

    def _coordinate_variance(self) -> float:
        return self.radius**2 / 2

    def _support_mean(self) -> Tensor:
        return torch.zeros(self.natural_dim, dtype=torch.float64)


class UniformCube(SmoothedManifold):
    """The cube [0, side]^d in R^d: independent posteriors on the sides, each a normal N(x_j / b, c / b^2)
    truncated to [0, side]."""

    name = "uniform_cube"

    def __init__(self, *, d: int, D: int | None = None, side: float = 1.0, s: float = 0.0, seed: int = 0):
        _count("d", d)
        _positive("side", side)
        self.natural_dim, self.side = d, float(side)
        super().__init__(d=d, D=D, s=s, seed=seed, params=dict(d=d, side=side))

    def _latent(self, n: int, generator: torch.Generator, device) -> Tensor:
        return self.side * torch.rand(n, self.natural_dim, generator=generator, device=device, dtype=torch.float64)

    def _posterior(self, y: Tensor, b: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        ell = self.side
        # In units of the side, u = Y_j / side on [0, 1] has density proportional to exp(eta u - lam u^2 / 2).
        eta, lam = (b * ell / c) * y, (b * b * ell * ell / c).expand_as(y)
        L, mean = interval_posterior(eta, lam)
        return L.sum(1), ell * mean

    def support_second_moment(self) -> float:
        return self.natural_dim * self.side**2 / 3

    def _coordinate_variance(self) -> float:
        return self.side**2 / 12

    def _support_mean(self) -> Tensor:
        return torch.full((self.natural_dim,), self.side / 2, dtype=torch.float64)


# -- special functions ---------------------------------------------------------------------------------------------


def bessel_log_ratio(nu: float, kappa: Tensor) -> tuple[Tensor, Tensor]:
    """f(kappa) = log(I_nu(kappa) / kappa^nu) and I_{nu+1}(kappa) / (kappa I_nu(kappa)), elementwise, kappa >= 0.

    f' = I_{nu+1} / I_nu, so autograd through f gives the posterior's mean resultant length. Order 0 uses torch's
    exponentially scaled i0e / i1e (any device, autograd); other orders scipy's ive in float64 (scaled: no
    overflow at large kappa) with f's derivative supplied. Small kappa uses the series (kappa = 0 included).
    """
    if nu == 0:
        small = kappa < 1e-4
        safe = torch.where(small, torch.ones_like(kappa), kappa)
        i0e, i1e = torch.special.i0e(safe), torch.special.i1e(safe)
        k2 = kappa * kappa
        f = torch.where(small, k2 / 4 - k2 * k2 / 64, torch.log(i0e) + safe)
        ratio = torch.where(small, 0.5 - k2 / 16, i1e / (i0e * safe))
        return f, ratio
    return _BesselLog.apply(kappa, float(nu))


def _bessel_terms(kappa: Tensor, nu: float) -> tuple[Tensor, Tensor]:
    """f and I_{nu+1} / (kappa I_nu) through scipy in one pass (float64 on the host), series below 1e-4."""
    k = kappa.detach().double().cpu().numpy()
    small = k < 1e-4
    safe = np.where(small, 1.0, k)
    ive_nu = special.ive(nu, safe)
    f = np.where(
        small,
        -nu * math.log(2) - math.lgamma(nu + 1) + k * k / (4 * (nu + 1)),
        np.log(ive_nu) + safe - nu * np.log(safe),
    )
    ratio = np.where(
        small, 1 / (2 * nu + 2) - k * k / (8 * (nu + 1) ** 2 * (nu + 2)), special.ive(nu + 1, safe) / (ive_nu * safe)
    )
    return tuple(torch.from_numpy(v).to(kappa.device, kappa.dtype) for v in (f, ratio))


class _BesselLog(torch.autograd.Function):
    """(f, I_{nu+1} / (kappa I_nu)) with f = log(I_nu(kappa) / kappa^nu) through scipy; df/dkappa = kappa times the
    second output, which is returned as a value (not differentiated)."""

    @staticmethod
    def forward(ctx, kappa: Tensor, nu: float) -> tuple[Tensor, Tensor]:
        f, ratio_over_kappa = _bessel_terms(kappa, nu)
        ctx.save_for_backward(kappa, ratio_over_kappa)
        ctx.mark_non_differentiable(ratio_over_kappa)
        return f, ratio_over_kappa

    @staticmethod
    def backward(ctx, grad: Tensor, _):
        kappa, ratio_over_kappa = ctx.saved_tensors
        return grad * kappa * ratio_over_kappa, None


# Gauss-Legendre nodes on [0, 1] for the broad interval posteriors (lam < 1): exact to rounding for |eta| < 40.
_GL_NODES, _GL_WEIGHTS = (torch.from_numpy(v) for v in np.polynomial.legendre.leggauss(64))
_GL_U, _GL_LOGW = (_GL_NODES + 1) / 2, torch.log(_GL_WEIGHTS / 2)
QUADRATURE_ETA = 40.0


def interval_posterior(eta: Tensor, lam: Tensor) -> tuple[Tensor, Tensor]:
    """log int_0^1 exp(eta u - lam u^2 / 2) du and the mean of u under that density, elementwise (lam >= 0).

    Broad posteriors (lam < 1, |eta| < QUADRATURE_ETA) by 64-point Gauss-Legendre, whose integrand is then entire
    and slowly varying; the rest as the normal N(eta / lam, 1 / lam) truncated to [0, 1] (_truncated_normal).
    """
    quad = (lam < 1) & (eta.abs() < QUADRATURE_ETA)
    u, logw = _GL_U.to(eta.device, eta.dtype), _GL_LOGW.to(eta.device, eta.dtype)
    logits = logw + eta[..., None] * u - 0.5 * lam[..., None] * u * u
    L_quad = torch.logsumexp(logits, -1)
    mean_quad = (torch.softmax(logits, -1) * u).sum(-1)
    lam_safe = torch.where(quad, torch.ones_like(lam), lam)
    sigma = lam_safe.rsqrt()
    mu = eta / lam_safe
    alpha, beta = -mu / sigma, (1 - mu) / sigma
    log_mass, ratio = _truncated_normal(alpha, beta)
    L_tn = 0.5 * eta * mu + torch.log(sigma) + 0.5 * LOG_2PI + log_mass
    mean_tn = mu + sigma * ratio
    return torch.where(quad, L_quad, L_tn), torch.where(quad, mean_quad, mean_tn.clamp(0.0, 1.0))


def _truncated_normal(alpha: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
    """log(Phi(beta) - Phi(alpha)) and (phi(alpha) - phi(beta)) / (Phi(beta) - Phi(alpha)) for alpha < beta.

    An interval in one tail is reflected into the left one, [lo, hi] with hi <= 0, and written with the Mills
    ratio q = phi(hi) / Phi(hi) = sqrt(2 / pi) / erfcx(-hi / sqrt 2) and rho = Phi(lo) / Phi(hi): no difference of
    large logs or of nearly equal masses, however far out the interval is. One straddling 0 has mass >= ~0.3 of
    its width's and is computed directly (erf of both ends).
    """
    right, left = alpha >= 0, beta <= 0
    tail = right | left
    # Each branch gets inputs it is finite on (placeholders elsewhere): torch.where passes gradients to both.
    lo = torch.where(right, -beta, torch.where(left, alpha, torch.full_like(alpha, -1.0)))
    hi = torch.where(right, -alpha, torch.where(left, beta, torch.zeros_like(beta)))
    log_hi = torch.special.log_ndtr(hi)
    log_one_minus_rho = torch.log(-torch.expm1(torch.special.log_ndtr(lo) - log_hi))
    q = math.sqrt(2 / math.pi) / torch.special.erfcx(-hi / math.sqrt(2))
    # (phi(lo) - phi(hi)) / mass in the reflected frame; phi(lo) / phi(hi) = exp((hi - lo)(hi + lo) / 2)
    reflected = q * torch.expm1(0.5 * (hi - lo) * (hi + lo)) / torch.exp(log_one_minus_rho)
    tail_ratio = torch.where(right, -reflected, reflected)
    a_, b_ = torch.where(tail, -torch.ones_like(alpha), alpha), torch.where(tail, torch.ones_like(beta), beta)
    straddle_mass = torch.log(0.5 * (torch.erf(b_ / math.sqrt(2)) + torch.erf(-a_ / math.sqrt(2))))
    straddle_ratio = (
        (torch.exp(-0.5 * a_ * a_) - torch.exp(-0.5 * b_ * b_)) / math.sqrt(2 * math.pi) / straddle_mass.exp()
    )
    return torch.where(tail, log_hi + log_one_minus_rho, straddle_mass), torch.where(tail, tail_ratio, straddle_ratio)


def uniform_sphere(*, d: int, D: int | None = None, radius: float = 1.0, s: float = 0.0, seed: int = 0):
    """The uniform measure on the round sphere S^d (radius r) in R^{d+1}, smoothed by s, embedded in R^D."""
    return UniformSphere(d=d, D=D, radius=radius, s=s, seed=seed)


def uniform_torus(*, d: int, D: int | None = None, radius: float = 1.0, s: float = 0.0, seed: int = 0):
    """The uniform measure on the flat torus T^d (d circles of radius r) in R^{2d}, smoothed by s, in R^D."""
    return UniformTorus(d=d, D=D, radius=radius, s=s, seed=seed)


def uniform_cube(*, d: int, D: int | None = None, side: float = 1.0, s: float = 0.0, seed: int = 0):
    """The uniform measure on the cube [0, side]^d, smoothed by s, embedded in R^D."""
    return UniformCube(d=d, D=D, side=side, s=s, seed=seed)


class CurvedTorus(SmoothedManifold):
    """A curved flat torus that spans R^D: each of d circles is the Fourier curve

        phi_j(theta) = sum_{k <= F} c_k (cos k theta, sin k theta)    on its own F planes, c_k = alpha / k^decay,

    F = floor(D / 2d) frequencies per circle, rotated by a seeded Haar rotation R of R^D. |phi_j'(theta)| = r at every
    theta (alpha sets sum_k c_k^2 k^2 = r^2), so uniform theta is the uniform (Riemannian) measure and each circle
    has length 2 pi r in every D: the same intrinsic geometry for every D. With F = 1 (D = 2d) it is uniform_torus.
    No (d+1)- or 2d-dimensional subspace holds it, so the factorisation identity of the linear embeddings does not
    apply. Its extrinsic curvature is constant along each circle, `curvature` = sqrt(sum_k c_k^2 k^4) / r^2, and
    grows with F unless decay > 2.5 (decay = 2: like sqrt(F)); the theory's constants depend on it.

    The posterior of theta given X_t = x factorises over the circles (the tilt is additive over the blocks); each
    is computed by the trapezoid rule on `nodes` equispaced angles, spectrally accurate for this periodic analytic
    integrand while the nodes resolve the posterior's width (~ a(t) / r). `quadrature_error` measures it.

    Draws are paired across D: the curve's own frame (before R) orders its planes by frequency -- the planes of
    frequency 1 of every circle, then those of frequency 2, ... -- so a smaller D's coordinates are the first ones of
    a larger D's, and both the angles theta and the noise's coordinates in that frame are the same numbers in every
    D for one generator (the noise from a stream seeded by one draw, so the generator advances alike in every D).
    The flows of two D then share their noise along every plane they share, as the linear embeddings do.
    """

    name = "curved_torus"

    def __init__(
        self,
        *,
        d: int,
        D: int,
        radius: float = 1.0,
        decay: float = 2.0,
        s: float = 0.0,
        nodes: int = 4096,
        seed: int = 0,
    ):
        _count("d", d)
        _positive("radius", radius)
        _positive("decay", decay)
        _count("nodes", nodes, minimum=8)
        if not (isinstance(D, int) and not isinstance(D, bool) and D >= 2 * d):
            raise ValueError(f"D: curved_torus with d={d} needs an ambient dimension >= {2 * d} (got {D!r})")
        self.natural_dim, self.radius, self.nodes = D, float(radius), nodes
        # decay enters the recorded parameters only when set: specs stored before it existed name the same target
        extra = {} if decay == 2.0 else {"decay": decay}
        super().__init__(d=d, D=D, s=s, seed=seed, params=dict(d=d, radius=radius, **extra, nodes=nodes))
        F = D // (2 * d)
        k = np.arange(1, F + 1, dtype=np.float64)
        amp = k**-decay
        amp *= radius / math.sqrt((amp**2 * k**2).sum())
        self.frequencies, self.amplitudes = torch.from_numpy(k), torch.from_numpy(amp)
        rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
        self.rotation = torch.from_numpy(haar_orthogonal(D, rng))  # (D, D): the curve's frame to R^D
        # circle j's plane of frequency k (0-based) is the frame's coordinates 2(k d + j), 2(k d + j) + 1
        self._columns = [
            torch.tensor([2 * (k * d + j) + c for k in range(F) for c in (0, 1)], dtype=torch.long) for j in range(d)
        ]
        self.sq_radius = float((amp**2).sum())  # |phi_j(theta)|^2, the same at every theta
        self.curvature = math.sqrt(float((amp**2 * k**4).sum())) / radius**2  # |d^2 phi / ds^2| at every point
        self._grids: dict[tuple, Tensor] = {}

    def _planes(self, theta: Tensor) -> Tensor:
        """One circle's curve before the rotation: c_k (cos k theta, sin k theta) per plane, (..., 2F)."""
        k, amp = (v.to(theta.device, theta.dtype) for v in (self.frequencies, self.amplitudes))
        arg = theta[..., None] * k
        return torch.stack([amp * torch.cos(arg), amp * torch.sin(arg)], -1).flatten(-2)

    def curve(self, theta: Tensor) -> Tensor:
        """phi(theta) for angles (n, d): points (n, D)."""
        R = self.rotation.to(theta.device, theta.dtype)
        return sum(self._planes(theta[:, j]) @ R[:, cols.to(theta.device)].T for j, cols in enumerate(self._columns))

    def noise(self, n: int, *, generator: torch.Generator, device=None, dtype=None) -> Tensor:
        """n standard normal vectors in R^D, drawn coordinate by coordinate in the curve's frame (its first
        min(D, D') coordinates the same numbers in every D, see the class) and rotated into R^D."""
        device = torch.device(device) if device is not None else generator.device
        dtype = dtype or torch.get_default_dtype()
        seed = int(torch.randint(2**62, (1,), generator=generator, device=generator.device).item())
        g = torch.Generator(device).manual_seed(seed)
        frame = torch.randn(self.ambient_dim, n, generator=g, device=device, dtype=dtype)  # row i: coordinate i
        return frame.T @ self.rotation.to(device, dtype).T

    def angles(self, n: int, generator: torch.Generator, device=None) -> Tensor:
        """n uniform angles (n, d), float64: the latent points, the same numbers in every D for one generator."""
        return 2 * math.pi * torch.rand(n, self.intrinsic_dim, generator=generator, device=device, dtype=torch.float64)

    def frame(self, x: Tensor) -> Tensor:
        """Points of R^D in the curve's frame (R^T x): its planes ordered by frequency, shared by every D."""
        return x @ self.rotation.to(x.device, x.dtype)

    def _latent(self, n: int, generator: torch.Generator, device) -> Tensor:
        return self.curve(self.angles(n, generator, device))

    def _grid(self, like: Tensor, nodes: int) -> Tensor:
        """phi_j at the nodes, (d, nodes, D): circle j's curve with the others' angles contributing nothing."""
        key = (like.device, like.dtype, nodes)
        if key not in self._grids:
            block = self._planes(2 * math.pi * torch.arange(nodes, dtype=torch.float64) / nodes)  # (nodes, 2F)
            R = self.rotation
            self._grids[key] = torch.stack([block @ R[:, cols].T for cols in self._columns]).to(like.device, like.dtype)
        return self._grids[key]

    def _posterior(self, y: Tensor, b: Tensor, c: Tensor, nodes: int | None = None) -> tuple[Tensor, Tensor]:
        grid = self._grid(y, nodes or self.nodes)  # (d, N, D)
        scale = b / c  # (n|1, 1)
        L = -0.5 * self.intrinsic_dim * ((b * b).squeeze(1) * self.sq_radius / c.squeeze(1))
        mean = torch.zeros_like(y)
        for phi in grid:
            logits = scale * (y @ phi.T)  # (n, N)
            L = L + torch.logsumexp(logits, 1) - math.log(phi.shape[0])
            mean = mean + torch.softmax(logits, 1) @ phi
        return L, mean

    def quadrature_error(self, t, x: Tensor, interpolant) -> float:
        """max_x |V_nodes(t, x) - V_{2 nodes}(t, x)| / rms |V_nodes|: the trapezoid rule's error at these points
        (doubling the nodes of a spectrally convergent rule leaves an error far below this difference)."""
        a, b, c, db, a_da = self._abc(as_interpolant(interpolant), t, x)
        # natural(x) = x and embed(y) = y here: the curve carries its own rotation (natural_dim = D).
        coarse, fine = (
            self._velocity(x, self._posterior(x, b, c, n)[1], b, c, db, a_da) for n in (None, 2 * self.nodes)
        )
        return float((coarse - fine).norm(dim=1).max() / coarse.pow(2).sum(1).mean().sqrt())

    def support_second_moment(self) -> float:
        return self.intrinsic_dim * self.sq_radius

    def _support_mean(self) -> Tensor:
        return torch.zeros(self.natural_dim, dtype=torch.float64)

    def covariance(self) -> Tensor:
        """Cov(X1): each plane of each circle carries c_k^2 / 2 per coordinate, rotated, plus s^2 I."""
        F, d, D = self.frequencies.numel(), self.intrinsic_dim, self.ambient_dim
        var = torch.zeros(D, dtype=torch.float64)
        var[: 2 * d * F] = (self.amplitudes**2 / 2).repeat_interleave(2 * d)  # frequency-major frame
        return self.rotation @ torch.diag(var) @ self.rotation.T + self.s**2 * torch.eye(D, dtype=torch.float64)


def curved_torus(
    *, d: int, D: int, radius: float = 1.0, decay: float = 2.0, s: float = 0.0, nodes: int = 4096, seed: int = 0
):
    """The flat torus T^d as d Fourier curves of length 2 pi r spanning R^D (fields by quadrature), smoothed by s."""
    return CurvedTorus(d=d, D=D, radius=radius, decay=decay, s=s, nodes=nodes, seed=seed)
