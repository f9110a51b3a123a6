"""Is a trained network a result? The checks that turn a diverged or collapsed network into a failed run, before it
is measured or shared.

A finite loss is not enough. At too large a learning rate a velocity network can settle on a field that does not
depend on x at all (its units saturated: its "Euler error" is then only the quadrature error of its time
dependence, round-off in the trial that found it, and every rate fitted on it is nonsense), or blow up to a loss
of 1e35 that is still a float. Each check compares the network with a scale it must beat, on draws from the run's
own stream:

- the loss rose by orders of magnitude: the last window of training is LOSS_RISE times its best window;
- the loss is far above a network that learned nothing: LOSS_BLOWUP times the zero field's loss E|a' Z + b' X1|^2
  for a teacher, the identity map's E|Z_l - Z_k|^2 for a student;
- the network collapsed: the variance over x of its output fell below COLLAPSE times its variance at
  initialisation (same inputs) *and* below COLLAPSE times the variance of what it should output (the exact
  field for a teacher, the characteristics' increments for a student). Measured, not assumed: collapsed teachers
  give exactly 0, networks at initialisation or after a few steps keep their own variance (ratio ~1), trained ones
  build more (ratio >> 1). Neither reference alone will do: an untrained network's output is ~1e-5 of a field's
  variance, and some exact fields are flat (a standard Gaussian under follmer has V = 0: flat is then right).

The thresholds sit orders of magnitude away from healthy training, so a check that fires is a failure, never a
judgement call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

LOSS_RISE = 100.0
LOSS_BLOWUP = 10.0
COLLAPSE = 1e-3
HEALTH_TIMES = 8  # times on [0, T] of the teacher's variance check
HEALTH_POINTS = 512  # points per time


def loss_problem(
    history: Sequence[float], zero_loss: float | None, what: str, reference: str = "the zero field"
) -> str | None:
    """Why a training history (mean loss per window) is not a trained network, or None: a final loss LOSS_RISE
    times its best, or LOSS_BLOWUP times `zero_loss`, the loss of `reference` (a network that learned nothing)."""
    if not history:
        return None
    final, best = history[-1], min(history)
    if final > LOSS_RISE * best:
        return f"{what} diverged: its loss rose from {best:.3g} to {final:.3g} during training"
    if zero_loss is not None and zero_loss > 0 and final > LOSS_BLOWUP * zero_loss:
        return (
            f"{what} diverged: its final loss {final:.3g} is {final / zero_loss:.3g} times the loss of {reference} "
            f"({zero_loss:.3g})"
        )
    return None


def variance(x: Tensor) -> float:
    """The total variance of points (n, D) over the points: the trace of their covariance (float64)."""
    return float(x.detach().double().var(0).sum())


def total_variance(outputs: Callable[..., Tensor], inputs: Sequence[tuple]) -> float:
    """sum_j Var outputs(*inputs_j) over the points of each input."""
    with torch.no_grad():
        return sum(variance(outputs(*args)) for args in inputs)


def variance_ratio(trained: Callable[..., Tensor], initial: Callable[..., Tensor], inputs: Sequence[tuple]) -> float:
    """sum_j Var trained(*inputs_j) / sum_j Var initial(*inputs_j): the x-dependence training built (> 1) or
    destroyed (-> 0); inf where the initial network is flat too."""
    return ratio(total_variance(trained, inputs), total_variance(initial, inputs))


def ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.inf


def collapse_problem(ratio: float, what: str, truth_ratio: float | None = None) -> str | None:
    """A collapse: the output's variance over x below COLLAPSE times the initial network's (`ratio`) and the
    truth's (`truth_ratio`: trained over what the network should output, None where it is not known): a network
    fitted to a field that is itself flat in x is right to be flat."""
    if ratio < COLLAPSE and (truth_ratio is None or truth_ratio < COLLAPSE):
        truth = f" and {truth_ratio:.3g} times what it should output" if truth_ratio is not None else ""
        return (
            f"{what} collapsed: its output no longer depends on x (its variance over x is {ratio:.3g} times its "
            f"variance at initialisation{truth}, below {COLLAPSE:g})"
        )
    return None


def teacher_inputs(target, interpolant, T: float, generator: torch.Generator, dtype) -> list[tuple[Tensor, Tensor]]:
    """(t, x) at HEALTH_TIMES midpoint times t_j of [0, T], HEALTH_POINTS x ~ p_{t_j} each (fresh target draws)."""
    device, out = generator.device, []
    for j in range(HEALTH_TIMES):
        t = T * (j + 0.5) / HEALTH_TIMES
        x1 = target.sample(HEALTH_POINTS, generator=generator, device=device, dtype=torch.float64)
        z = target.noise(HEALTH_POINTS, generator=generator, device=device, dtype=torch.float64)
        x = float(interpolant.a(t)) * z + float(interpolant.b(t)) * x1
        out.append((torch.full((HEALTH_POINTS,), t, dtype=dtype, device=device), x.to(dtype)))
    return out


def zero_field_loss(ip, x1: Tensor, T: float, loss: str, generator: torch.Generator, draws: int = 4) -> float:
    """E|a'(t) Z + b'(t) X1|^2 ('velocity') or E|X1|^2 ('denoiser'), t ~ U[0, T], over the training points: the loss
    of a network that predicts nothing, the scale its trained loss must be far below."""
    if loss == "denoiser":
        return float(x1.double().pow(2).sum(1).mean())
    total = 0.0
    x1 = x1.double()
    for _ in range(draws):
        z = torch.randn(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)
        t = T * torch.rand(x1.shape[0], generator=generator, device=x1.device, dtype=x1.dtype)
        total += float((ip.da(t)[:, None] * z + ip.db(t)[:, None] * x1).pow(2).sum(1).mean()) / draws
    return total
