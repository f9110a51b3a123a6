"""Run configurations, validated by pydantic (unknown keys rejected, every field typed and bounded).

A run config is complete: it names the target, the interpolant, the solver and every training and
measurement setting, so a hash of it identifies the run (device and execution hints are not part of it).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PositiveInt = Annotated[int, Field(ge=1)]
Probability = Annotated[float, Field(gt=0.0, lt=1.0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetConfig(Strict):
    """MLP on [x, Fourier features of the time(s)]."""

    width: PositiveInt = 128
    depth: PositiveInt = 3
    activation: Literal["silu", "gelu", "relu", "tanh", "softplus"] = "silu"
    time_features: PositiveInt = 8


class OptimConfig(Strict):
    """Optimiser, schedule and regularisation of one training stage."""

    optimizer: Literal["adam", "radam"] = "adam"
    lr: Annotated[float, Field(gt=0.0)] = 2e-3
    schedule: Literal["constant", "cosine"] = "cosine"
    warmup_steps: Annotated[int, Field(ge=0)] = 0
    steps: Annotated[int, Field(ge=0)] = 2000
    batch_size: PositiveInt = 256
    grad_clip: Annotated[float, Field(gt=0.0)] | None = 1.0
    ema: Probability | None = None  # off: on short runs with a decaying lr it lags the weights (measured)
    weight_decay: Annotated[float, Field(ge=0.0)] = 0.0


class TeacherConfig(Strict):
    """The velocity network (or the oracle: the target's exact velocity)."""

    # trained: a network fitted by velocity matching; oracle: the exact velocity; kernel: the exact velocity of
    # the training sample smoothed by N(0, h^2 I), i.e. the minimiser of the velocity-matching loss over all
    # fields for that measure -- a teacher with a statistical error and no optimisation error.
    kind: Literal["trained", "oracle", "kernel"] = "trained"
    n: PositiveInt = 2000  # the sample size of the theory: one training set drawn once
    bandwidth: Annotated[float, Field(gt=0.0)] | None = None  # kernel only; None: chosen by held-out loss
    parametrization: Literal["velocity", "denoiser"] = "velocity"
    loss: Literal["velocity", "denoiser"] = "velocity"  # velocity matching, or its unweighted denoising form
    net: NetConfig = NetConfig()
    optim: OptimConfig = OptimConfig()


class CharacteristicsConfig(Strict):
    """m noise draws pushed through K steps of a first-order solver on the teacher."""

    solver: Literal["euler", "exp_euler"] = "euler"
    K: Annotated[int, Field(ge=2)] = 16
    m: PositiveInt = 2000
    grid: Literal["uniform", "quadratic"] = "uniform"


class StudentConfig(Strict):
    """g(s, t, x) with g(s, s, x) = x: form 'euler' x + (t - s) f(s, t, x), or 'exp' the exponential-integrator
    form (a_t / a_s) x + (b_t - a_t b_s / a_s) D(s, t, x)."""

    form: Literal["euler", "exp"] = "euler"
    init: Literal["teacher", "random"] = "teacher"
    semigroup_weight: Annotated[float, Field(ge=0.0)] = 0.1
    net: NetConfig = NetConfig()
    optim: OptimConfig = OptimConfig()


class EvalConfig(Strict):
    """Held-out measurement sizes."""

    n_coupled: PositiveInt = 2000  # noise draws for the coupled (pathwise) errors
    n_w2: Annotated[int, Field(ge=2)] = 1000  # sample size of the exact W2 and of its noise floor
    n_velocity: PositiveInt = 4000  # (t, x) draws for the velocity L2 error
    floor_repeats: Annotated[int, Field(ge=1)] = 3
    resolve_margin: Annotated[float, Field(ge=1.0)] = 2.0
    reference_steps: Annotated[int, Field(ge=16)] = 1024


class ReferenceConfig(Strict):
    """How the reference flow (the truth for coupled errors) is solved."""

    method: Literal["rk4", "dop853"] = "rk4"
    steps: Annotated[int, Field(ge=16)] = 2048  # rk4 only
    grid: Literal["uniform", "quadratic"] = "quadratic"


class FlowRun(Strict):
    """Integrate the exact velocity of a target with a solver; measure against the reference flow and the target."""

    kind: Literal["flow"] = "flow"
    seed: Annotated[int, Field(ge=0)] = 0
    target: dict[str, Any]
    interpolant: str | dict[str, Any] = "linear"
    T: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    solver: Literal["euler", "heun", "rk4", "exp_euler"] = "euler"
    K: PositiveInt = 16
    grid: Literal["uniform", "quadratic"] = "uniform"
    n: Annotated[int, Field(ge=2)] = 2000  # noise draws for the coupled error
    n_w2: Annotated[int, Field(ge=0)] = 0  # sample size of the sampled W2 and its floor (0: skip)
    floor_repeats: Annotated[int, Field(ge=1)] = 3
    resolve_margin: Annotated[float, Field(ge=1.0)] = 2.0
    reference: ReferenceConfig = ReferenceConfig()

    @model_validator(mode="after")
    def _consistent(self) -> FlowRun:
        if "name" not in self.target:
            raise ValueError("target needs a 'name' (a registry entry, see `convlab targets`)")
        if self.solver == "exp_euler" and self.T >= 1.0:
            raise ValueError("T: exp_euler divides by a(t), which vanishes at t = 1; use T < 1 (got 1.0)")
        return self


class CharacteristicRun(Strict):
    """One run of the characteristic-generator pipeline (THEORY.md section 4)."""

    kind: Literal["characteristic"] = "characteristic"
    seed: Annotated[int, Field(ge=0)] = 0
    target: dict[str, Any]
    interpolant: str | dict[str, Any] = "follmer"
    T: Annotated[float, Field(gt=0.0, le=1.0)] = 0.999
    dtype: Literal["float32", "float64"] = "float32"  # of the networks and everything they touch
    teacher: TeacherConfig = TeacherConfig()
    characteristics: CharacteristicsConfig = CharacteristicsConfig()
    student: StudentConfig = StudentConfig()
    eval: EvalConfig = EvalConfig()

    @model_validator(mode="after")
    def _consistent(self) -> CharacteristicRun:
        if "name" not in self.target:
            raise ValueError("target needs a 'name' (a registry entry, see `convlab targets`)")
        if self.teacher.bandwidth is not None and self.teacher.kind != "kernel":
            raise ValueError(f"teacher.bandwidth: only a kernel teacher has a bandwidth (teacher.kind is {self.teacher.kind!r})")
        if self.student.init == "teacher":
            if self.teacher.kind != "trained":
                raise ValueError(f"student.init: 'teacher' needs a trained teacher (teacher.kind is {self.teacher.kind!r}); use 'random'")
            if self.student.net != self.teacher.net:
                raise ValueError("student.init: 'teacher' needs student.net equal to teacher.net")
            wanted = {"velocity": "euler", "denoiser": "exp"}[self.teacher.parametrization]
            if self.student.form != wanted:
                raise ValueError(
                    f"student.form: initialising from a {self.teacher.parametrization}-parametrised teacher makes "
                    f"g one {wanted} step, so the form must be {wanted!r} (got {self.student.form!r})"
                )
        uses_denoiser = self.teacher.parametrization == "denoiser" or self.student.form == "exp" or self.characteristics.solver == "exp_euler"
        if uses_denoiser and self.T >= 1.0:
            raise ValueError("T: the denoiser form divides by a(t), which vanishes at t = 1; use T < 1 (got 1.0)")
        return self
