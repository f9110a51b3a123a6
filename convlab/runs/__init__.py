"""Run kinds: each a validated config model and a function config -> RunRecord (never raising on divergence)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from convlab.config import CharacteristicRun, FlowRun
from convlab.pipeline.characteristic import run_characteristic
from convlab.runs.flow import run_flow
from convlab.record import RunRecord


@dataclass(frozen=True)
class RunKind:
    config: type[BaseModel]
    run: Callable[..., RunRecord]
    uses_teacher: bool  # whether runs of this kind may share a trained teacher


RUN_KINDS: dict[str, RunKind] = {
    "flow": RunKind(FlowRun, run_flow, uses_teacher=False),
    "characteristic": RunKind(CharacteristicRun, run_characteristic, uses_teacher=True),
}

__all__ = ["RUN_KINDS", "RunKind", "RunRecord", "run_flow", "run_characteristic"]
