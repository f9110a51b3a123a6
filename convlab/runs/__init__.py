"""Run kinds: each declared once, as `KIND` in its own module of this package (runs.kind.RunKind: config model,
metrics, shared artefacts, run body, renames). Adding a run kind is adding a module here; the registry finds it.

    from convlab.runs import RUN_KINDS
    record = RUN_KINDS["flow"].run({"target": {"name": "ring8"}, "solver": "heun", "K": 32})
"""

from __future__ import annotations

import importlib
import pkgutil

from convlab.record import RunFailed, RunRecord
from convlab.runs.artefacts import ArtefactCache
from convlab.runs.kind import Artefact, Metric, RunContext, RunKind


def _discover() -> dict[str, RunKind]:
    kinds: dict[str, RunKind] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        kind = getattr(importlib.import_module(f"{__name__}.{info.name}"), "KIND", None)
        if isinstance(kind, RunKind):
            if kind.name in kinds:
                raise ValueError(f"run kind {kind.name!r} is declared twice (convlab/runs/{info.name}.py)")
            kinds[kind.name] = kind
    return kinds


RUN_KINDS: dict[str, RunKind] = _discover()


def metric(name: str) -> Metric:
    """The declaration of a metric by name, whatever kind emits it (a name means one quantity in every kind)."""
    for kind in RUN_KINDS.values():
        if name in kind.metric_names:
            return kind.metric(name)
    raise KeyError(f"no run kind declares a metric {name!r}")


__all__ = [
    "RUN_KINDS",
    "Artefact",
    "ArtefactCache",
    "Metric",
    "RunContext",
    "RunFailed",
    "RunKind",
    "RunRecord",
    "metric",
]
