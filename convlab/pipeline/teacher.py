"""Stage 1: the teacher, a velocity network trained by velocity matching on n samples (or the oracle)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from convlab.device import generator, stream_seed
from convlab.fields import ExactField, NetField
from convlab.interpolants import Interpolant
from convlab.models.nets import VelocityNet, n_parameters
from convlab.models.stack import Member, at_snapshot, stack_key, train_checked
from convlab.models.training import Divergence
from convlab.pipeline.health import (
    collapse_problem,
    loss_problem,
    ratio,
    teacher_inputs,
    total_variance,
    zero_field_loss,
)
from convlab.pipeline.spec import PipelineSpec
from convlab.record import RunFailed
from convlab.targets import GaussianMixture

# What a failed teacher's run records (its losses and the health check's numbers), beside its stage and reason.
HEALTH_INFO = ("teacher_final_loss", "teacher_zero_field_loss", "teacher_variance_ratio")


@dataclass
class Teacher:
    """The field the characteristics follow, with its network (None for the oracle and kernel teachers) and
    training record."""

    field: NetField | ExactField
    net: VelocityNet | None
    info: dict[str, Any]
    kind: str = "trained"
    halfway: NetField | None = None  # the same network trained for half the steps (the convergence check)


def velocity_matching_loss(
    field: NetField, x1: torch.Tensor, z: torch.Tensor, t: torch.Tensor, loss: str
) -> torch.Tensor:
    """E |V(t, X_t) - (a' Z + b' X1)|^2 ('velocity'), or its unweighted denoising form E |D(t, X_t) - X1|^2
    ('denoiser'): both are minimised by the exact field at every t; they weight the times differently."""
    ip = field.interpolant
    a, b, da, db = (f(t)[:, None] for f in (ip.a, ip.b, ip.da, ip.db))
    xt = a * z + b * x1
    if loss == "velocity":
        residual = field.velocity(t, xt) - (da * z + db * x1)
    else:
        residual = field.denoiser(t, xt) - x1
    return residual.pow(2).sum(1).mean()


def interpolant_key(spec: PipelineSpec) -> str | tuple:
    """The run's interpolant spec in a hashable form (a name, or a dict's sorted items)."""
    return spec.interpolant if isinstance(spec.interpolant, str) else tuple(sorted(spec.interpolant.items()))


def teacher_stack_key(spec: PipelineSpec, D: int) -> tuple | None:
    """What teachers trained together must share (None for the oracle and kernel teachers, which train nothing):
    the ambient dimension D, the network's shape and dtype, the loss and its interpolant, and stack_key of the
    optimiser."""
    tc = spec.teacher
    if tc.kind != "trained":
        return None
    ip = interpolant_key(spec)
    return ("teacher", D, spec.dtype, tc.net, ip, tc.parametrization, tc.loss, stack_key(tc.optim))


def build_teachers(specs: list[PipelineSpec], targets: list, ips: list[Interpolant], ctxs: list[ArtefactStore]) -> list:
    """Per run, its Teacher or the Divergence that ended its training: the oracle, the kernel teacher, or a
    network trained on n = spec.teacher.n target samples drawn once.

    Trained teachers are the runs' shared 'teacher' artefact: one found in the cache is loaded; the missing ones
    (one per distinct key) are claimed -- their on-disk locks held, so that another process that needs one waits
    and loads it instead of training it again, whatever study it runs -- then trained together, in stacks of equal
    teacher_stack_key, and stored. A diverged or collapsed training (pipeline.health) is stored as a failure marker
    ({'failed': reason, ...}), never as a network, so that no run repeats it (`--retry-failed` clears it).
    """
    out: list = [None] * len(specs)
    payloads: dict[str, dict] = {}
    missing: dict[str, int] = {}  # artefact key -> the run that trains it
    fields: dict[int, NetField] = {}
    for i, (spec, target, ip, ctx) in enumerate(zip(specs, targets, ips, ctxs)):
        if spec.teacher.kind == "oracle":
            info = {"teacher_params": 0, "time_teacher_train_s": 0.0, "teacher_cached": False}
            out[i] = Teacher(ExactField(target, ip), None, info, "oracle")
        elif spec.teacher.kind == "kernel":
            out[i] = kernel_teacher(spec, target, ip, ctx.device)
        else:
            fields[i] = untrained_teacher(spec, target, ip, ctx.device)
            key = ctx.artefact_key("teacher")
            if key not in payloads and key not in missing:
                if (found := ctx.lookup("teacher")) is not None:
                    payloads[key] = found
                else:
                    missing[key] = i
    with contextlib.ExitStack() as held:
        for key in sorted(missing):  # one order for every process: two claimers never wait on each other
            held.enter_context(ctxs[missing[key]].claim("teacher"))
            if (found := ctxs[missing[key]].lookup("teacher")) is not None:  # made while we waited for the lock
                payloads[key] = found
                del missing[key]
        stacks: dict[tuple, list[int]] = {}
        for i in missing.values():
            stacks.setdefault(teacher_stack_key(specs[i], targets[i].ambient_dim), []).append(i)
        for runs in stacks.values():
            trained = _train_teachers([specs[i] for i in runs], [targets[i] for i in runs], [fields[i] for i in runs])
            for i, payload in zip(runs, trained):
                payloads[ctxs[i].artefact_key("teacher")] = ctxs[i].store("teacher", payload)
    for i, field in fields.items():
        payload = payloads[ctxs[i].artefact_key("teacher")]
        if "failed" in payload:  # diverged or collapsed: the run fails in its teacher stage, with its losses
            out[i] = RunFailed(
                payload["failed"], {k: v for k, v in payload.get("info", {}).items() if k in HEALTH_INFO}
            )
            continue
        made_here = i in missing.values()
        if not made_here:
            field.net.load_state_dict(payload["state_dict"])  # what training here would give: same seed, same streams
            field.net.eval()
        half = at_snapshot(field.net, payload.get("halfway_state_dict"))
        halfway_field = None if half is None else NetField(half, field.interpolant, field.parametrization)
        out[i] = Teacher(field, field.net, {**payload["info"], "teacher_cached": not made_here}, halfway=halfway_field)
    return out


def build_teacher(spec: PipelineSpec, target, ip: Interpolant, device: torch.device) -> Teacher:
    """One teacher outside a sweep (nothing shared): build_teachers for one run; raises its Divergence."""
    (teacher,) = build_teachers([spec], [target], [ip], [Unshared(device)])
    if isinstance(teacher, Divergence | RunFailed):
        raise teacher
    return teacher


class ArtefactStore(Protocol):
    """Where build_teachers finds, claims and keeps trained teachers: one per run, keyed by what the teacher depends
    on. A sweep's run context is one (convlab.runs.kind.RunContext: on disk, shared across processes and studies);
    Unshared is the store of a run alone."""

    device: torch.device

    def artefact_key(self, name: str) -> str: ...

    def lookup(self, name: str) -> Any | None: ...

    def claim(self, name: str) -> contextlib.AbstractContextManager: ...

    def store(self, name: str, value: Any) -> Any: ...


@dataclass
class Unshared:
    """The ArtefactStore of a run that shares nothing: nothing found, nothing kept."""

    device: torch.device

    def artefact_key(self, name: str) -> str:
        return name

    def lookup(self, name: str) -> None:
        return None

    def claim(self, name: str) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def store(self, name: str, value: Any) -> Any:
        return value


def untrained_teacher(spec: PipelineSpec, target, ip: Interpolant, device: torch.device) -> NetField:
    with torch.random.fork_rng(devices=[]):  # network initialisation draws from the global CPU generator
        torch.manual_seed(stream_seed(spec.seed, "teacher.init"))
        net = VelocityNet(target.ambient_dim, spec.teacher.net)
    return NetField(net.to(device, getattr(torch, spec.dtype)), ip, spec.teacher.parametrization)


def _train_teachers(specs: list[PipelineSpec], targets: list, fields: list[NetField]) -> list[dict[str, Any]]:
    """Train the fields' networks in place, as one stack; per run the payload the cache keeps."""
    members, data, heldouts = [], [], []
    for spec, target, field in zip(specs, targets, fields):
        tc, dtype, device = spec.teacher, getattr(torch, spec.dtype), next(field.net.parameters()).device
        x1_train, heldout = split_heldout(spec, training_sample(spec, target, device, dtype))
        data.append(x1_train)
        heldouts.append(heldout)
        members.append(Member(field.net, tc.optim, teacher_draws(spec, x1_train, device), heldout))
    loss = teacher_loss(fields[0].interpolant, fields[0].parametrization, specs[0].teacher.loss)

    def fresh(i: int, optim) -> Member:
        net = untrained_teacher(specs[i], targets[i], fields[i].interpolant, data[i].device).net
        return Member(net, optim, teacher_draws(specs[i], data[i], data[i].device), heldouts[i])

    payloads = []
    logs, halves = train_checked(members, loss, fresh)
    for spec, target, field, x1_train, log, half in zip(specs, targets, fields, data, logs, halves):
        if isinstance(log, Divergence):
            payloads.append({"failed": str(log), "failed_step": log.step, "failed_loss": log.loss})
            continue
        info = {
            "teacher_params": n_parameters(field.net),
            "teacher_final_loss": log.final_loss,
            "time_teacher_train_s": log.seconds,
            "teacher_loss_history": log.history,
            **selection_info("teacher", log),
        }
        problem = _health(spec, target, field, x1_train, log, info)
        if problem is not None:  # a failure marker, never a network: no run measures or reuses it
            payloads.append({"failed": problem, "info": info})
            continue
        info.update(_generalisation(spec, target, field, x1_train, x1_train.device))
        state = {k: v.detach().cpu().clone() for k, v in field.net.state_dict().items()}
        half = None if half is None else {k: v.cpu() for k, v in half.items()}
        payloads.append({"state_dict": state, "halfway_state_dict": half, "info": info})
    return payloads


def _health(spec: PipelineSpec, target, field: NetField, x1_train, log, info: dict) -> str | None:
    """Why the trained teacher is not a result (pipeline.health), or None; records the zero field's loss and the
    network's variance ratio (trained over initial) in `info`."""
    ip, device, dtype = field.interpolant, x1_train.device, x1_train.dtype
    g = generator(spec.seed, "teacher.health", device)
    zero = zero_field_loss(ip, x1_train[:HEALTH_TRAINING_POINTS], spec.T, spec.teacher.loss, g)
    initial = untrained_teacher(spec, target, ip, device).net  # the same network before training (its own seed)
    inputs = teacher_inputs(target, ip, spec.T, g, dtype)
    trained = total_variance(field.net, inputs)
    exact = ExactField(target, ip)  # what the network should output, in its parametrization
    truth = exact.denoiser if field.parametrization == "denoiser" else exact.velocity
    truth_ratio = ratio(trained, total_variance(lambda t, x: truth(t.double(), x.double()), inputs))
    init_ratio = ratio(trained, total_variance(initial, inputs))
    info.update(teacher_zero_field_loss=zero, teacher_variance_ratio=init_ratio)
    return loss_problem(log.history, zero, "the teacher") or collapse_problem(init_ratio, "the teacher", truth_ratio)


HEALTH_TRAINING_POINTS = 4096  # of the training sample, for the zero field's loss


def training_sample(spec: PipelineSpec, target, device, dtype) -> torch.Tensor:
    """The n training points, drawn once from the 'teacher.data' stream: of the target, or (teacher.clean) of its
    clean manifold Unif(M), the points a smoothed target adds its noise to."""
    g = generator(spec.seed, "teacher.data", device)
    draw = target.sample_support if spec.teacher.clean else target.sample
    return draw(spec.teacher.n, generator=g, device=device, dtype=dtype)


# The held-out loss is evaluated at fixed (Z, t) draws, the same at every check, so that two checkpoints are compared
# on the same noise: at least this many (x1, z, t) triples, each held-out point drawn as often as that takes.
HELDOUT_DRAWS = 4096


def split_heldout(spec: PipelineSpec, x1: torch.Tensor) -> tuple[torch.Tensor, tuple | None]:
    """(the points training draws from, the held-out loss's inputs or None): with teacher.selection 'heldout', the
    last heldout_fraction of the n points are held out -- the estimator is then defined by the n points alone, its
    checkpoint the one of lowest loss on them (models.stack.Member.heldout)."""
    tc = spec.teacher
    if tc.selection != "heldout":
        return x1, None
    n_val = max(1, round(tc.heldout_fraction * tc.n))
    fit, val = x1[: tc.n - n_val], x1[tc.n - n_val :]
    g = generator(spec.seed, "teacher.heldout", x1.device)
    val = val.repeat(-(-HELDOUT_DRAWS // n_val), 1)
    z = torch.randn(val.shape, generator=g, device=val.device, dtype=val.dtype)
    t = spec.T * torch.rand(val.shape[0], generator=g, device=val.device, dtype=val.dtype)
    return fit, (val, z, t)


def selection_info(prefix: str, log) -> dict[str, Any]:
    """<prefix>_best_step, _best_at_end and _heldout_loss of a network chosen by held-out loss (none otherwise)."""
    if log.best_step is None:
        return {}
    return {
        f"{prefix}_best_step": log.best_step,
        f"{prefix}_best_at_end": log.best_step == log.heldout_history[-1][0],
        f"{prefix}_heldout_loss": log.best_heldout_loss,
    }


def teacher_loss(ip: Interpolant, parametrization: str, loss: str) -> Callable:
    """The stack's loss: velocity_matching_loss of a network `model` (the member's forward) on a batch (x1, z, t)."""

    def member_loss(model, inputs: tuple) -> torch.Tensor:
        x1, z, t = inputs
        return velocity_matching_loss(NetField(model, ip, parametrization), x1, z, t, loss)

    return member_loss


def teacher_draws(spec: PipelineSpec, x1_train: torch.Tensor, device) -> Callable[[int], tuple]:
    """The member's batch for a step: training points, noise and times from its own 'teacher.batches' stream."""
    tc, T = spec.teacher, spec.T
    g = generator(spec.seed, "teacher.batches", device)
    B, (n, D), dtype = tc.optim.batch_size, x1_train.shape, x1_train.dtype

    def draw(step: int) -> tuple:
        x1 = x1_train[torch.randint(n, (B,), generator=g, device=device)]
        z = torch.randn(B, D, generator=g, device=device, dtype=dtype)
        t = T * torch.rand(B, generator=g, device=device, dtype=dtype)
        return x1, z, t

    return draw


def _generalisation(spec: PipelineSpec, target, field: NetField, x1_train, device) -> dict[str, float]:
    """The training objective on the training set and on fresh target draws (same size, many (t, Z) draws):
    their gap shows whether the teacher is in the statistical regime or still under-trained."""
    g = generator(spec.seed, "teacher.generalisation", device)
    x1_fresh = target.sample(x1_train.shape[0], generator=g, device=device, dtype=x1_train.dtype)
    out = {}
    with torch.no_grad():
        for name, x1 in (("teacher_train_loss", x1_train), ("teacher_val_loss", x1_fresh)):
            total = 0.0
            for _ in range(8):
                z = torch.randn(x1.shape, generator=g, device=device, dtype=x1.dtype)
                t = spec.T * torch.rand(x1.shape[0], generator=g, device=device, dtype=x1.dtype)
                total += velocity_matching_loss(field, x1, z, t, spec.teacher.loss).item() / 8
            out[name] = total
    return out


# -- the kernel teacher ------------------------------------------------------------------------------------------------

# Bandwidths tried, as multiples of the median nearest-neighbour distance of the fitting split: wide enough
# that the held-out optimum is interior for every target tried (the record says whether it was).
BANDWIDTH_FACTORS = np.geomspace(1 / 16, 16, 17)
CV_FRACTION = 0.2  # of the n samples held out to choose the bandwidth
CV_DRAWS = 4  # (t, Z) draws per held-out sample


def kernel_teacher(spec: PipelineSpec, target, ip: Interpolant, device: torch.device) -> Teacher:
    """The exact velocity of (1/n) sum_i N(x_i, h^2 I) over the n training samples.

    Among all fields, it minimises the velocity-matching loss for that measure, so it is the teacher
    velocity matching would converge to with unlimited capacity and optimisation on smoothed data: its
    error is statistical only. h is fixed (teacher.bandwidth) or chosen on a geometric grid by the
    velocity-matching loss on a held-out fifth of the sample (same (t, Z) draws for every h), then used
    with all n samples.
    """
    start = time.perf_counter()
    tc, dtype, T = spec.teacher, getattr(torch, spec.dtype), spec.T
    x1 = training_sample(spec, target, device, dtype)
    info: dict[str, Any] = {"teacher_params": 0}
    h = tc.bandwidth
    if h is None:
        n_val = max(1, int(round(CV_FRACTION * tc.n)))
        if tc.n - n_val < 2:
            raise ValueError(f"teacher.n: a kernel teacher with a cross-validated bandwidth needs n >= 3 (got {tc.n})")
        fit, val = x1[n_val:], x1[:n_val]
        scale = _median_nn_distance(fit)
        hs = (scale * BANDWIDTH_FACTORS).tolist()
        g = generator(spec.seed, "teacher.cv", device)
        val = val.repeat(CV_DRAWS, 1)
        z = target.noise(val.shape[0], generator=g, device=device, dtype=dtype)
        t = T * torch.rand(val.shape[0], generator=g, device=device, dtype=dtype)
        losses = []
        with torch.no_grad():
            for h_try in hs:
                field = ExactField(_smoothed_sample(fit, h_try), ip)
                losses.append(velocity_matching_loss(field, val, z, t, tc.loss).item())
        best = int(np.nanargmin(losses))
        h = hs[best]
        info.update(teacher_cv_bandwidths=hs, teacher_cv_losses=losses, teacher_cv_interior=0 < best < len(hs) - 1)
    field = ExactField(_smoothed_sample(x1, h), ip)
    info.update(teacher_bandwidth=h, time_teacher_train_s=time.perf_counter() - start, teacher_cached=False)
    info.update(_generalisation(spec, target, field, x1, device))
    return Teacher(field, None, info, "kernel")


def _smoothed_sample(x: torch.Tensor, h: float):
    n, D = x.shape
    return GaussianMixture(
        np.full(n, 1.0 / n),
        x.detach().cpu().double().numpy(),
        np.full(n, h * h),
        name="kernel_estimate",
        params={"n": n, "h": h},
    )


NN_BLOCK_ELEMENTS = 2**22  # distance-matrix entries per block: 32 MiB in float64, whatever n is


def _median_nn_distance(x: torch.Tensor) -> float:
    """Median distance from each sample to its nearest other sample (float64, row blocks of bounded size)."""
    x = x.double()
    sq = (x * x).sum(1)
    rows = max(1, NN_BLOCK_ELEMENTS // x.shape[0])
    nearest = []
    for i in range(0, x.shape[0], rows):
        d2 = sq[i : i + rows, None] + sq[None, :] - 2 * x[i : i + rows] @ x.T
        d2[torch.arange(d2.shape[0]), torch.arange(i, i + d2.shape[0])] = float("inf")
        nearest.append(d2.min(1).values.clamp_min(0).sqrt())
    return torch.cat(nearest).median().item()
