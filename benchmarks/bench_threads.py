"""Torch threads per worker, measured: the same runs with 1 and with 2 (or --threads) intra-op threads, on a quiet
CPU and with another process busy on one core (what a second sweep, a test runner or a browser does to a laptop),
side by side in one run. This is what decides `convlab.study.execute.threads_per_worker`.

    python benchmarks/bench_threads.py [--threads 1 2] [--repeats 2]

Workloads: a batch of the quickstart's pipeline runs (one teacher trained, five students as one stack) and a batch
of its solver runs (exact-field flows). Ratio = time with n threads / time with 1 thread (below 1: more threads
help).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import torch

from convlab.runs import RUN_KINDS, ArtefactCache
from convlab.runs.artefacts import clear_memo

PIPELINE = {
    "kind": "characteristic",
    "target": {"name": "ring8"},
    "interpolant": "follmer",
    "T": 0.999,
    "teacher": {"n": 2000, "net": {"width": 64}, "optim": {"steps": 600}},
    "characteristics": {"m": 1000, "grid": "quadratic"},
    "student": {"net": {"width": 64}, "optim": {"steps": 300}},
    "eval": {"n_coupled": 1000, "n_w2": 500, "n_velocity": 2000, "floor_repeats": 1},
    "reference": {"K": 512},
}
FLOW = {
    "kind": "flow",
    "target": {"name": "ring8"},
    "interpolant": "follmer",
    "T": 0.999,
    "grid": "quadratic",
    "n_coupled": 1000,
    "n_w2": 500,
    "reference": {"solver": "rk4", "K": 1024, "grid": "quadratic"},
}
WORKLOADS = {
    "pipeline batch (5 runs)": [
        {**PIPELINE, "characteristics": {**PIPELINE["characteristics"], "K": K}} for K in (2, 4, 8, 16, 32)
    ],
    "flow runs (8)": [{**FLOW, "solver": s, "K": K} for s in ("euler", "heun") for K in (8, 32, 128, 512)],
}


def timed(cfgs: list[dict], threads: int) -> float:
    torch.set_num_threads(threads)
    clear_memo()
    kind = RUN_KINDS[cfgs[0]["kind"]]
    start = time.perf_counter()
    if kind.batch is not None:
        kind.run_batch(cfgs, device="cpu", cache=ArtefactCache())
    else:
        for cfg in cfgs:
            kind.run(cfg, device="cpu", cache=ArtefactCache())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"{'workload':<26} {'load':<12} " + " ".join(f"{f'{n} thr (s)':>10}" for n in args.threads) + "  ratio")
    for load in ("quiet", "one core busy"):
        busy = None
        if load != "quiet":
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(0.5)
        try:
            for name, cfgs in WORKLOADS.items():
                timed(cfgs[:1], args.threads[0])  # warm-up: imports, allocator
                times = {n: [] for n in args.threads}
                for _ in range(args.repeats):  # interleaved, so drifts in the machine's load hit every setting
                    for n in args.threads:
                        times[n].append(timed(cfgs, n))
                med = {n: statistics.median(v) for n, v in times.items()}
                ratios = " ".join(f"{med[n] / med[args.threads[0]]:.2f}x" for n in args.threads[1:])
                print(f"{name:<26} {load:<12} " + " ".join(f"{med[n]:>10.2f}" for n in args.threads) + f"  {ratios}")
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()


if __name__ == "__main__":
    main()
