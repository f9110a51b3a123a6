"""Exact mixture velocity for N isotropic atoms against its floor, the bare matrix product, in one run.

    python benchmarks/bench_mixture.py [--N 16384] [--n 4096] [--D 64] [--dtype float32] [--repeats 5]

floor:    x @ means.T, the (n, N) product of the points with the means the velocity must touch.
velocity: GaussianMixture.velocity (streamed softmax; two products plus one exp pass).
Peak memory: each chunk_size runs in a fresh process; the peak resident-set growth of one velocity call
(VmHWM after a reset through /proc/self/clear_refs, so Linux only) is reported beside the size of the floor's own
(n, N) output, to show memory follows the chunk setting.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

from convlab.targets import sphere_atoms


def setup(args, chunk_size=2**22):
    dtype = getattr(torch, args.dtype)
    target = sphere_atoms(d=4, D=args.D, s=0.05, n_atoms=args.N, seed=0)
    target.chunk_size = chunk_size
    x = target.sample(args.n, generator=1, dtype=dtype)
    return target, x


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def peak_rss_child(args, chunk_size) -> None:
    target, x = setup(args, chunk_size)
    target.velocity(0.5, x[:2], "follmer")  # caches the parameters on this dtype
    before = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:  # Linux: reset the high-water mark VmHWM to the current RSS
        f.write("5")
    target.velocity(0.5, x, "follmer")
    print(json.dumps({"peak_growth_mib": (_status_kib("VmHWM") - before) / 1024}))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--N", type=int, default=16384)
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--D", type=int, default=64)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--child-chunk", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child_chunk:
        return peak_rss_child(args, args.child_chunk)

    target, x = setup(args)
    means = target.means.to(x.dtype)
    target.velocity(0.5, x[:2], "follmer")
    floor = best_of(lambda: x @ means.T, args.repeats)
    vel = best_of(lambda: target.velocity(0.5, x, "follmer"), args.repeats)
    print(
        f"N = {args.N} isotropic atoms, n = {args.n}, D = {args.D}, {args.dtype}, {torch.get_num_threads()} threads, "
        f"median of {args.repeats}"
    )
    print(f"  floor x @ means.T : {floor * 1e3:8.1f} ms")
    print(f"  velocity          : {vel * 1e3:8.1f} ms   ratio {vel / floor:.2f}x the floor (target <= 3x)")
    itemsize = torch.empty(0, dtype=x.dtype).element_size()
    print(f"  the floor's own (n, N) output: {args.n * args.N * itemsize / 2**20:.0f} MiB")
    for chunk in (2**18, 2**20, 2**22, 2**24):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--N",
                str(args.N),
                "--n",
                str(args.n),
                "--D",
                str(args.D),
                "--dtype",
                args.dtype,
                "--child-chunk",
                str(chunk),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        growth = json.loads(out.stdout)["peak_growth_mib"]
        print(
            f"  chunk_size 2^{chunk.bit_length() - 1:<2}: block {chunk * itemsize / 2**20:6.1f} MiB, "
            f"peak RSS growth {growth:7.1f} MiB"
        )


if __name__ == "__main__":
    main()
