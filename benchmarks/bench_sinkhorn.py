"""geomloss's debiased Sinkhorn W2 against the exact W2, side by side in one run: is it usable beyond n = 4000?

    python benchmarks/bench_sinkhorn.py [--sizes 500,1000,2000] [--exact-sizes 4000,8000,16000] [--device auto]

For each n: two independent ring8 samples, one scaled by 1.05 (a W2 of the size the studies measure), the exact W2
(convlab.metrics.exact_w2: network simplex or assignment, convergence checked), the target's two-sample noise
floor and its sd at n, and convlab.metrics.sinkhorn_w2 at several (blur, scaling) settings with its marginal
error (the plan of the final potentials against the uniform marginals). A setting is adoptable at n only when it
converged (marginal error < 1e-3) and |sinkhorn - exact| < 0.1 x the floor's sd. Then the exact solver's time at
larger n, which is what a study pays without Sinkhorn.
"""

from __future__ import annotations

import argparse
import time

import torch

from convlab.device import resolve_device
from convlab.metrics import exact_w2
from convlab.metrics.w2 import noise_floor_w2, sinkhorn_w2
from convlab.targets import make_target

SETTINGS = [(0.05, 0.9), (0.05, 0.99), (0.01, 0.99)]  # (blur, scaling); geomloss's defaults are (0.05, 0.5)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="500,1000,2000")
    p.add_argument("--exact-sizes", default="4000,8000,16000")
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    device = resolve_device(args.device)
    target = make_target({"name": "ring8"})
    g = torch.Generator().manual_seed(0)
    print(f"ring8, W2(sample, 1.05 x independent sample), float64; Sinkhorn on {device}")
    for n in map(int, args.sizes.split(",")):
        x = target.sample(n, generator=g, dtype=torch.float64)
        y = 1.05 * target.sample(n, generator=g, dtype=torch.float64)
        exact, t_exact = timed(lambda: exact_w2(x, y))
        floor = noise_floor_w2(target, n, generator=1, repeats=5)
        print(f"n = {n}: exact {exact:.4f} ({t_exact:.2f} s), floor {floor.mean:.4f} sd {floor.sd:.4f}")
        for blur, scaling in SETTINGS:
            sk, t_sk = timed(lambda: sinkhorn_w2(x.to(device), y.to(device), blur=blur, scaling=scaling))
            bias = sk.w2 - exact
            ok = sk.converged and abs(bias) < 0.1 * floor.sd
            print(
                f"  blur {blur:<5} scaling {scaling:<5} {sk.w2:.4f}  bias {bias:+.4f} ({bias / exact:+.1%}, "
                f"{abs(bias) / floor.sd:.2f} floor sd)  marginal error {sk.marginal_error:.1e}  {t_sk:6.2f} s  "
                f"{'adoptable' if ok else 'not adoptable'}"
            )
    print("exact W2 beyond: time per solve")
    for n in map(int, args.exact_sizes.split(",")):
        x = target.sample(n, generator=g, dtype=torch.float64)
        y = 1.05 * target.sample(n, generator=g, dtype=torch.float64)
        w2, t = timed(lambda: exact_w2(x, y))
        print(f"  n = {n:>6}: {w2:.4f} in {t:7.2f} s")


if __name__ == "__main__":
    main()
