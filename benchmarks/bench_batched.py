"""Batched training against one network at a time, side by side in one run on one device.

    python benchmarks/bench_batched.py [--members 32] [--steps 200] [--sizes 1,2,4,8,16,32,64] [--device auto]
                                      [--out benchmarks/results]

1. `--members` ring8 teachers (the default teacher: MLP 128 x 3, batch 256, Adam, clipping, cosine schedule), each
   with its own seed, data and streams: trained one at a time (a stack of one each, as an unbatched sweep trains
   them) and as one stack (as a batched sweep does). Reported: ms per member-step and the ratio one-at-a-time /
   batched (goal: >= 2x on a 2-core CPU, >= 20x on an H100).
2. The machine's limit, measured in the same run: the matrix products of one member-step (counted by torch's
   FlopCounterMode on the member's forward and backward) and the rate of the same products batched over the
   stack (torch.bmm on the layers' shapes, forward and both backward products). Their ratio is the floor: the
   time a member-step would take if it were nothing but its matrix products at that rate. Reported: the fraction
   of the floor the batched loop reaches (floor / measured; the rest is the loop's elementwise work: activations,
   the loss, Adam, clipping, data drawing).
3. Throughput (member-steps per second) against the stack size, written to <out>/batched_<device>.json and drawn
   to <out>/batched_<device>.png.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from convlab.device import resolve_device
from convlab.interpolants import as_interpolant
from convlab.models.stack import Member, train_stack
from convlab.pipeline import PipelineSpec
from convlab.pipeline.teacher import teacher_draws, teacher_loss, untrained_teacher
from convlab.targets import make_target


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def teachers(k: int, steps: int, device: torch.device):
    """k members of the default teacher stage on ring8, seeds 0..k-1, on `device`."""
    target, members = make_target({"name": "ring8"}), []
    for seed in range(k):
        spec = PipelineSpec(seed=seed)
        spec = replace(spec, teacher=replace(spec.teacher, optim=replace(spec.teacher.optim, steps=steps)))
        field = untrained_teacher(spec, target, as_interpolant(spec.interpolant), device)
        x1 = target.sample(spec.teacher.n, generator=seed, device=device, dtype=torch.float32)
        members.append((field, Member(field.net, spec.teacher.optim, teacher_draws(spec, x1, device))))
    return members


def loss_for(field):
    return teacher_loss(field.interpolant, field.parametrization, "velocity")


def timed(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def one_at_a_time(k: int, steps: int, device) -> float:
    ms = teachers(k, steps, device)
    return timed(lambda: [train_stack([m], loss_for(f)) for f, m in ms], device)


def batched(k: int, steps: int, device) -> float:
    ms = teachers(k, steps, device)
    return timed(lambda: train_stack([m for _, m in ms], loss_for(ms[0][0])), device)


def member_step_flops(device) -> float:
    """FLOPs of the matrix products of one member-step: the teacher's loss, forward and backward."""
    ((field, member),) = teachers(1, 1, device)
    with FlopCounterMode(display=False) as counter:
        loss_for(field)(field.net, member.draw(0)).backward()
    return counter.get_total_flops()


def gemm_rate(k: int, device, repeats: int = 20) -> float:
    """GFLOP/s of one member-step's matrix products batched over k members (best of 5 timings)."""
    ((field, member),) = teachers(1, 1, device)
    B = member.optim.batch_size
    products = []
    for layer in (m for m in field.net.modules() if isinstance(m, nn.Linear)):
        i, o = layer.in_features, layer.out_features
        # forward x W^T, the gradient to the input g W, the gradient to the weight g^T x
        products += [((k, B, i), (k, i, o)), ((k, B, o), (k, o, i)), ((k, o, B), (k, B, i))]
    pairs = [(torch.randn(a, device=device), torch.randn(b, device=device)) for a, b in products]
    probe_flops = sum(2 * a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2] for a, b in pairs)
    run = lambda: [torch.bmm(a, b) for _ in range(repeats) for a, b in pairs]  # noqa: E731
    run()  # warm-up
    seconds = min(timed(run, device) for _ in range(5))
    return repeats * probe_flops / seconds / 1e9


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--members", type=int, default=32)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--sizes", default="1,2,4,8,16,32,64")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args()
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    k, steps = args.members, args.steps
    batched(2, 5, device)  # warm-up (kernels, allocator)
    alone, together = one_at_a_time(k, steps, device), batched(k, steps, device)
    flops = member_step_flops(device)
    rates = {s: gemm_rate(s, device) for s in sorted({1, 4, 8, k})}  # the products' rate depends on the stack
    per = k * steps / 1e3
    floor = flops / rates[k] / 1e6  # ms per member-step at the batched-GEMM rate of this stack
    best = flops / max(rates.values()) / 1e6  # ... and at the best rate of these shapes (a smaller stack's)
    print(
        f"{k} ring8 teachers (MLP 128 x 3, batch 256, Adam), {steps} steps each, on {device} ({name}, "
        f"{torch.get_num_threads()} threads)"
    )
    print(f"  one at a time, stacks of 1      {alone / per:7.3f} ms per member-step")
    print(f"  batched, one stack of {k:<3}      {together / per:7.3f} ms per member-step")
    print(f"  ratio one-at-a-time / batched   {alone / together:7.2f}x")
    print(
        f"  matrix products: {flops / 1e6:.1f} MFLOP per member-step; torch.bmm on the same shapes: "
        + ", ".join(f"{r:.0f} GFLOP/s (stack of {s})" for s, r in rates.items())
    )
    print(
        f"  floor {floor:.3f} ms per member-step at the stack of {k}'s rate: the batched loop reaches "
        f"{floor / (together / per):.0%} of it ({best / (together / per):.0%} of the best rate's {best:.3f} ms)"
    )
    sizes = [int(s) for s in args.sizes.split(",")]
    throughput = {}
    for s in sizes:
        throughput[s] = s * steps / batched(s, steps, device)
        print(f"  stack of {s:<4} {throughput[s]:9.0f} member-steps/s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "device": str(device),
        "device_name": name,
        "threads": torch.get_num_threads(),
        "members": k,
        "steps": steps,
        "ms_per_member_step": {"one_at_a_time": alone / per, "batched": together / per, "gemm_floor": floor},
        "ratio": alone / together,
        "mflop_per_member_step": flops / 1e6,
        "gemm_gflops": rates,
        "fraction_of_floor": floor / (together / per),
        "fraction_of_best_rate": best / (together / per),
        "throughput": throughput,
    }
    (out / f"batched_{device.type}.json").write_text(json.dumps(record, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot(list(throughput), list(throughput.values()), "o-", label="batched")
    ax.axhline(k * steps / alone, ls="--", c="gray", label="one at a time")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="networks per stack",
        ylabel="member-steps per second",
        title=f"ring8 teachers on {device.type} ({name})",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / f"batched_{device.type}.png", dpi=150)
    print(f"wrote {out / f'batched_{device.type}.json'} and .png")


if __name__ == "__main__":
    main()
