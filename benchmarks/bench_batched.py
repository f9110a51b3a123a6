"""Batched training against one network at a time, side by side in one run on one device.

    python benchmarks/bench_batched.py [--members 32] [--steps 200] [--sizes 1,2,4,8,16,32,64] [--device auto]
                                      [--out benchmarks/results]

1. `--members` ring8 teachers (the default teacher: MLP 128 x 3, batch 256, Adam, clipping, cosine schedule), each
   with its own seed, data and streams: trained one at a time (a stack of one each, as an unbatched sweep trains
   them), as one stack (as a batched sweep does), and one at a time with torch.optim on the nn.Module (the
   pre-batching loop, convlab.models.training.train) for reference. Reported: ms per member-step and the ratio
   one-at-a-time / batched (goal: >= 2x on a 2-core CPU, >= 20x on an H100).
2. Throughput (member-steps per second) against the stack size, written to <out>/batched_<device>.json and drawn
   to <out>/batched_<device>.png.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from convlab.device import resolve_device
from convlab.interpolants import as_interpolant
from convlab.models.stack import Member, train_stack
from convlab.models.training import train
from convlab.pipeline.teacher import teacher_draws, teacher_loss, untrained_teacher
from convlab.runs.characteristic import CharacteristicRun
from convlab.targets import make_target


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def teachers(k: int, steps: int, device: torch.device):
    """k members of the default teacher stage on ring8, seeds 0..k-1, on `device`."""
    target, members = make_target({"name": "ring8"}), []
    for seed in range(k):
        cfg = CharacteristicRun(seed=seed, target={"name": "ring8"}, teacher={"optim": {"steps": steps}})
        field = untrained_teacher(cfg, target, as_interpolant(cfg.interpolant), device)
        x1 = target.sample(cfg.teacher.n, generator=seed, device=device, dtype=torch.float32)
        members.append((cfg, field, Member(field.net, cfg.teacher.optim, teacher_draws(cfg, x1, device))))
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
    return timed(lambda: [train_stack([m], loss_for(f)) for _, f, m in ms], device)


def batched(k: int, steps: int, device) -> float:
    ms = teachers(k, steps, device)
    return timed(lambda: train_stack([m for _, _, m in ms], loss_for(ms[0][1])), device)


def torch_optim_loop(k: int, steps: int, device) -> float:
    ms = teachers(k, steps, device)

    def run():
        for _, field, m in ms:
            train(field.net, lambda step, m=m, field=field: loss_for(field)(field.net, m.draw(step)), m.cfg)

    return timed(run, device)


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
    alone, together, loop = (
        one_at_a_time(k, steps, device),
        batched(k, steps, device),
        torch_optim_loop(k, steps, device),
    )
    per = k * steps / 1e3
    print(
        f"{k} ring8 teachers (MLP 128 x 3, batch 256, Adam), {steps} steps each, on {device} ({name}, "
        f"{torch.get_num_threads()} threads)"
    )
    print(f"  one at a time, stacks of 1      {alone / per:7.3f} ms per member-step")
    print(f"  one at a time, torch.optim loop {loop / per:7.3f} ms per member-step")
    print(f"  batched, one stack of {k:<3}      {together / per:7.3f} ms per member-step")
    print(
        f"  ratio one-at-a-time / batched   {alone / together:7.2f}x  "
        f"(torch.optim loop / batched {loop / together:.2f}x)"
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
        "ms_per_member_step": {"one_at_a_time": alone / per, "torch_optim_loop": loop / per, "batched": together / per},
        "ratio": alone / together,
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
