"""The same study run on two devices, side by side: per-run time ratio and how far the metrics move.

    python benchmarks/compare_devices.py results_cpu/<study> results_cuda/<study> [--metric NAME ...]

Runs are joined on run_id (the device is not part of a run's config). Random streams differ between a CPU
and a CUDA generator, so sampled metrics agree in distribution, not digit for digit: the table gives, per
metric, the mean on each device and the median relative difference per run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--metric", action="append", default=None, help="metrics to compare (default: every numeric one)")
    args = p.parse_args()
    a, b = (pd.read_parquet(d / "results.parquet").set_index("run_id") for d in (args.a, args.b))
    both = a.index.intersection(b.index)
    a, b = a.loc[both], b.loc[both]
    ok = (a["status"] == "ok") & (b["status"] == "ok")
    print(f"{len(both)} runs in both ({ok.sum()} ok on both); devices: {a['prov.device'].iloc[0]} vs {b['prov.device'].iloc[0]}")
    ta, tb = a.loc[ok, "prov.seconds"], b.loc[ok, "prov.seconds"]
    print(f"time per run: {ta.median():.2f} s vs {tb.median():.2f} s (median), total {ta.sum():.1f} s vs {tb.sum():.1f} s, "
          f"ratio {ta.sum() / tb.sum():.2f}x")
    skip = {"seed", "time_total_s"}
    metrics = args.metric or [c for c in a.columns if c not in skip and not c.startswith("prov.") and "." not in c
                              and pd.api.types.is_float_dtype(a[c]) and a[c].nunique() > 1]
    rows = []
    for m in metrics:
        x, y = a.loc[ok, m].to_numpy(float), b.loc[ok, m].to_numpy(float)
        rel = np.abs(x - y) / np.maximum(np.abs(x), 1e-300)
        rows.append({"metric": m, "mean a": np.nanmean(x), "mean b": np.nanmean(y), "median rel diff": np.nanmedian(rel)})
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    main()
