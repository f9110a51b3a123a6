"""Stage 4: the error budget of docs/concepts/theory.md §4, each term measured on held-out draws with shared noise."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from convlab.device import generator
from convlab.fields import ExactField
from convlab.metrics import coupled_rms, early_stopping_w2_bound, sampled_w2
from convlab.models.nets import Student
from convlab.pipeline.spec import PipelineSpec
from convlab.pipeline.student import random_pairs, semigroup_defect
from convlab.pipeline.teacher import Teacher
from convlab.solvers import integrate, reference_flow, time_grid


def rms(x: Tensor, y: Tensor) -> float:
    """sqrt(mean_i |x_i - y_i|^2) in float64."""
    return coupled_rms(x.double(), y.double()).rms


def converged(error: float, error_half: float, tol: float) -> bool:
    """Whether the second half of the training moved the error by less than tol of it (relative)."""
    return bool(abs(error - error_half) < tol * error)


def velocity_l2_error(field, target, *, T: float, n: int, generator: torch.Generator, device, dtype) -> float:
    """|| v - V ||_{L2} of a field with an interpolant (a teacher, an external model) against the target's exact
    velocity, t ~ U[0, T], x ~ p_t: X_t = a Z + b X1 from n fresh target draws, then the times, from `generator`."""
    ip, g = field.interpolant, generator
    x1 = target.sample(n, generator=g, device=device, dtype=dtype)
    z = target.noise(n, generator=g, device=device, dtype=dtype)
    t = T * torch.rand(n, generator=g, device=device, dtype=dtype)
    xt = ip.a(t)[:, None] * z + ip.b(t)[:, None] * x1
    with torch.no_grad():
        return rms(field.velocity(t, xt), target.velocity(t.double(), xt.double(), ip))


def measure(
    teacher: Teacher,
    student: Student,
    target,
    spec: PipelineSpec,
    device: torch.device,
    student_halfway: Student | None = None,
) -> dict[str, Any]:
    """Every error of the decomposition, separately (names ending _error are rms pathwise distances), and the
    convergence check of each trained network: its error after half its steps beside its final error."""
    ev, cc, ip = spec.eval, spec.characteristics, teacher.field.interpolant
    dtype = getattr(torch, spec.dtype)
    g = generator(spec.seed, "eval.noise", device)
    z = target.noise(ev.n_coupled, generator=g, device=device, dtype=dtype)
    exact = ExactField(target, ip)
    out: dict[str, Any] = {}
    with torch.no_grad():
        flow_true = reference_flow(exact, z.double(), T=spec.T, reference=spec.reference)
        if teacher.kind == "oracle":
            flow_teacher = flow_true
            out["velocity_l2_error"] = 0.0
        else:
            flow_teacher = reference_flow(teacher.field, z, T=spec.T, reference=spec.reference)
            out["velocity_l2_error"] = velocity_l2_error(
                teacher.field,
                target,
                T=spec.T,
                n=ev.n_velocity,
                generator=generator(spec.seed, "eval.velocity", device),
                device=device,
                dtype=dtype,
            )
        euler = integrate(teacher.field, z, time_grid(cc.K, T=spec.T, kind=cc.grid), cc.solver, keep_trajectory=True)
        euler_1 = integrate(teacher.field, z, time_grid(1, T=spec.T), cc.solver).x
        flow_error = rms(flow_teacher, flow_true)  # Flow[v] vs Flow[V]: what the velocity error does
        if teacher.halfway is not None:
            half = rms(reference_flow(teacher.halfway, z, T=spec.T, reference=spec.reference), flow_true)
            out["teacher_flow_error_half"] = half
            out["teacher_converged"] = converged(flow_error, half, ev.converged_tol)
        one_step = student(0.0, spec.T, z)
        e2e = coupled_rms(one_step.double(), flow_true)
        if student_halfway is not None:
            half = rms(student_halfway(0.0, spec.T, z), flow_true)
            out["student_e2e_error_half"] = half
            out["student_converged"] = converged(e2e.rms, half, ev.converged_tol)
        out.update(
            teacher_solver_error=rms(euler.x, flow_teacher),  # Solver_K[v] vs Flow[v]: the discretisation error
            teacher_flow_error=flow_error,
            teacher_e2e_error=rms(euler.x, flow_true),
            teacher_one_step_e2e_error=rms(euler_1, flow_true),
            fitting_error=rms(one_step, euler.x),  # g(0, T, z) vs Euler_K[v](z)
            student_e2e_error=e2e.rms,
            student_e2e_ci_low=e2e.ci_low,
            student_e2e_ci_high=e2e.ci_high,
            student_e2e_median=e2e.median,
            student_e2e_q90=e2e.q90,
            student_e2e_q99=e2e.q99,
            student_e2e_max=e2e.max,
            student_e2e_top1_share=e2e.top1_share,
        )
        idx = random_pairs(ev.n_coupled, cc.K, 3, g, device)
        rows = torch.arange(ev.n_coupled, device=device)
        times = euler.grid.to(device, dtype)
        s, t, u = times[idx[:, 0]], times[idx[:, 1]], times[idx[:, 2]]
        out["semigroup_defect"] = (
            semigroup_defect(student, s, t, u, euler.trajectory[idx[:, 0], rows])
            .double()
            .pow(2)
            .sum(1)
            .mean()
            .sqrt()
            .item()
        )
        z_w2 = target.noise(ev.n_w2, generator=g, device=device, dtype=dtype)
        w2 = sampled_w2(
            student(0.0, spec.T, z_w2),
            target,
            generator=generator(spec.seed, "eval.w2", torch.device("cpu")),
            repeats=ev.floor_repeats,
            margin=ev.resolve_margin,
        )
    out.update(
        student_w2=w2.w2,
        w2_floor=w2.floor,
        w2_floor_sd=w2.floor_sd,
        w2_resolved=w2.resolved,
        early_stop_w2_ub=early_stopping_w2_bound(target, ip, spec.T),
    )
    return out
