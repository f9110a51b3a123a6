"""Sweep throughput: the same CPU study with `convlab sweep --jobs 2` and `--jobs 1`, side by side in one run.

    python benchmarks/bench_sweep.py [--runs 12] [--repeats 2] [--steps 600]

The study is the characteristic pipeline on the ring (teacher and student training dominate, a few seconds a
run), every run with its own teacher so no run waits on another. Each repeat runs both job counts into fresh
result directories, alternating which goes first; the speed-up is the ratio of median wall times (target
>= 1.7x on 2 cores). The two tables must hold the same numbers: worker count changes nothing but speed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

STUDY = """\
name: bench_sweep
base:
  kind: characteristic
  target: {{name: ring8}}
  teacher: {{n: 2000, optim: {{steps: {steps}}}}}
  characteristics: {{K: 8, m: 1000}}
  student: {{optim: {{steps: {steps}}}}}
  eval: {{n_coupled: 1000, n_w2: 500}}
  reference: {{K: 256}}
grid:
  teacher.n: {ns}
seeds: 1
"""


def sweep(study: Path, out: Path, jobs: int) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "convlab",
            "sweep",
            str(study),
            "--jobs",
            str(jobs),
            "--out",
            str(out),
            "--no-post",
            "--device",
            "cpu",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "TERM": "dumb"},
    )
    wall = time.perf_counter() - start
    subprocess.run(
        [sys.executable, "-m", "convlab", "collect", str(study), "--out", str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return wall


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=12)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--steps", type=int, default=600)
    args = p.parse_args(argv)
    ns = [1000 + 10 * i for i in range(args.runs)]  # distinct teachers, equal cost
    times: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "bench_sweep.yaml"
        study.write_text(STUDY.format(steps=args.steps, ns=ns))
        tables = {}
        for r in range(args.repeats):
            for jobs in (1, 2) if r % 2 == 0 else (2, 1):
                out = Path(tmp) / f"out{r}_{jobs}"
                times[jobs].append(sweep(study, out, jobs))
                tables[jobs] = pd.read_parquet(out / "bench_sweep" / "results.parquet")
                print(f"repeat {r}: --jobs {jobs}: {times[jobs][-1]:.1f} s for {args.runs} runs", flush=True)
    metrics = [c for c in tables[1] if c.endswith("_error")]
    same = tables[1][metrics].equals(tables[2][metrics])
    t1, t2 = statistics.median(times[1]), statistics.median(times[2])
    print(
        f"\n{args.runs} runs, median of {args.repeats}: --jobs 1 {t1:.1f} s, --jobs 2 {t2:.1f} s, "
        f"speed-up {t1 / t2:.2f}x (target >= 1.7x on 2 cores); metrics identical across job counts: {same}"
    )


if __name__ == "__main__":
    main()
