"""The 'characteristic' run kind: the characteristic-generator pipeline (docs/concepts/theory.md §4) on one target,
teacher -> Euler characteristics -> one-step student -> the measured error budget (convlab.pipeline).

Runs that differ only in K, the student or the evaluation share one trained teacher (an on-disk artefact: the
scheduler trains it once, before the runs that need it). One seed drives every draw through named streams, so
the same config on the same device gives the same numbers.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import torch
from pydantic import Field, model_validator

from convlab.interpolants import as_interpolant
from convlab.pipeline import (
    CharacteristicsSpec,
    EvalSpec,
    PipelineSpec,
    StudentSpec,
    TeacherSpec,
    build_teachers,
    characteristics,
    fit_students,
    measure,
    student_stack_key,
    teacher_stack_key,
)
from convlab.record import RunFailed
from convlab.runs import shared
from convlab.runs.config import (
    DType,
    GridName,
    InterpolantSpec,
    NetConfig,
    OptimConfig,
    PositiveInt,
    ReferenceConfig,
    RunConfig,
    Strict,
    core,
)
from convlab.runs.kind import Artefact, Failure, Metric, RunContext, RunKind, stage
from convlab.runs.memory import DTYPE_BYTES, F64, Need, field, grid, mlp, points, target_of, w2
from convlab.targets import SmoothedManifold, ambient_dim, make_target

# Which weights a trained network keeps: its last, or ('heldout') those of its lowest loss on a held-out fraction of
# its data (of the n points for a teacher, of the m characteristics for a student), checked every 50 steps: an
# estimator defined by its data alone, where "the last step" is a budget (models.stack.Member.heldout).
Selection = Annotated[
    Literal["last", "heldout"],
    Field(description="keep the last weights, or those of the lowest loss on held-out data (checked every 50 steps)"),
]
HeldoutFraction = Annotated[
    float, Field(gt=0.0, lt=1.0, description="the fraction of the data held out (selection: heldout)")
]


class TeacherConfig(Strict):
    """The velocity network (or the oracle: the target's exact velocity, or the kernel teacher)."""

    # trained: a network fitted by velocity matching; oracle: the exact velocity; kernel: the exact velocity of
    # the training sample smoothed by N(0, h^2 I), i.e. the minimiser of the velocity-matching loss over all
    # fields for that measure -- a teacher with a statistical error and no optimisation error.
    CORE: ClassVar[type] = TeacherSpec
    kind: Literal["trained", "oracle", "kernel"] = TeacherSpec.kind
    n: Annotated[PositiveInt, Field(description="the sample size of the theory: one training set drawn once")] = (
        TeacherSpec.n
    )
    bandwidth: Annotated[float, Field(gt=0.0, description="kernel only; null: chosen by held-out loss")] | None = (
        TeacherSpec.bandwidth
    )
    clean: Annotated[
        bool,
        Field(
            description="train on clean manifold points, Unif(M), not on draws of the smoothed target (manifold "
            "targets); a kernel teacher with bandwidth = target.s is then the D-independent control"
        ),
    ] = TeacherSpec.clean
    parametrization: Literal["velocity", "denoiser"] = TeacherSpec.parametrization
    # velocity matching, or its unweighted denoising form
    loss: Literal["velocity", "denoiser"] = TeacherSpec.loss
    net: NetConfig = NetConfig()
    optim: OptimConfig = OptimConfig()
    selection: Selection = TeacherSpec.selection
    heldout_fraction: HeldoutFraction = TeacherSpec.heldout_fraction


class CharacteristicsConfig(Strict):
    """m noise draws pushed through K steps of a first-order solver on the teacher."""

    CORE: ClassVar[type] = CharacteristicsSpec
    solver: Literal["euler", "exp_euler"] = CharacteristicsSpec.solver
    K: Annotated[int, Field(ge=2, description="solver steps of the characteristics")] = CharacteristicsSpec.K
    m: Annotated[PositiveInt, Field(description="noise draws (trajectories)")] = CharacteristicsSpec.m
    grid: GridName = CharacteristicsSpec.grid


class StudentConfig(Strict):
    """g(s, t, x) with g(s, s, x) = x: form 'euler' x + (t - s) f(s, t, x), or 'exp_euler' the exponential-integrator
    form (a_t / a_s) x + (b_t - a_t b_s / a_s) f(s, t, x)."""

    CORE: ClassVar[type] = StudentSpec
    form: Literal["euler", "exp_euler"] = StudentSpec.form
    init: Literal["teacher", "random"] = StudentSpec.init
    semigroup_weight: Annotated[float, Field(ge=0.0)] = StudentSpec.semigroup_weight
    net: NetConfig = NetConfig()
    optim: OptimConfig = OptimConfig()
    selection: Selection = StudentSpec.selection
    heldout_fraction: HeldoutFraction = StudentSpec.heldout_fraction


class EvalConfig(Strict):
    """Held-out measurement sizes."""

    CORE: ClassVar[type] = EvalSpec
    n_coupled: Annotated[PositiveInt, Field(description="noise draws for the coupled (pathwise) errors")] = (
        EvalSpec.n_coupled
    )
    n_w2: Annotated[int, Field(ge=2, description="sample size of the sampled W2 and of its noise floor")] = (
        EvalSpec.n_w2
    )
    n_velocity: Annotated[PositiveInt, Field(description="(t, x) draws for the velocity L2 error")] = (
        EvalSpec.n_velocity
    )
    floor_repeats: Annotated[int, Field(ge=1)] = EvalSpec.floor_repeats
    resolve_margin: Annotated[float, Field(ge=1.0)] = EvalSpec.resolve_margin
    converged_tol: Annotated[
        float,
        Field(
            gt=0.0,
            description="a trained network counts as converged when its error moved by less than this fraction "
            "between half and all of its steps",
        ),
    ] = EvalSpec.converged_tol


class EvalReference(ReferenceConfig):
    """The reference flows of the exact and the teacher's velocity: 1024 rk4 steps (the teacher is float32)."""

    K: Annotated[int, Field(ge=16, description="rk4 steps")] = PipelineSpec.reference.K


class CharacteristicRun(RunConfig):
    """One run of the characteristic-generator pipeline (docs/concepts/theory.md §4)."""

    CORE: ClassVar[type] = PipelineSpec
    kind: Literal["characteristic"] = "characteristic"
    interpolant: InterpolantSpec = PipelineSpec.interpolant
    T: Annotated[float, Field(gt=0.0, le=1.0, description="early-stopping time")] = PipelineSpec.T
    dtype: Annotated[DType, Field(description="of the networks and everything they touch")] = PipelineSpec.dtype
    teacher: TeacherConfig = TeacherConfig()
    characteristics: CharacteristicsConfig = CharacteristicsConfig()
    student: StudentConfig = StudentConfig()
    eval: EvalConfig = EvalConfig()
    reference: EvalReference = EvalReference()

    @model_validator(mode="after")
    def _consistent(self) -> CharacteristicRun:
        if self.teacher.selection == "heldout" and self.teacher.kind != "trained":
            raise ValueError(
                f"teacher.selection: only a trained teacher has checkpoints to choose (teacher.kind is "
                f"{self.teacher.kind!r}); a kernel teacher chooses its bandwidth on held-out data already"
            )
        if self.student.selection == "heldout" and self.student.optim.steps == 0:
            raise ValueError("student.selection: a student trained for no steps has no checkpoints to choose")
        if self.teacher.bandwidth is not None and self.teacher.kind != "kernel":
            raise ValueError(
                f"teacher.bandwidth: only a kernel teacher has a bandwidth (teacher.kind is {self.teacher.kind!r})"
            )
        if self.teacher.clean and not isinstance(make_target(self.target), SmoothedManifold):
            raise ValueError(
                "teacher.clean: only a manifold target (uniform_sphere, uniform_torus, uniform_cube, curved_torus) has "
                f"clean points apart from its smoothing (target is {self.target.get('name')!r})"
            )
        if self.student.init == "teacher":
            if self.teacher.kind != "trained":
                raise ValueError(
                    f"student.init: 'teacher' needs a trained teacher (teacher.kind is {self.teacher.kind!r}); "
                    "use 'random'"
                )
            if self.student.net != self.teacher.net:
                raise ValueError("student.init: 'teacher' needs student.net equal to teacher.net")
            wanted = {"velocity": "euler", "denoiser": "exp_euler"}[self.teacher.parametrization]
            if self.student.form != wanted:
                raise ValueError(
                    f"student.form: initialising from a {self.teacher.parametrization}-parametrised teacher makes "
                    f"g one {wanted} step, so the form must be {wanted!r} (got {self.student.form!r})"
                )
        uses_denoiser = (
            "exp_euler" in (self.student.form, self.characteristics.solver)
            or self.teacher.parametrization == "denoiser"
        )
        if uses_denoiser and self.T >= 1.0:
            raise ValueError("T: the denoiser form divides by a(t), which vanishes at t = 1; use T < 1 (got 1.0)")
        return self


def run_characteristic(cfgs: list[CharacteristicRun], ctxs: list[RunContext]) -> list:
    """Teacher, characteristics, student, error budget, for runs of one batch_key: the teachers to train (one per
    distinct teacher) as one stack, then the students as one stack; the other stages run by run. A divergence or
    a non-finite stage fails its run there; the other runs go on."""
    targets = [make_target(c.target) for c in cfgs]
    ips = [as_interpolant(c.interpolant) for c in cfgs]
    specs = [core(c) for c in cfgs]  # what the pipeline reads: its own dataclasses, not the study's config
    out: list = [None] * len(cfgs)

    def live() -> list[int]:
        return [i for i, o in enumerate(out) if o is None]

    with stage(ctxs, "teacher", timed=True):
        teachers = build_teachers(specs, targets, ips, ctxs)
    for i, t in enumerate(teachers):
        if isinstance(t, Failure):
            out[i] = t
    chars: dict[int, object] = {}
    for i in live():
        spec, ctx = specs[i], ctxs[i]
        with ctx.stage("characteristics", timed=True):
            z = targets[i].noise(
                spec.characteristics.m,
                generator=ctx.rng("characteristics.noise"),
                device=ctx.device,
                dtype=getattr(torch, spec.dtype),
            )
            try:
                chars[i] = characteristics(teachers[i], spec, z)
            except RunFailed as err:
                out[i] = err
    runs = live()
    with stage([ctxs[i] for i in runs], "student", timed=True):
        students = dict(
            zip(runs, fit_students([teachers[i] for i in runs], [chars[i] for i in runs], [specs[i] for i in runs]))
        )
    for i in runs:
        if isinstance(students[i], Failure):
            out[i] = students[i]
    for i in live():
        ctx = ctxs[i]
        student, student_info, student_halfway = students[i]
        with ctx.stage("eval", timed=True):
            try:
                metrics = measure(teachers[i], student, targets[i], specs[i], ctx.device, student_halfway)
            except RunFailed as err:
                out[i] = err
                continue
        out[i] = {**metrics, **teachers[i].info, **student_info, "characteristics_nfe": chars[i].nfe}
    return out


def batch_key(cfg: CharacteristicRun) -> tuple:
    """Runs whose teachers (if trained) and students can be trained as one stack each."""
    D, spec = ambient_dim(cfg.target), core(cfg)
    return (teacher_stack_key(spec, D), student_stack_key(spec, D))


def _error(name: str, label: str, doc: str, when: str | None = None) -> Metric:
    return Metric(name, label, "monte_carlo", doc, unit="x", when=when)


def _record(name: str, label: str, doc: str, when: str | None = None, unit: str = "") -> Metric:
    return Metric(name, label, "record", doc, unit=unit, when=when)


def memory(cfg: CharacteristicRun) -> list[Need]:
    """The characteristics' trajectories ((K + 1) x m x D), the evaluation's flows and draws (float64) with the exact
    field's temporaries, the time grids, the exact W2, the training sample, and the networks in training."""
    target = target_of(cfg.target)
    D, w = target.ambient_dim, DTYPE_BYTES[cfg.dtype]
    cc, ev, tc, sc = cfg.characteristics, cfg.eval, cfg.teacher, cfg.student
    features = 2 * tc.net.time_features + 1
    needs = [
        points(("characteristics.K", "characteristics.m"), cc.m, D, w, cc.K + 1, "the characteristics' trajectories"),
        grid("characteristics.K", cc.K),
        grid("reference.K", cfg.reference.K),
        points(("eval.n_coupled",), ev.n_coupled, D, F64, 12, "the flows of the coupled errors"),
        field("eval.n_coupled", target, ev.n_coupled),
        points(("eval.n_velocity",), ev.n_velocity, D, F64, 4, "the draws of the velocity error"),
        field("eval.n_velocity", target, ev.n_velocity),
        w2("eval.n_w2", ev.n_w2),
        points(("teacher.n",), tc.n, D, w, 4, "the training sample"),
    ]
    if tc.kind == "trained":
        needs += mlp("teacher", tc.net, D + features, D, tc.optim.batch_size, w)
    # the student sees two times, and with the semigroup penalty three more evaluations per row
    batch = sc.optim.batch_size * (4 if sc.semigroup_weight > 0 else 1)
    return needs + mlp("student", sc.net, D + 2 * features, D, batch, w)


KERNEL, TRAINED = "teacher.kind = kernel", "teacher.kind = trained"


def _selection(net: str, data: str) -> tuple[Metric, ...]:
    """The held-out selection's record of a network (<net>.selection = heldout)."""
    when = f"{net}.selection = heldout"
    return (
        _record(f"{net}_best_step", f"{net} best step", "the step whose weights were kept: lowest held-out loss", when),
        Metric(
            f"{net}_best_at_end",
            f"{net} best at the last check",
            "flag",
            "the held-out loss was lowest at the last check: the budget may have stopped it before its minimum "
            "(more steps could do better)",
            when=when,
        ),
        _record(f"{net}_heldout_loss", f"{net} held-out loss", f"its loss on the held-out fraction {data}", when),
    )


KIND = RunKind(
    name="characteristic",
    config=CharacteristicRun,
    metrics=(
        _error(
            "velocity_l2_error",
            r"velocity error $\|v - V\|_{L^2}$",
            "the teacher against the exact velocity, t ~ U[0, T], x ~ p_t",
        ),
        _error(
            "teacher_solver_error",
            "teacher solver error (rms)",
            "Solver_K[v](z) (characteristics.solver, K steps) vs a reference solve of the same teacher: the "
            "discretisation error",
        ),
        _error(
            "teacher_flow_error",
            "teacher flow error (rms)",
            "Flow[v](z) vs Flow[V](z): what the velocity error does to the flow",
        ),
        _error("teacher_e2e_error", "teacher end-to-end error (rms)", "Euler_K[v](z) vs the exact flow"),
        _error("teacher_one_step_e2e_error", "teacher one-step error (rms)", "Euler_1[v](z) vs the exact flow"),
        _error(
            "teacher_flow_error_half",
            "teacher flow error at half its steps (rms)",
            "teacher_flow_error of the network after half its training steps",
            TRAINED,
        ),
        Metric(
            "teacher_converged",
            "teacher converged",
            "flag",
            "teacher_flow_error moved by less than eval.converged_tol between half and all of the training steps "
            "(false: optimisation-limited; rate fits leave the run out with resolved: teacher_converged)",
            when=TRAINED,
        ),
        _error("fitting_error", "fitting error (rms)", "g(0, T, z) vs Euler_K[v](z)"),
        *shared.coupled(
            "student_e2e",
            "student end-to-end error (rms)",
            "g(0, T, z) vs the exact flow of the true velocity",
            tail=True,
        ),
        _error(
            "student_e2e_error_half",
            "student end-to-end error at half its steps (rms)",
            "student_e2e_error of the student after half its training steps",
            "student.optim.steps >= 2",
        ),
        Metric(
            "student_converged",
            "student converged",
            "flag",
            "student_e2e_error moved by less than eval.converged_tol between half and all of the training steps",
            when="student.optim.steps >= 2",
        ),
        _error(
            "semigroup_defect",
            "semigroup defect (rms)",
            "rms of g(s, u, x) - g(t, u, g(s, t, x)) over grid triples of held-out trajectories",
        ),
        *shared.sampled_w2("student_w2", "$W_2$(one-step samples, target)"),
        shared.EARLY_STOP_W2_UB,
        _record("teacher_params", "teacher parameters", "parameter count (0: oracle and kernel)"),
        _record("teacher_cached", "teacher from the cache", "whether the trained teacher was made by another run"),
        _record(
            "time_teacher_train_s",
            "teacher training time (s)",
            "time to train (or build) the teacher, in whichever run made it (not its convergence check's half copy)",
            unit="s",
        ),
        _record(
            "teacher_final_loss",
            "teacher final loss",
            "mean loss of the last window of training steps (null without steps)",
            TRAINED,
        ),
        _record("teacher_loss_history", "teacher loss history", "mean loss per window of 50 steps", TRAINED),
        _record(
            "teacher_train_loss",
            "teacher loss, training set",
            "velocity-matching loss on the training sample",
            "teacher.kind != oracle",
        ),
        _record(
            "teacher_val_loss",
            "teacher loss, fresh data",
            "velocity-matching loss on as many fresh target draws",
            "teacher.kind != oracle",
        ),
        _record(
            "teacher_zero_field_loss",
            "zero field's loss",
            "the loss of a network that predicts nothing, on the training points: a trained teacher's must be far "
            "below (pipeline.health)",
            TRAINED,
        ),
        _record(
            "teacher_variance_ratio",
            "teacher variance over x, trained / initial",
            "variance over x ~ p_t (8 times) of the trained network's output over that of the same network at "
            "initialisation: below 1e-3 the teacher collapsed and the run fails (pipeline.health)",
            TRAINED,
        ),
        *_selection("teacher", "of its n points"),
        _record("teacher_bandwidth", "kernel bandwidth $h$", "the kernel teacher's bandwidth", KERNEL),
        _record("teacher_cv_bandwidths", "bandwidths tried", "held-out selection grid", "kernel, bandwidth null"),
        _record("teacher_cv_losses", "held-out losses", "held-out loss per bandwidth tried", "kernel, bandwidth null"),
        _record(
            "teacher_cv_interior",
            "bandwidth inside the grid",
            "the held-out optimum is not at an end of the grid",
            "kernel, bandwidth null",
        ),
        _record("student_params", "student parameters", "parameter count"),
        _record(
            "time_student_train_s",
            "student training time (s)",
            "time to train the student (not its convergence check's half-length copy)",
            unit="s",
        ),
        _record(
            "student_final_loss",
            "student final loss",
            "mean loss of the last window of training steps (null without steps)",
        ),
        _record("student_fit_loss", "student fit loss", "the pair-fitting term on fresh batches after training"),
        _record(
            "student_semigroup_loss", "student semigroup loss", "the semigroup term on fresh batches after training"
        ),
        _record("student_loss_history", "student loss history", "mean loss per window of 50 steps"),
        *_selection("student", "of its m characteristics"),
        _record(
            "student_variance_ratio",
            "student variance over x, trained / initial",
            "variance over the characteristics' points of the trained student network's output over that of the same "
            "network at initialisation: below 1e-3 the student collapsed and the run fails (pipeline.health)",
        ),
        _record(
            "characteristics_nfe", "characteristics field evaluations", "teacher evaluations of the characteristics"
        ),
        *(
            _record(f"time_{s}_s", f"{s} stage time (s)", f"wall time of the {s} stage", unit="s")
            for s in ("teacher", "characteristics", "student", "eval")
        ),
        shared.TIME_TOTAL,
    ),
    batch=run_characteristic,
    batch_key=batch_key,
    memory=memory,
    artefacts=(
        Artefact(
            "teacher",
            ("seed", "target", "interpolant", "T", "dtype", "teacher"),
            on_disk=True,
            applies=lambda cfg: cfg.teacher.kind == "trained",
            memo_size=4,
        ),
    ),
)
