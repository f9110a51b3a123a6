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


# -- the other seed papers (THEORY.md section 6) ------------------------------------------------------------------

class TargetRun(Strict):
    """The fields every analytic run kind shares: one seed and a named target."""

    seed: Annotated[int, Field(ge=0)] = 0
    target: dict[str, Any]

    @model_validator(mode="after")
    def _named_target(self) -> TargetRun:
        if "name" not in self.target:
            raise ValueError("target needs a 'name' (a registry entry, see `convlab targets`)")
        return self


class PerturbationConfig(Strict):
    """A seeded, known perturbation field delta (convlab.perturbation) of size eps, drawn from the run's seed."""

    kind: Literal["fourier", "constant"] = "fourier"
    eps: Annotated[float, Field(ge=0.0)] = 0.0
    n_features: PositiveInt = 64  # fourier only
    lengthscale: Annotated[float, Field(gt=0.0)] = 1.0  # fourier only


class LipschitzSearch(Strict):
    """How sup_x ||grad V(t, x)|| is searched: candidate draws, then gradient ascent from the best few."""

    n_samples: PositiveInt = 1024
    n_starts: PositiveInt = 8
    ascent_steps: Annotated[int, Field(ge=0)] = 100


class PFODERun(TargetRun):
    """The OU probability-flow ODE over horizon S with K steps of euler or the exponential integrator (seed 002)."""

    kind: Literal["pf_ode"] = "pf_ode"
    S: Annotated[float, Field(gt=0.0)] = 8.0
    s_min: Annotated[float, Field(ge=0.0)] = 0.0  # forward time where the reverse ODE stops (early stopping)
    method: Literal["euler", "exp"] = "exp"
    K: PositiveInt = 64
    score_error: PerturbationConfig = PerturbationConfig()
    n: Annotated[int, Field(ge=2)] = 2000
    reference: ReferenceConfig = ReferenceConfig()

    @model_validator(mode="after")
    def _consistent(self) -> PFODERun:
        if self.s_min >= self.S:
            raise ValueError(f"s_min: must be below the horizon S = {self.S} (got {self.s_min})")
        return self


class LogConcavityRun(TargetRun):
    """-Hess log p_t of the OU marginal at forward time t against the sandwich of THEORY.md section 6."""

    kind: Literal["log_concavity"] = "log_concavity"
    t: Annotated[float, Field(gt=0.0)] = 0.5
    n: PositiveInt = 2000


class LipschitzRun(TargetRun):
    """L_t = sup_x ||grad_x V(t, x)||_2 of a target's exact velocity at one time t < 1 (seed 004)."""

    kind: Literal["lipschitz"] = "lipschitz"
    interpolant: str | dict[str, Any] = "linear"
    t: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.5
    search: LipschitzSearch = LipschitzSearch()


class EarlyStoppingRun(TargetRun):
    """Stopping the flow at T < 1: bounds on W2(p_T, nu) and the integrated Lipschitz constant on [0, T]."""

    kind: Literal["early_stopping"] = "early_stopping"
    interpolant: str | dict[str, Any] = "linear"
    T: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.99
    n: Annotated[int, Field(ge=2)] = 4000  # draws of p_T for the distance-to-support lower bound
    n_t: Annotated[int, Field(ge=3)] = 24  # quadrature times on [0, T]
    search: LipschitzSearch = LipschitzSearch()


class StabilityRun(TargetRun):
    """Flows of V and V + delta from the same noise: measured coupled error against the Gronwall bound."""

    kind: Literal["stability"] = "stability"
    interpolant: str | dict[str, Any] = "linear"
    T: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.999
    perturbation: PerturbationConfig = PerturbationConfig(eps=0.1)
    n: Annotated[int, Field(ge=2)] = 2000
    n_t: Annotated[int, Field(ge=3)] = 24
    search: LipschitzSearch = LipschitzSearch()
    reference: ReferenceConfig = ReferenceConfig()


class JKOBlockConfig(Strict):
    """A residual block x + lip * g(x), g an MLP of spectral-normalised layers with ELU."""

    width: PositiveInt = 64
    depth: PositiveInt = 2
    lip: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.9


class JKOTrainConfig(Strict):
    """Adam with a cosine schedule, per block."""

    steps: Annotated[int, Field(ge=0)] = 300
    lr: Annotated[float, Field(gt=0.0)] = 2e-3
    batch_size: PositiveInt = 256


class JKORun(TargetRun):
    """N blocks of the neural JKO flow towards N(0, I) (seed 003): KL(p_N || N(0, I)) by exact density tracking,
    W2 of generated samples (inverted blocks) to the target, and the Gaussian closed form beside them."""

    kind: Literal["jko"] = "jko"
    gamma: Annotated[float, Field(gt=0.0)] = 1.0
    N: Annotated[int, Field(ge=0)] = 4
    step_error: Annotated[float, Field(ge=0.0)] = 0.0  # a seeded shift of this length after every block
    net: JKOBlockConfig = JKOBlockConfig()
    train: JKOTrainConfig = JKOTrainConfig()
    dtype: Literal["float32", "float64"] = "float32"
    n_train: Annotated[int, Field(ge=2)] = 2000
    n_eval: Annotated[int, Field(ge=2)] = 4000
    n_w2: Annotated[int, Field(ge=0)] = 500  # 0: skip generation and W2
    floor_repeats: Annotated[int, Field(ge=1)] = 3
    resolve_margin: Annotated[float, Field(ge=1.0)] = 2.0
