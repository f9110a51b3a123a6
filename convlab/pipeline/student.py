"""Stages 2 and 3: Euler characteristics of the teacher, and the one-step student fitted to them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from convlab.device import generator, stream_seed
from convlab.models.nets import Student, TwoTimeNet, n_parameters
from convlab.models.training import train
from convlab.pipeline.teacher import Teacher
from convlab.record import RunFailed
from convlab.solvers import integrate, time_grid

if TYPE_CHECKING:
    from convlab.runs.characteristic import CharacteristicRun


@dataclass
class Characteristics:
    """Trajectories Z_0 = z, ..., Z_K on the grid t_0..t_K: (K + 1, m, D), and the grid (K + 1,)."""

    paths: Tensor
    times: Tensor
    nfe: int


def characteristics(teacher: Teacher, cfg: CharacteristicRun, z: Tensor) -> Characteristics:
    """Push z through K steps of cfg.characteristics.solver on the teacher, keeping the whole trajectory."""
    cc = cfg.characteristics
    grid = time_grid(cc.K, T=cfg.T, kind=cc.grid)
    with torch.no_grad():
        sol = integrate(teacher.field, z, grid, cc.solver, keep_trajectory=True)
    if not torch.isfinite(sol.trajectory).all():
        raise RunFailed("non-finite characteristics (the teacher's Euler steps blew up)")
    return Characteristics(sol.trajectory, grid.to(z.device, z.dtype), sol.nfe)


def random_pairs(B: int, K: int, size: int, g: torch.Generator, device) -> Tensor:
    """(B, size) sorted distinct grid indices in 0..K, uniform over index subsets (pairs k < l, triples ...)."""
    return torch.rand(B, K + 1, generator=g, device=device).argsort(1)[:, :size].sort(1).values


def semigroup_defect(student: Student, paths: Tensor, times: Tensor, idx: Tensor, rows: Tensor) -> Tensor:
    """g(s, u, x) - g(t, u, g(s, t, x)) for grid triples idx = (k < j < l) and x = paths[k, rows], (B, D)."""
    s, t, u = times[idx[:, 0]], times[idx[:, 1]], times[idx[:, 2]]
    x = paths[idx[:, 0], rows]
    return student(s, u, x) - student(t, u, student(s, t, x))


def fit_student(
    teacher: Teacher, chars: Characteristics, cfg: CharacteristicRun, device: torch.device
) -> tuple[Student, dict[str, Any]]:
    """Train g on all pairs k < l of the trajectories plus semigroup_weight times the semigroup penalty."""
    sc, ip = cfg.student, teacher.field.interpolant
    dtype, (K1, m, D) = chars.paths.dtype, chars.paths.shape
    if sc.init == "teacher":
        net = TwoTimeNet.from_teacher(teacher.net)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(stream_seed(cfg.seed, "student.init"))
            net = TwoTimeNet(D, sc.net)
    student = Student(net.to(device, dtype), ip, sc.form)
    g = generator(cfg.seed, "student.batches", device)
    B, lam = sc.optim.batch_size, sc.semigroup_weight
    paths, times = chars.paths, chars.times

    def losses(gen: torch.Generator) -> tuple[Tensor, Tensor]:
        rows = torch.randint(m, (B,), generator=gen, device=device)
        kl = random_pairs(B, K1 - 1, 2, gen, device)
        pred = student(times[kl[:, 0]], times[kl[:, 1]], paths[kl[:, 0], rows])
        fit = (pred - paths[kl[:, 1], rows]).pow(2).sum(1).mean()
        if lam == 0.0:
            return fit, torch.zeros((), device=device, dtype=dtype)
        rows3 = torch.randint(m, (B,), generator=gen, device=device)
        defect = semigroup_defect(student, paths, times, random_pairs(B, K1 - 1, 3, gen, device), rows3)
        return fit, defect.pow(2).sum(1).mean()

    def loss_fn(step: int) -> Tensor:
        fit, penalty = losses(g)
        return fit + lam * penalty

    log = train(student, loss_fn, sc.optim)
    with torch.no_grad():
        fit, penalty = losses(generator(cfg.seed, "student.final_loss", device))
    return student, {
        "student_params": n_parameters(student),
        "student_final_loss": log.final_loss,
        "student_fit_loss": fit.item(),
        "student_semigroup_loss": penalty.item(),
        "student_loss_history": log.history,
    }
