"""Stages 2 and 3: Euler characteristics of the teacher, and the one-step student fitted to them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from convlab.device import generator, stream_seed
from convlab.interpolants import column
from convlab.models.nets import Student, TwoTimeNet, n_parameters
from convlab.models.stack import Member, at_snapshot, stack_key, train_checked
from convlab.models.training import Divergence
from convlab.pipeline.health import collapse_problem, loss_problem, ratio, total_variance, variance
from convlab.pipeline.spec import PipelineSpec
from convlab.pipeline.teacher import HELDOUT_DRAWS, Teacher, interpolant_key, selection_info
from convlab.record import RunFailed
from convlab.solvers import integrate, time_grid


@dataclass
class Characteristics:
    """Trajectories Z_0 = z, ..., Z_K on the grid t_0..t_K: (K + 1, m, D), and the grid (K + 1,)."""

    paths: Tensor
    times: Tensor
    nfe: int


def characteristics(teacher: Teacher, spec: PipelineSpec, z: Tensor) -> Characteristics:
    """Push z through K steps of spec.characteristics.solver on the teacher, keeping the whole trajectory."""
    cc = spec.characteristics
    grid = time_grid(cc.K, T=spec.T, kind=cc.grid)
    with torch.no_grad():
        sol = integrate(teacher.field, z, grid, cc.solver, keep_trajectory=True)
    if not torch.isfinite(sol.trajectory).all():
        raise RunFailed("non-finite characteristics (the teacher's Euler steps blew up)")
    return Characteristics(sol.trajectory, grid.to(z.device, z.dtype), sol.nfe)


def random_pairs(B: int, K: int, size: int, g: torch.Generator, device) -> Tensor:
    """(B, size) sorted distinct grid indices in 0..K, uniform over index subsets (pairs k < l, triples ...)."""
    return torch.rand(B, K + 1, generator=g, device=device).argsort(1)[:, :size].sort(1).values


def semigroup_defect(student, s: Tensor, t: Tensor, u: Tensor, x: Tensor) -> Tensor:
    """g(s, u, x) - g(t, u, g(s, t, x)) for times s < t < u, (B,) each, and points x, (B, D)."""
    return student(s, u, x) - student(t, u, student(s, t, x))


def student_stack_key(spec: PipelineSpec, D: int) -> tuple:
    """What students trained together must share: the ambient dimension D, the network's shape, form and dtype, its
    interpolant, whether the loss has the semigroup term (its weight may differ), and stack_key of the optimiser."""
    sc = spec.student
    penalty = sc.semigroup_weight > 0
    return ("student", D, spec.dtype, sc.net, sc.form, interpolant_key(spec), penalty, stack_key(sc.optim))


def student_loss(model, inputs: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:
    """The pair-fitting term and the semigroup term of one batch (see student_draws), both mean squared norms."""
    s, t, x, y, lam = inputs[:5]
    fit = (model(s, t, x) - y).pow(2).sum(1).mean()
    if len(inputs) == 5:
        return fit, torch.zeros_like(fit)
    s3, t3, u3, x3 = inputs[5:]
    return fit, semigroup_defect(model, s3, t3, u3, x3).pow(2).sum(1).mean()


def student_draws(
    chars: Characteristics, spec: PipelineSpec, gen: torch.Generator, B: int | None = None
) -> Callable[[int], tuple]:
    """A batch of the student's loss from `gen` (B rows, default its optimiser's batch size): grid pairs k < l of
    random trajectories (s, t, x = Z_k, y = Z_l), the semigroup weight, and (with a positive weight) grid triples
    with their start points."""
    sc, (K1, m, _) = spec.student, chars.paths.shape
    B = B or sc.optim.batch_size
    paths, times, device = chars.paths, chars.times, chars.paths.device
    lam = torch.tensor(sc.semigroup_weight, dtype=paths.dtype, device=device)

    def draw(step: int) -> tuple:
        rows = torch.randint(m, (B,), generator=gen, device=device)
        kl = random_pairs(B, K1 - 1, 2, gen, device)
        pair = (times[kl[:, 0]], times[kl[:, 1]], paths[kl[:, 0], rows], paths[kl[:, 1], rows], lam)
        if sc.semigroup_weight == 0.0:
            return pair
        rows3 = torch.randint(m, (B,), generator=gen, device=device)
        idx = random_pairs(B, K1 - 1, 3, gen, device)
        return (*pair, times[idx[:, 0]], times[idx[:, 1]], times[idx[:, 2]], paths[idx[:, 0], rows3])

    return draw


def fit_students(teachers: list[Teacher], chars: list[Characteristics], specs: list[PipelineSpec]) -> list:
    """Per run, (student, info, halfway), or the Divergence that ended its training or the RunFailed of a student that
    diverged or collapsed (pipeline.health): g trained on all pairs k < l of
    its trajectories plus semigroup_weight times the semigroup penalty, the runs' students as one stack (they must
    share student_stack_key). halfway is the student trained for half the steps (None below 2 steps): the
    convergence check compares the two."""

    splits = [split_heldout(ch, spec) for ch, spec in zip(chars, specs)]

    def build(i: int, optim) -> Member:
        teacher, spec, (fit, heldout) = teachers[i], specs[i], splits[i]
        sc, device, dtype = spec.student, fit.paths.device, fit.paths.dtype
        if sc.init == "teacher":
            net = TwoTimeNet.from_teacher(teacher.net)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(stream_seed(spec.seed, "student.init"))
                net = TwoTimeNet(fit.paths.shape[2], sc.net)
        student = Student(net.to(device, dtype), teacher.field.interpolant, sc.form)
        return Member(
            student, optim, student_draws(fit, spec, generator(spec.seed, "student.batches", device)), heldout
        )

    members = [build(i, spec.student.optim) for i, spec in enumerate(specs)]
    students = [m.module for m in members]

    def loss(model, inputs):
        fit, penalty = student_loss(model, inputs)
        return fit + inputs[4] * penalty

    out = []
    if not members:
        return out
    logs, halves = train_checked(members, loss, build)
    for i, (student, ch, spec, log, half) in enumerate(zip(students, chars, specs, logs, halves)):
        if isinstance(log, Divergence):
            out.append(log)
            continue
        final = student_draws(ch, spec, generator(spec.seed, "student.final_loss", ch.paths.device))(0)
        with torch.no_grad():
            fit, penalty = student_loss(student, final)
            identity_loss = float((final[3] - final[2]).double().pow(2).sum(1).mean())  # g(s, t, x) = x
        initial = build(i, spec.student.optim).module.net  # the student before training
        inputs, ends = _health_inputs(ch)
        trained = total_variance(student.net, inputs)
        init_ratio = ratio(trained, total_variance(initial, inputs))
        truth = sum(variance(_increment(student, *args, y)) for args, y in zip(inputs, ends))  # what f should be
        truth_ratio = ratio(trained, truth)
        info = {
            "student_params": n_parameters(student),
            "time_student_train_s": log.seconds,
            "student_final_loss": log.final_loss,
            "student_fit_loss": fit.item(),
            "student_semigroup_loss": penalty.item(),
            "student_loss_history": log.history,
            "student_variance_ratio": init_ratio,
            **selection_info("student", log),
        }
        problem = loss_problem(log.history, identity_loss, "the student", "the identity map") or collapse_problem(
            init_ratio, "the student", truth_ratio
        )
        if problem is not None:
            out.append(RunFailed(problem, {k: info[k] for k in ("student_final_loss", "student_variance_ratio")}))
            continue
        out.append((student, info, at_snapshot(student, half)))
    return out


def split_heldout(ch: Characteristics, spec: PipelineSpec) -> tuple[Characteristics, tuple | None]:
    """(the characteristics training draws from, the held-out loss's inputs or None): with student.selection
    'heldout', the last heldout_fraction of the m trajectories are held out and a fixed set of HELDOUT_DRAWS of
    their pairs (and triples) is drawn once from the 'student.heldout' stream."""
    sc, m = spec.student, ch.paths.shape[1]
    if sc.selection != "heldout":
        return ch, None
    m_val = max(1, round(sc.heldout_fraction * m))
    fit = Characteristics(ch.paths[:, : m - m_val], ch.times, ch.nfe)
    val = Characteristics(ch.paths[:, m - m_val :], ch.times, ch.nfe)
    g = generator(spec.seed, "student.heldout", ch.paths.device)
    return fit, student_draws(val, spec, g, HELDOUT_DRAWS)(0)


HEALTH_PATHS = 2048  # characteristics on which the student's variance over x is checked


def _health_inputs(ch: Characteristics) -> tuple[list[tuple], list[Tensor]]:
    """(s, t, x) of the student's variance check, from up to 8 grid times t_k to T with x = Z_k on HEALTH_PATHS
    paths, and the end points Z_K the student maps them to."""
    K, times = ch.paths.shape[0] - 1, ch.times
    inputs, ends = [], []
    for k in sorted({round(j * (K - 1) / 7) for j in range(8)} if K > 1 else {0}):
        x = ch.paths[k, :HEALTH_PATHS]
        inputs.append((times[k].expand(x.shape[0]), times[-1].expand(x.shape[0]), x))
        ends.append(ch.paths[-1, :HEALTH_PATHS])
    return inputs, ends


def _increment(student: Student, s: Tensor, t: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """The f with g(s, t, x) = y in the student's form: what its network should output to map x to y."""
    s, t, x, y = s.double(), t.double(), x.double(), y.double()
    if student.form == "euler":
        return (y - x) / column(t - s, x)
    ip = student.interpolant
    r = column(ip.a(t) / ip.a(s), x)
    return (y - r * x) / (column(ip.b(t), x) - r * column(ip.b(s), x))


def fit_student(teacher: Teacher, chars: Characteristics, spec: PipelineSpec) -> tuple[Student, dict[str, Any]]:
    """One student (fit_students of one run); raises its Divergence."""
    (out,) = fit_students([teacher], [chars], [spec])
    if isinstance(out, Divergence | RunFailed):
        raise out
    return out[:2]
