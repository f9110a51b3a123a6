"""collect: one row per finished run (config flattened to dotted columns, metrics, status, provenance)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

from convlab.files import atomic_write_bytes
from convlab.study.columns import flatten
from convlab.study.plan import Plan
from convlab.study.store import Damaged, StudyStore

TABLE = "results.parquet"


def _scalar(v):
    """Lists (loss histories, inline mixture parameters) go into the table as JSON text."""
    return json.dumps(v) if isinstance(v, list | dict) else v


def collect(plan: Plan, store: StudyStore) -> pd.DataFrame:
    """The tidy table of the plan's finished runs (done or failed), each exactly once, in plan order. Every file is
    checked as it is read (StudyStore.inspect): a damaged run is left out (`convlab status` names it; the next sweep
    recomputes it), so a row is `ok` only with the metrics its run recorded."""
    rows = []
    for r in plan.runs:
        files = store.inspect(r.run_id)
        if files.state not in ("done", "failed"):
            continue
        result, error, prov = files.result or {}, files.error or {}, files.provenance or {}
        row = {
            "run_id": r.run_id,
            "status": "ok" if files.state == "done" else "failed",
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
    """A study's stored table; Damaged naming the file when it is missing or not a readable parquet table."""
    path = Path(study_dir) / TABLE
    if not path.is_file():
        raise Damaged(f"{path}: missing (`convlab collect {Path(study_dir)}` builds it from the runs)")
    try:
        return pd.read_parquet(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a damaged file
        raise Damaged(
            f"{path}: not a readable parquet table ({type(err).__name__}); `convlab collect {Path(study_dir)}` "
            "rebuilds it from the runs"
        ) from None
