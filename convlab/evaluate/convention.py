"""A model's time convention and interpolant, mapped onto convlab's: noise Z at t = 0, data X1 at t = 1,
X_t = a(t) Z + b(t) X1 (docs/concepts/theory.md §1).

Libraries differ. facebookresearch's flow_matching writes X_t = alpha_t X1 + sigma_t X0 with the noise X0 at t = 0
(its CondOTScheduler: alpha_t = t, sigma_t = 1 - t, convlab's 'linear'); score-based and some rectified-flow codes
put the noise at t = 1. A model is described by its schedule in its own time s -- alpha(s) (of the data), sigma(s)
(of the noise) and their derivatives -- and by where its noise sits. In convlab's time

    noise at 0:  t = s,      a(t) = sigma(t),      b(t) = alpha(t),      v(t, x) = u(t, x);
    noise at 1:  t = 1 - s,  a(t) = sigma(1 - t),  b(t) = alpha(1 - t),  v(t, x) = -u(1 - t, x),

where u is the model's velocity dX/ds. `check_convention` proves the mapping on the exact field before a model is
measured: the exact velocity written in the model's convention (from the model's own schedule) and pushed through
the adapter must be convlab's exact velocity to 1e-10, and the schedule's derivatives must be those of its values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from convlab.device import generator
from convlab.fields import NetField
from convlab.interpolants import Interpolant, as_interpolant

F64 = torch.float64


class ConventionError(ValueError):
    """The declared schedule or time convention is inconsistent: the mapping would misread the model."""


class ModelError(ValueError):
    """A model that cannot be measured: it raises, or returns the wrong shape, dtype, device or non-finite values."""


def _schedule_function(schedule: Any) -> Callable[[Tensor], tuple[Tensor, Tensor, Tensor, Tensor]]:
    """s -> (alpha, sigma, d_alpha, d_sigma) from a flow_matching-style scheduler (a callable returning an object
    with alpha_t, sigma_t, d_alpha_t, d_sigma_t) or a function returning those four."""

    def values(s: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        out = schedule(s)
        if all(hasattr(out, k) for k in ("alpha_t", "sigma_t", "d_alpha_t", "d_sigma_t")):
            out = (out.alpha_t, out.sigma_t, out.d_alpha_t, out.d_sigma_t)
        if not (isinstance(out, tuple | list) and len(out) == 4):
            raise ConventionError(
                "schedule: must return alpha, sigma, d_alpha, d_sigma (or an object with alpha_t, sigma_t, "
                f"d_alpha_t, d_sigma_t, as flow_matching's schedulers do); got {type(out).__name__}"
            )
        return tuple(torch.as_tensor(v, dtype=s.dtype, device=s.device).expand_as(s) for v in out)

    return values


class ModelInterpolant(Interpolant):
    """A model's schedule (alpha, sigma in its own time s, noise at s = `noise_at`) as a convlab interpolant."""

    name = "model"

    def __init__(self, schedule: Any, noise_at: int = 0):
        if noise_at not in (0, 1):
            raise ConventionError(f"noise_at: the model's noise sits at time 0 or 1 (got {noise_at!r})")
        self.schedule, self.noise_at = schedule, noise_at
        self._values = _schedule_function(schedule)

    def params(self) -> dict[str, Any]:
        return {"schedule": repr(self.schedule), "noise_at": self.noise_at}

    def _at(self, t, i: int):
        tensor = torch.as_tensor(t, dtype=t.dtype if isinstance(t, Tensor) else F64)
        s = tensor if self.noise_at == 0 else 1 - tensor
        value = self._values(s)[i]
        if i >= 2 and self.noise_at == 1:  # d/dt = -d/ds
            value = -value
        return value if isinstance(t, Tensor) else float(value)

    def a(self, t):
        return self._at(t, 1)

    def b(self, t):
        return self._at(t, 0)

    def da(self, t):
        return self._at(t, 3)

    def db(self, t):
        return self._at(t, 2)


def model_interpolant(schedule: Any = "linear", noise_at: int = 0) -> Interpolant:
    """The interpolant a model was trained with, in convlab's time: a convlab interpolant (a name such as 'linear',
    a spec, an Interpolant; these are in convlab's time, noise at 0), or the model's own schedule (a
    flow_matching scheduler such as CondOTScheduler(), or s -> (alpha, sigma, d_alpha, d_sigma)) with its noise
    at s = `noise_at`."""
    if isinstance(schedule, str | dict | Interpolant):
        if noise_at != 0:
            raise ConventionError(
                f"noise_at: convlab's interpolant {schedule!r} has its noise at t = 0; for a model with its noise at "
                "t = 1 give its schedule as alpha(s), sigma(s) (a scheduler or a function)"
            )
        return as_interpolant(schedule)
    if not callable(schedule):
        raise ConventionError(f"schedule: a convlab interpolant or a callable scheduler (got {schedule!r})")
    return ModelInterpolant(schedule, noise_at)


class ModelField(NetField):
    """A model's velocity u(s, x) in convlab's time, with the denoiser and score its interpolant implies
    (convlab.fields.NetField's identities). The model receives s as an (n,) tensor of x's dtype and device."""

    def __init__(self, model: Callable[[Tensor, Tensor], Tensor], interpolant: Interpolant, noise_at: int = 0):
        self.model, self.noise_at = model, noise_at
        super().__init__(self._velocity, interpolant, "velocity")

    def _velocity(self, t, x: Tensor) -> Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(x.shape[0])
        if self.noise_at == 0:
            return self.model(t, x)
        return -self.model(1 - t, x)


def check_model(model: Callable, D: int, *, device: torch.device, dtype: torch.dtype, name: str = "model") -> None:
    """Call the model on a seeded probe batch (7 points of R^D, times across [0, 1]) and refuse what cannot be
    measured, with the reason: it raises, or its output is not a tensor of shape (7, D) with x's dtype and device,
    or not finite."""
    g = generator(0, "evaluate.probe", device)
    x = torch.randn(7, D, generator=g, device=device, dtype=dtype)
    s = torch.linspace(0.05, 0.95, 7, device=device, dtype=dtype)
    where = f"{name}(s, x) with s of shape (7,) and x of shape (7, {D}), {dtype}, on {device}"
    try:
        with torch.no_grad():
            out = model(s, x)
    except Exception as err:  # a user's model: any failure is a refusal, with its own message
        raise ModelError(f"{where}: raised {type(err).__name__}: {err}") from err
    if not isinstance(out, Tensor):
        raise ModelError(f"{where}: returned {type(out).__name__}, not a tensor")
    if tuple(out.shape) != (7, D):
        raise ModelError(f"{where}: returned shape {tuple(out.shape)}, expected (7, {D})")
    if out.dtype != dtype or out.device.type != device.type:
        raise ModelError(
            f"{where}: returned {out.dtype} on {out.device}; expected {dtype} on {device} (move or cast the model, "
            "or pass the dtype and device it runs in)"
        )
    if not torch.isfinite(out).all():
        raise ModelError(f"{where}: returned non-finite values ({int((~torch.isfinite(out)).sum())} of {out.numel()})")


def _raw_schedule(schedule: Any) -> Callable[[Tensor], tuple[Tensor, Tensor, Tensor, Tensor]]:
    """The schedule as the model's library gives it: s -> (alpha, sigma, d_alpha, d_sigma) in the model's time."""
    if isinstance(schedule, str | dict | Interpolant):
        ip = as_interpolant(schedule)
        return lambda s: (ip.b(s), ip.a(s), ip.db(s), ip.da(s))
    return _schedule_function(schedule)


def check_convention(target, schedule: Any = "linear", noise_at: int = 0, *, tol: float = 1e-10) -> float:
    """Prove the mapping on the exact field before a model is measured (float64, 64 times in (0, 1), points X_t
    drawn from the target); returns the largest relative gap, or raises ConventionError naming the time:

    1. the schedule's derivatives are its values' (central differences, to 1e-6), and in convlab's time the noise
       dominates at t = 0 and the data at t = 1 (a model declared with its noise at the wrong end is refused);
    2. the interpolant's a, b at t are sigma, alpha at the model's time s(t), to `tol`;
    3. the exact velocity written in the model's own time and schedule,
       u*(s, y) = alpha'(s) D + sigma'(s) (y - alpha(s) D) / sigma(s), D = E[X1 | X_t = y],
       pushed through ModelField is convlab's exact velocity to `tol` (relative to its size): the time map, the
       sign of the velocity and the derivatives' mapping agree.
    """
    interpolant, raw = model_interpolant(schedule, noise_at), _raw_schedule(schedule)
    s = torch.linspace(0.02, 0.98, 64, dtype=F64)
    h = 1e-5
    for i, name in ((0, "alpha"), (1, "sigma")):
        fd = (raw(s + h)[i] - raw(s - h)[i]) / (2 * h)
        slope = raw(s)[i + 2]
        gap = (fd - slope).abs() / (1 + slope.abs())
        if not gap.max() < 1e-6:
            j = int(gap.argmax())
            raise ConventionError(
                f"schedule: d_{name} at s = {float(s[j]):.3f} is {float(slope[j]):.6g} but {name} changes at "
                f"{float(fd[j]):.6g} there"
            )
    ends = torch.tensor([0.0, 1.0], dtype=F64)
    a_end, b_end = interpolant.a(ends), interpolant.b(ends)
    if not (a_end[0] > b_end[0] and b_end[1] > a_end[1]):
        raise ConventionError(
            f"noise_at: with noise_at={noise_at} the noise would weigh {float(a_end[0]):.3g} against the data's "
            f"{float(b_end[0]):.3g} at convlab's t = 0, and {float(a_end[1]):.3g} against {float(b_end[1]):.3g} at "
            "t = 1: the noise must dominate at t = 0 and the data at t = 1 (is the model's noise at the other end?)"
        )
    t = s if noise_at == 0 else 1 - s
    alpha, sigma = (v[:, None] for v in raw(s)[:2])
    values = torch.stack([interpolant.a(t) - sigma[:, 0], interpolant.b(t) - alpha[:, 0]]).abs()
    if not values.max() <= tol:
        raise ConventionError(f"the interpolant's a, b differ from sigma, alpha by {float(values.max()):.3g}")
    g = generator(0, "evaluate.convention", "cpu")
    y = sigma * target.noise(64, generator=g, dtype=F64) + alpha * target.sample(64, generator=g, dtype=F64)

    def model(s_asked: Tensor, x: Tensor) -> Tensor:  # u*: the exact velocity in the model's time and schedule
        alpha, sigma, d_alpha, d_sigma = (v[:, None] for v in raw(s_asked))
        denoised = target.denoiser(s_asked if noise_at == 0 else 1 - s_asked, x, interpolant)  # E[X1 | X_t = x]
        return d_alpha * denoised + d_sigma * (x - alpha * denoised) / sigma

    pushed = ModelField(model, interpolant, noise_at).velocity(t, y)
    exact = target.velocity(t, y, interpolant)
    gap = (pushed - exact).norm(dim=1) / (1 + exact.norm(dim=1))
    gap = torch.where(torch.isfinite(gap), gap, torch.full_like(gap, math.inf))
    if not gap.max() <= tol:
        j = int(gap.argmax())
        raise ConventionError(
            f"the exact velocity through the adapter is off by {float(gap[j]):.3g} (relative) at t = {float(t[j]):.3f}"
            f" (s = {float(s[j]):.3f}): the schedule and the time convention disagree"
        )
    return float(gap.max())
