"""The outcome of one run, whatever its kind."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunRecord:
    """status 'ok' or 'failed' (then the stage and the reason), the metrics, and run information."""

    status: str
    metrics: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    stage: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Flat: status, stage, reason, every metric and every info entry."""
        return {"status": self.status, "stage": self.stage, "reason": self.reason, **self.metrics, **self.info}
