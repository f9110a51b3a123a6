"""Every name that changed since results were first stored, old -> new: the history `convlab migrate` applies to
stored results and the planner quotes to a study file that still uses an old name. Live declarations (the run
kinds in convlab/runs/, the targets) hold today's names only; when you rename one, add the old name here.

Per run kind: `config` maps old dotted config keys to new ones (a tuple: the old value goes to each), `values` new
dotted keys to {old value: new value}, `metrics` old metric names to new ones (None: no longer recorded).
TARGETS maps a target to {old parameter: new parameter}, TARGET_NAMES an old target name to the new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Renames:
    config: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    values: Mapping[str, Mapping[Any, Any]] = field(default_factory=dict)
    metrics: Mapping[str, str | None] = field(default_factory=dict)


_REFERENCE = {"reference.method": "reference.solver", "reference.steps": "reference.K"}

KINDS: dict[str, Renames] = {
    "characteristic": Renames(
        config={"eval.reference_steps": "reference.K"},
        values={"student.form": {"exp": "exp_euler"}},
        metrics={
            "teacher_seconds": "time_teacher_train_s",
            "teacher_euler_error": "teacher_solver_error",  # format 5: the solver may be exp_euler
            "student_seconds": None,
            "eval_seconds": None,
            "w2_n": None,
            "device_name": None,
        },
    ),
    "early_stopping": Renames(
        config={"n": "n_mc"},
        metrics={
            "w2_ub": "early_stop_w2_ub",
            "w2_lb": "early_stop_w2_lb",
            "w2_lb_gelbrich": "early_stop_w2_lb_gelbrich",
            "w2_lb_support": "early_stop_w2_lb_support",
        },
    ),
    "flow": Renames(config={"n": "n_coupled", **_REFERENCE}, metrics={"w2_n": None}),
    "jko": Renames(
        config={"N": "K", "train": "optim", "n_train": "n", "n_eval": "n_mc"},
        metrics={"train_loss": "block_final_loss"},
    ),
    "log_concavity": Renames(
        config={"n": "n_points"},
        metrics={
            "bound_lower": "hess_bound_lower",
            "bound_upper": "hess_bound_upper",
            "R": "support_radius",
            "std": "s",
        },
    ),
    "pf_ode": Renames(
        config={"method": "solver", "n": "n_coupled", **_REFERENCE},
        values={"solver": {"exp": "exp_score"}},
        metrics={
            "solver_error": "coupled_error",
            "solver_ci_low": "coupled_ci_low",
            "solver_ci_high": "coupled_ci_high",
            "w2_ub": "sampler_w2_ub",
            "w2_exact": "sampler_w2",
            "init_w2_exact": "init_w2",
            "R": "support_radius",
            "std": "s",
        },
    ),
    "stability": Renames(
        config={"n": ("n_coupled", "n_mc"), **_REFERENCE},
        metrics={
            "measured": "coupled_error",
            "measured_ci_high": "coupled_ci_high",
            "bound": "stability_bound",
            "bound_ratio": "stability_bound_ratio",
            "bound_holds": "stability_bound_holds",
        },
    ),
}

TARGETS: dict[str, dict[str, str]] = {"ring8": {"std": "s"}, "gaussian": {"std": "s"}}
# Renamed targets, old name -> new (format 5: the atom mixtures say they are atoms, beside the exact uniform_*).
TARGET_NAMES: dict[str, str] = {"sphere": "sphere_atoms", "torus": "torus_atoms", "cube": "cube_atoms"}


def of_kind(kind: str) -> Renames:
    """The renames of a run kind (none for a kind that never renamed anything)."""
    return KINDS.get(kind, Renames())
