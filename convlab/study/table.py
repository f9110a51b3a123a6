"""collect: one row per finished run (config flattened to dotted columns, metrics, status, provenance)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

from convlab.files import atomic_write_bytes, read_json
from convlab.study.plan import Plan, flatten
from convlab.study.store import ERROR, PROVENANCE, RESULT, StudyStore

TABLE = "results.parquet"


def _scalar(v):
    """Lists (loss histories, inline mixture parameters) go into the table as JSON text."""
    return json.dumps(v) if isinstance(v, list | dict) else v


def collect(plan: Plan, store: StudyStore) -> pd.DataFrame:
    """The tidy table of the plan's finished runs (done or failed), each exactly once, in plan order."""
    rows = []
    for r in plan.runs:
        state = store.state(r.run_id)
        if state not in ("done", "failed"):
            continue
        d = store.run_dir(r.run_id)
        result = read_json(d / RESULT) if (d / RESULT).exists() else {}
        error = read_json(d / ERROR) if state == "failed" else {}
        row = {
            "run_id": r.run_id,
            "status": "ok" if state == "done" else "failed",
            "stage": error.get("stage"),
            "reason": error.get("reason"),
        }
        row.update({k: _scalar(v) for k, v in flatten(r.config.model_dump(mode="json")).items()})
        row.update(
            {
                k: _scalar(v)
                for k, v in result.items()
                if k not in ("status", "stage", "reason") and not isinstance(v, list)
            }
        )
        prov = read_json(d / PROVENANCE) if (d / PROVENANCE).exists() else {}
        row.update({f"prov.{k}": _scalar(v) for k, v in flatten(prov).items()})
        rows.append(row)
    return pd.DataFrame(rows)


def write_table(df: pd.DataFrame, store: StudyStore, *, csv: bool = False) -> Path:
    """Atomically replace the study's results.parquet (and results.csv): the table is derived from the runs."""
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    path = store.dir / TABLE
    atomic_write_bytes(path, buf.getvalue())
    if csv:
        atomic_write_bytes(store.dir / "results.csv", df.to_csv(index=False).encode())
    return path


def read_table(study_dir: str | Path) -> pd.DataFrame:
    return pd.read_parquet(Path(study_dir) / TABLE)
