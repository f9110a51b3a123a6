"""The outcome of one run, whatever its kind, and how a run body says that it failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunRecord:
    """status 'ok' or 'failed' (then the stage and the reason), the metrics, and run information (the device)."""

    status: str
    metrics: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    stage: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Flat: status, stage, reason, every metric and every info entry."""
        return {"status": self.status, "stage": self.stage, "reason": self.reason, **self.metrics, **self.info}


class RunFailed(RuntimeError):
    """Raised by a run body for an outcome that is this run's failure, not a bug: a diverging stage, a non-finite
    result, a target the run kind cannot handle. The run is recorded as failed with the stage it was in and this
    reason (and any metrics measured before it); the sweep goes on."""

    def __init__(self, reason: str, metrics: dict[str, Any] | None = None):
        super().__init__(reason)
        self.metrics = metrics or {}
