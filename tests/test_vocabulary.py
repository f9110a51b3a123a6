"""docs/concepts/vocabulary.md names only what exists: every name in its 'name' column is a config key, a metric, a
solver or a target parameter of today's convlab."""

import inspect
import re
from pathlib import Path

from convlab.runs import RUN_KINDS
from convlab.runs.describe import config_keys
from convlab.solvers import SOLVERS
from convlab.targets import TARGETS

DOC = Path(__file__).resolve().parents[1] / "docs" / "concepts" / "vocabulary.md"


def test_every_name_in_the_vocabulary_exists():
    keys = {k for kind in RUN_KINDS.values() for k, *_ in config_keys(kind.config)}
    leaves = {k.rsplit(".", 1)[-1] for k in keys}
    metrics = {m.name for kind in RUN_KINDS.values() for m in kind.metrics}
    params = {p for make in TARGETS.values() for p in inspect.signature(make).parameters}
    rows = [line.split("|") for line in DOC.read_text().splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) > 20
    for row in rows:
        for name in re.findall(r"`([^`<]+)`", row[2] + row[3]):
            assert name in keys | leaves | metrics | set(SOLVERS) | params, (
                f"{name!r} (docs/concepts/vocabulary.md) names nothing in convlab"
            )
