"""Any flow model against the exact truth: a velocity model v(t, x) or a one-step generator g(z), trained by any
library, measured on an analytic target whose velocity, flow and samples are exact.

For a velocity model (`evaluate_velocity`):
- the velocity L2 error against the exact field over t (a curve at `times`, and its mean over t ~ U[0, T]);
- the flow error: the model's flow from noise z (a reference solve) against the exact flow from the same z;
- per solver (Euler, Heun, ...) and step count K: the solver error against the model's own reference flow (the
  discretisation error, whose rate in K is the solver's order for a smooth field) and the end-to-end error against
  the exact flow; the rate is fitted per solver with a t-interval over independent noise batches, and the solver
  error counts only where it exceeds `margin` times the reference's own error (the float32 rounding floor);
- the sampled W2 of the model's samples to the target, beside the target's own noise floor at that size (sample
  against sample W2 cannot see a solver's 1/K at realistic sizes: the floor says where it stops seeing).

For a one-step generator (`evaluate_generator`): its pathwise error against the exact flow of the same noise (the
map it approximates, under the declared interpolant) and its sampled W2 with the floor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from convlab.device import generator, resolve_device
from convlab.evaluate.convention import ModelField, check_convention, check_model, model_interpolant
from convlab.fields import ExactField
from convlab.metrics import CoupledError, RateFit, SampledW2, coupled_rms, fit_rate, sampled_w2
from convlab.pipeline.measure import rms
from convlab.solvers import Reference, as_solver, integrate, reference_flow, time_grid

TOL = 0.25  # the tolerance of a solver's rate verdict against its declared order
REFERENCE = Reference(K=512)  # rk4 on the quadratic grid: far below the solvers it judges (reference_error says)


@dataclass
class VelocityEvaluation:
    """What evaluate_velocity measured (errors are rms distances in the target's units)."""

    velocity: pd.DataFrame  # t, velocity_l2_error, velocity_l2_norm (rms |V|), relative
    velocity_l2_error: float  # over t ~ U[0, T], X_t ~ p_t
    flow_error: CoupledError  # Flow[v](z) vs Flow[V](z), with a CI over the noise draws
    solvers: pd.DataFrame  # solver, K, batch, solver_error, e2e_error, resolved
    rates: dict[str, RateFit]  # solver -> solver_error against K, expected -order
    sampled_w2: SampledW2  # the model's flow samples against the target
    reference_error: float  # the model's reference solve against one with half its steps: the floor of solver_error
    convention_gap: float  # check_convention's largest relative gap (<= 1e-10)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"velocity L2 error {self.velocity_l2_error:.4g} (worst t: {self.velocity.velocity_l2_error.max():.4g} at "
            f"t = {self.velocity.t[self.velocity.velocity_l2_error.idxmax()]:.3g})",
            f"flow error {self.flow_error.rms:.4g} [{self.flow_error.ci_low:.4g}, {self.flow_error.ci_high:.4g}]",
        ]
        lines += [f"{name}: solver error against K: {fit}" for name, fit in self.rates.items()]
        return "\n".join(lines + [_w2_line(self.sampled_w2)] + [f"warning: {w}" for w in self.warnings])


@dataclass
class GeneratorEvaluation:
    """What evaluate_generator measured."""

    e2e_error: CoupledError  # g(z) vs the exact flow of z
    sampled_w2: SampledW2

    def summary(self) -> str:
        e, w2 = self.e2e_error, self.sampled_w2
        return (
            f"end-to-end error {e.rms:.4g} [{e.ci_low:.4g}, {e.ci_high:.4g}] (median {e.median:.4g}, max {e.max:.4g})"
            f"\n{_w2_line(w2)}"
        )


def _w2_line(w2: SampledW2) -> str:
    state = "resolved" if w2.resolved else "unresolved: the floor, not the model, dominates"
    return f"sampled W2 {w2.w2:.4g} (target's own floor {w2.floor:.4g} at n = {w2.n}: {state})"


def evaluate_velocity(
    model: Callable[[Tensor, Tensor], Tensor],
    target,
    *,
    schedule: Any = "linear",
    noise_at: int = 0,
    T: float = 1.0,
    n: int = 2000,
    times: Sequence[float] | None = None,
    Ks: Sequence[int] = (8, 16, 32, 64, 128, 256),
    solvers: Sequence[str] = ("euler", "heun"),
    batches: int = 4,
    n_w2: int = 1000,
    floor_repeats: int = 3,
    margin: float = 2.0,
    reference: Reference = REFERENCE,
    seed: int = 0,
    device: str | torch.device = "auto",
    dtype: torch.dtype = torch.float32,
) -> VelocityEvaluation:
    """Measure a velocity model u(s, x) -- any callable or nn.Module taking (s, x), s an (n,) tensor of the model's
    own time, x (n, D) -- against `target`'s exact field. `schedule` and `noise_at` declare how the model was
    trained (convlab.evaluate.convention): 'linear' for flow_matching's CondOTScheduler, or the scheduler itself.
    The model is called in `dtype` on `device` (auto: CUDA when present); nothing is trained or written."""
    if not (0 < T <= 1 and n >= 2 * batches and batches >= 2 and min(Ks) >= 1):
        raise ValueError(f"T in (0, 1], n >= 2 batches, batches >= 2, Ks >= 1 (got T={T}, n={n}, batches={batches})")
    device = resolve_device(device)
    interpolant = model_interpolant(schedule, noise_at)
    gap = check_convention(target, schedule, noise_at)
    check_model(model, target.ambient_dim, device=device, dtype=dtype)
    field_model = ModelField(model, interpolant, noise_at)
    exact = ExactField(target, interpolant)
    g = generator(seed, "evaluate.noise", device)
    z = target.noise(n, generator=g, device=device, dtype=dtype)
    warnings: list[str] = []
    with torch.no_grad():
        velocity = _velocity_curve(field_model, target, interpolant, T, n, times, seed, device, dtype)
        flow_true = reference_flow(exact, z.double(), T=T, reference=reference)
        flow_model = reference_flow(field_model, z, T=T, reference=reference)
        half = Reference(reference.solver, max(reference.K // 2, 1), reference.grid)
        reference_error = rms(reference_flow(field_model, z, T=T, reference=half), flow_model)
        rows = []
        for name in solvers:
            for K in Ks:
                x = integrate(field_model, z, time_grid(K, T=T), name).x
                for b, part in enumerate(torch.arange(n, device=device).chunk(batches)):
                    err = rms(x[part], flow_model[part])
                    rows.append(
                        dict(
                            solver=name,
                            K=K,
                            batch=b,
                            solver_error=err,
                            e2e_error=rms(x[part], flow_true[part]),
                            resolved=err > margin * reference_error,
                        )
                    )
        table = pd.DataFrame(rows)
        rates = {}
        for name, part in table.groupby("solver", sort=False):
            order = as_solver(name).order
            rates[name] = fit_rate(
                part.K, part.solver_error, seed=part.batch, resolved=part.resolved, expected=-order, tol=TOL
            )
        w2 = sampled_w2(flow_model[:n_w2], target, generator=seed, repeats=floor_repeats, margin=margin)
        l2, norm = _velocity_l2(field_model, target, interpolant, T, n, seed, device, dtype)
    if l2 > 0.5 * norm:  # a model declared in the wrong convention is typically off by the field's own size
        warnings.append(
            f"the model's velocity error ({l2:.3g}) is more than half the exact field's size ({norm:.3g}): check that "
            "the schedule and noise_at are those it was trained with"
        )
    return VelocityEvaluation(
        velocity, l2, coupled_rms(flow_model.double(), flow_true), table, rates, w2, reference_error, gap, warnings
    )


def _draws(target, interpolant, t: Tensor, seed: int, stream: str, device, dtype) -> Tensor:
    """X_t = a(t) Z + b(t) X1 from fresh target draws, one per time."""
    g = generator(seed, stream, device)
    x1 = target.sample(t.shape[0], generator=g, device=device, dtype=dtype)
    z = target.noise(t.shape[0], generator=g, device=device, dtype=dtype)
    return interpolant.a(t)[:, None] * z + interpolant.b(t)[:, None] * x1


def _velocity_curve(field_model, target, interpolant, T, n, times, seed, device, dtype) -> pd.DataFrame:
    """Velocity L2 error at each time (midpoints of 16 cells of [0, T] unless given), on n fresh X_t each."""
    times = [T * (i + 0.5) / 16 for i in range(16)] if times is None else list(times)
    rows = []
    for i, t in enumerate(times):
        tt = torch.full((n,), float(t), device=device, dtype=dtype)
        x = _draws(target, interpolant, tt, seed, f"evaluate.velocity.{i}", device, dtype)
        exact = target.velocity(tt.double(), x.double(), interpolant)
        err = rms(field_model.velocity(tt, x), exact)
        norm = float(exact.pow(2).sum(1).mean().sqrt())
        rows.append(dict(t=float(t), velocity_l2_error=err, velocity_l2_norm=norm, relative=err / max(norm, 1e-300)))
    return pd.DataFrame(rows)


def _velocity_l2(field_model, target, interpolant, T, n, seed, device, dtype) -> tuple[float, float]:
    """(|| v - V ||_{L2}, || V ||_{L2}), t ~ U[0, T], X_t ~ p_t (the error is the pipeline's velocity_l2_error)."""
    t = T * torch.rand(n, generator=generator(seed, "evaluate.velocity.t", device), device=device, dtype=dtype)
    x = _draws(target, interpolant, t, seed, "evaluate.velocity.l2", device, dtype)
    exact = target.velocity(t.double(), x.double(), interpolant)
    return rms(field_model.velocity(t, x), exact), float(exact.pow(2).sum(1).mean().sqrt())


def evaluate_generator(
    generator_fn: Callable[[Tensor], Tensor],
    target,
    *,
    schedule: Any = "linear",
    noise_at: int = 0,
    T: float = 1.0,
    n: int = 2000,
    n_w2: int = 1000,
    floor_repeats: int = 3,
    margin: float = 2.0,
    reference: Reference = REFERENCE,
    seed: int = 0,
    device: str | torch.device = "auto",
    dtype: torch.dtype = torch.float32,
) -> GeneratorEvaluation:
    """Measure a one-step generator g(z) (noise (n, D) -> samples (n, D)) against the exact flow of the same noise
    under the interpolant it distils (declared as for evaluate_velocity) and by its sampled W2 with the floor."""
    device = resolve_device(device)
    interpolant = model_interpolant(schedule, noise_at)
    check_convention(target, schedule, noise_at)
    check_model(lambda s, x: generator_fn(x), target.ambient_dim, device=device, dtype=dtype, name="generator")
    g = generator(seed, "evaluate.noise", device)
    z = target.noise(n, generator=g, device=device, dtype=dtype)
    with torch.no_grad():
        flow_true = reference_flow(ExactField(target, interpolant), z.double(), T=T, reference=reference)
        x = generator_fn(z)
        e2e = coupled_rms(x.double(), flow_true)
        w2 = sampled_w2(x[:n_w2], target, generator=seed, repeats=floor_repeats, margin=margin)
    return GeneratorEvaluation(e2e, w2)
