"""Training-step throughput of convlab's teacher and student stages against bare hand-written PyTorch loops
with the same network, batch, optimiser, clipping and schedule, side by side in one run; then the per-stage
wall times of one 2-D run.

    python benchmarks/bench_training.py [--steps 400] [--repeats 3] [--device auto]

The ratio is convlab time / bare time per step (median of --repeats, interleaved): target <= 1.15x.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from convlab.device import resolve_device
from convlab.interpolants import as_interpolant
from convlab.models.nets import TwoTimeNet, VelocityNet
from convlab.pipeline import build_teacher, characteristics, fit_student
from convlab.runs import RUN_KINDS
from convlab.runs.characteristic import CharacteristicRun
from convlab.runs.config import core
from convlab.targets import make_target


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cosine(steps):
    return lambda s: 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0)))


def bare_teacher(cfg: CharacteristicRun, x1_train, device) -> float:
    """Velocity matching for follmer, written out by hand."""
    torch.manual_seed(0)
    net = VelocityNet(x1_train.shape[1], cfg.teacher.net).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.teacher.optim.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine(cfg.teacher.optim.steps))
    g = torch.Generator(device).manual_seed(0)
    B, n, D, T = cfg.teacher.optim.batch_size, x1_train.shape[0], x1_train.shape[1], cfg.T
    sync(device)
    start = time.perf_counter()
    for _ in range(cfg.teacher.optim.steps):
        x1 = x1_train[torch.randint(n, (B,), generator=g, device=device)]
        z = torch.randn(B, D, generator=g, device=device)
        t = T * torch.rand(B, generator=g, device=device)
        a = torch.sqrt(1 - t * t)[:, None]
        xt = a * z + t[:, None] * x1
        target = (-t[:, None] / a) * z + x1
        loss = (net(t, xt) - target).pow(2).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.teacher.optim.grad_clip)
        opt.step()
        sched.step()
    loss.item()
    sync(device)
    return time.perf_counter() - start


def bare_student(cfg: CharacteristicRun, paths, times, device) -> float:
    """Pairs k < l plus the semigroup penalty for g = x + (t - s) f(s, t, x), written out by hand."""
    torch.manual_seed(0)
    net = TwoTimeNet(paths.shape[2], cfg.student.net).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.student.optim.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine(cfg.student.optim.steps))
    g = torch.Generator(device).manual_seed(0)
    B, K1, m = cfg.student.optim.batch_size, paths.shape[0], paths.shape[1]
    lam = cfg.student.semigroup_weight

    def gmap(s, t, x):
        return x + (t - s)[:, None] * net(s, t, x)

    sync(device)
    start = time.perf_counter()
    for _ in range(cfg.student.optim.steps):
        rows = torch.randint(m, (B,), generator=g, device=device)
        kl = torch.rand(B, K1, generator=g, device=device).argsort(1)[:, :2].sort(1).values
        fit = (
            (gmap(times[kl[:, 0]], times[kl[:, 1]], paths[kl[:, 0], rows]) - paths[kl[:, 1], rows]).pow(2).sum(1).mean()
        )
        rows3 = torch.randint(m, (B,), generator=g, device=device)
        idx = torch.rand(B, K1, generator=g, device=device).argsort(1)[:, :3].sort(1).values
        s, t, u = times[idx[:, 0]], times[idx[:, 1]], times[idx[:, 2]]
        x = paths[idx[:, 0], rows3]
        pen = (gmap(s, u, x) - gmap(t, u, gmap(s, t, x))).pow(2).sum(1).mean()
        loss = fit + lam * pen
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.student.optim.grad_clip)
        opt.step()
        sched.step()
    loss.item()
    sync(device)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    device = resolve_device(args.device)
    steps = {"optim": {"steps": args.steps}}
    cfg = CharacteristicRun(
        target={"name": "ring8"},
        teacher={**steps, "n": 2000},
        student={**steps, "init": "random"},
        characteristics={"K": 16, "m": 2000},
    )
    target, ip = make_target(cfg.target), as_interpolant(cfg.interpolant)
    x1 = target.sample(2000, generator=0, device=device, dtype=torch.float32)
    spec = core(cfg)  # the pipeline's own description of the run
    teacher = build_teacher(spec, target, ip, device)
    chars = characteristics(
        teacher, spec, torch.randn(2000, 2, device=device, generator=torch.Generator(device).manual_seed(1))
    )
    times = {"teacher": ([], []), "student": ([], [])}
    for _ in range(args.repeats):
        times["teacher"][0].append(build_teacher(spec, target, ip, device).info["time_teacher_train_s"])
        times["teacher"][1].append(bare_teacher(cfg, x1, device))
        # The training alone on both sides: a trained network's convergence check (a second, half-length training)
        # is not part of a training step, and the teacher's time excludes it too.
        times["student"][0].append(fit_student(teacher, chars, spec)[1]["time_student_train_s"])
        times["student"][1].append(bare_student(cfg, chars.paths, chars.times, device))
    print(
        f"training throughput on {device} ({torch.get_num_threads()} threads), {args.steps} steps, batch "
        f"{cfg.teacher.optim.batch_size}, MLP {cfg.teacher.net.width}x{cfg.teacher.net.depth}, median of {args.repeats}"
    )
    for stage, (ours, bare) in times.items():
        o, b = statistics.median(ours), statistics.median(bare)
        print(
            f"  {stage:<8} convlab {o / args.steps * 1e3:6.2f} ms/step   bare {b / args.steps * 1e3:6.2f} ms/step   "
            f"ratio {o / b:.3f}x (target <= 1.15x)"
        )
    record = RUN_KINDS["characteristic"].run(CharacteristicRun(target={"name": "ring8"}), device=device).as_dict()
    print("per-stage wall time of one default 2-D run (ring8, 2000 teacher + 2000 student steps, K = 16, m = 2000):")
    for key in ("time_teacher_s", "time_characteristics_s", "time_student_s", "time_eval_s", "time_total_s"):
        print(f"  {key:<24} {record[key]:7.2f} s")


if __name__ == "__main__":
    main()
