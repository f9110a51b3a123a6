"""The same study run on two devices, side by side: per-run time ratio and how far the metrics move.

    python benchmarks/compare_devices.py results_cpu/<study> results_cuda/<study> [--metric NAME ...]

Runs are joined on run_id (the device is not part of a run's config). Random streams differ between a CPU
and a CUDA generator, so sampled metrics agree in distribution, not digit for digit: the table gives, per
metric, the mean and standard deviation over runs on each device and the median relative difference per run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from convlab.files import read_json
from convlab.runs import RUN_KINDS
from convlab.study.store import CONFIG, RESULT, StudyStore
from convlab.study.table import read_table


def metric_names(study_dir: Path, run_ids) -> list[str]:
    """The numeric metrics the runs recorded, by their run kind's declaration (bookkeeping such as times left out)."""
    store = StudyStore(study_dir.parent, study_dir.name)
    names: dict[str, None] = {}
    for rid in run_ids:
        d = store.run_dir(rid)
        if (d / RESULT).exists():
            kind = RUN_KINDS[read_json(d / CONFIG)["kind"]]
            result = read_json(d / RESULT)
            names.update(
                (m.name, None) for m in kind.metrics if m.estimate != "record" and isinstance(result.get(m.name), float)
            )
    return list(names)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument(
        "--metric", action="append", default=None, help="metrics to compare (default: every numeric one that varies)"
    )
    args = p.parse_args()
    a, b = (read_table(d).set_index("run_id") for d in (args.a, args.b))
    both = a.index.intersection(b.index)
    ok = both[(a.loc[both, "status"] == "ok") & (b.loc[both, "status"] == "ok")]
    a, b = a.loc[ok], b.loc[ok]
    print(
        f"{len(both)} runs in both ({len(ok)} ok on both); "
        f"devices: {a['prov.device'].iloc[0]} vs {b['prov.device'].iloc[0]}"
    )
    ta, tb = a["prov.seconds"], b["prov.seconds"]
    print(
        f"time per run: {ta.median():.2f} s vs {tb.median():.2f} s (median), "
        f"total {ta.sum():.1f} s vs {tb.sum():.1f} s, "
        f"ratio {ta.sum() / tb.sum():.2f}x"
    )
    metrics = args.metric or [m for m in metric_names(args.a, ok) if a[m].nunique() > 1]
    rows = []
    for m in metrics:
        x, y = a[m].to_numpy(float), b[m].to_numpy(float)
        rel = np.abs(x - y) / np.maximum(np.abs(x), 1e-300)
        rows.append(
            {
                "metric": m,
                "mean a": np.nanmean(x),
                "sd a": np.nanstd(x, ddof=1),
                "mean b": np.nanmean(y),
                "sd b": np.nanstd(y, ddof=1),
                "median rel diff": np.nanmedian(rel),
            }
        )
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    main()
