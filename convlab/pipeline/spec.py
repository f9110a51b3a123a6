"""What the pipeline is told: one frozen dataclass per stage and one for a whole run (PipelineSpec), the pipeline's
own vocabulary. A notebook builds them directly; a study's `characteristic` run config becomes one in the run
layer (convlab.runs.config.core), which takes its defaults from here."""

from __future__ import annotations

from dataclasses import dataclass

from convlab.models.nets import Net
from convlab.models.training import Optim
from convlab.solvers import Reference


@dataclass(frozen=True)
class TeacherSpec:
    """The velocity network ('trained', fitted by velocity matching on n points drawn once), or the 'oracle' (the
    exact velocity) or the 'kernel' teacher (the exact velocity of the n points smoothed by N(0, h^2 I): the
    minimiser of the velocity-matching loss over all fields for that measure, a statistical error and no
    optimisation error; h = `bandwidth`, or chosen on held-out data when None). `clean`: train on the manifold's
    clean points (manifold targets). `selection`: keep the 'last' weights, or ('heldout') those of the lowest loss
    on the held-out `heldout_fraction` of the n points."""

    kind: str = "trained"
    n: int = 2000
    bandwidth: float | None = None
    clean: bool = False
    parametrization: str = "velocity"
    loss: str = "velocity"
    net: Net = Net()
    optim: Optim = Optim()
    selection: str = "last"
    heldout_fraction: float = 0.2


@dataclass(frozen=True)
class CharacteristicsSpec:
    """m noise draws pushed through K steps of a first-order solver ('euler' or 'exp_euler') on the teacher, on a
    'uniform' or 'quadratic' time grid."""

    solver: str = "euler"
    K: int = 16
    m: int = 2000
    grid: str = "uniform"


@dataclass(frozen=True)
class StudentSpec:
    """The one-step student g(s, t, x) in `form` 'euler' or 'exp_euler', initialised from the 'teacher' or at
    'random', fitted to the characteristics' pairs plus semigroup_weight times the semigroup penalty; `selection`
    as for the teacher, on the held-out fraction of the m characteristics."""

    form: str = "euler"
    init: str = "teacher"
    semigroup_weight: float = 0.1
    net: Net = Net()
    optim: Optim = Optim()
    selection: str = "last"
    heldout_fraction: float = 0.2


@dataclass(frozen=True)
class EvalSpec:
    """Measurement sizes: noise draws of the coupled errors, the sampled W2's size and floor repeats (resolved: W2 >
    resolve_margin times the floor), (t, x) draws of the velocity error, and the convergence check's tolerance."""

    n_coupled: int = 2000
    n_w2: int = 1000
    n_velocity: int = 4000
    floor_repeats: int = 3
    resolve_margin: float = 2.0
    converged_tol: float = 0.05


@dataclass(frozen=True)
class PipelineSpec:
    """One run of the pipeline: the seed of every draw, the interpolant (what as_interpolant takes: a name, or a
    {'name': ..., **params} mapping), the early-stopping time T, the networks' dtype, the stages, and the reference
    solve of the exact and the teacher's flows (1024 rk4 steps: the teacher is float32)."""

    seed: int = 0
    interpolant: str | dict = "follmer"
    T: float = 0.999
    dtype: str = "float32"
    teacher: TeacherSpec = TeacherSpec()
    characteristics: CharacteristicsSpec = CharacteristicsSpec()
    student: StudentSpec = StudentSpec()
    eval: EvalSpec = EvalSpec()
    reference: Reference = Reference(K=1024)
