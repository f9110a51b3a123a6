"""Run kinds: each a validated config model and a function config -> RunRecord (never raising on divergence)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from convlab.config import (CharacteristicRun, EarlyStoppingRun, FlowRun, JKORun, LipschitzRun, LogConcavityRun, PFODERun,
                            StabilityRun)
from convlab.pipeline.characteristic import run_characteristic
from convlab.runs.flow import run_flow
from convlab.runs.gif import run_early_stopping, run_lipschitz, run_stability
from convlab.runs.jko import run_jko
from convlab.runs.pf_ode import run_log_concavity, run_pf_ode
from convlab.record import RunRecord


@dataclass(frozen=True)
class RunKind:
    config: type[BaseModel]
    run: Callable[..., RunRecord]
    uses_teacher: bool  # whether runs of this kind may share a trained teacher


RUN_KINDS: dict[str, RunKind] = {
    "flow": RunKind(FlowRun, run_flow, uses_teacher=False),
    "characteristic": RunKind(CharacteristicRun, run_characteristic, uses_teacher=True),
    "pf_ode": RunKind(PFODERun, run_pf_ode, uses_teacher=False),
    "log_concavity": RunKind(LogConcavityRun, run_log_concavity, uses_teacher=False),
    "lipschitz": RunKind(LipschitzRun, run_lipschitz, uses_teacher=False),
    "early_stopping": RunKind(EarlyStoppingRun, run_early_stopping, uses_teacher=False),
    "stability": RunKind(StabilityRun, run_stability, uses_teacher=False),
    "jko": RunKind(JKORun, run_jko, uses_teacher=False),
}

__all__ = ["RUN_KINDS", "RunKind", "RunRecord", "run_flow", "run_characteristic", "run_pf_ode", "run_log_concavity",
           "run_lipschitz", "run_early_stopping", "run_stability", "run_jko"]
