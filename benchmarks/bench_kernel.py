"""The kernel teacher at growing n: time to build it (held-out bandwidth selection over 17 bandwidths) and to
evaluate its field, and the peak memory, one fresh process per n so that the peaks do not mix.

    python benchmarks/bench_kernel.py [--sizes 1000,4000,16000] [--points 1000] [--device auto]

The field of the smoothed sample is the exact velocity of an n-component isotropic mixture, evaluated in blocks of
points x components under a fixed element budget (convlab.targets.GaussianMixture.chunk_size) with a streaming
log-sum-exp, so its memory should not grow with n; the time grows like n x points.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch


def one(n: int, points: int, device: str) -> dict:
    from convlab.device import resolve_device
    from convlab.interpolants import as_interpolant
    from convlab.pipeline.teacher import kernel_teacher
    from convlab.runs.characteristic import CharacteristicRun
    from convlab.targets import make_target

    dev = resolve_device(device)
    cfg = CharacteristicRun(target={"name": "ring8"}, teacher={"kind": "kernel", "n": n}, student={"init": "random"})
    target, ip = make_target(cfg.target), as_interpolant(cfg.interpolant)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    start = time.perf_counter()
    teacher = kernel_teacher(cfg, target, ip, dev)
    build = time.perf_counter() - start
    x = torch.randn(points, 2, device=dev, generator=torch.Generator(dev).manual_seed(0))
    t = torch.full((points,), 0.5, device=dev)
    teacher.field.velocity(t, x)  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    start = time.perf_counter()
    for _ in range(5):
        teacher.field.velocity(t, x)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    per_eval = (time.perf_counter() - start) / 5
    peak = (
        torch.cuda.max_memory_allocated(dev) / 2**20
        if dev.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
    )
    return {
        "n": n,
        "device": str(dev),
        "bandwidth": teacher.info["teacher_bandwidth"],
        "build_s": build,
        "eval_s": per_eval,
        "peak_mib": peak,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="1000,4000,16000")
    p.add_argument("--points", type=int, default=1000)
    p.add_argument("--device", default="auto")
    p.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one, args.points, args.device)))
        return
    print(f"kernel teacher on ring8: build (held-out bandwidth) and velocity on {args.points} points")
    print(f"{'n':>8} {'device':>8} {'h':>8} {'build s':>9} {'eval ms':>9} {'peak MiB':>9}")
    for n in map(int, args.sizes.split(",")):
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(n), "--points", str(args.points), "--device", args.device],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{r['n']:>8} {r['device']:>8} {r['bandwidth']:8.4f} {r['build_s']:9.2f} {r['eval_s'] * 1e3:9.1f} "
            f"{r['peak_mib']:9.0f}"
        )
    print("(peak: growth of the process's resident set on a CPU, torch's peak allocation on a GPU)")


if __name__ == "__main__":
    main()
