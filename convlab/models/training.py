"""The training of one network (the JKO blocks; teachers and students go through models.stack.train_stack, which
implements the same update per member): Adam/RAdam, warmup + cosine schedule, gradient clipping, EMA, and
divergence detection that never syncs with the host more than once per `check_every` steps."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class Optim:
    """Optimiser, schedule and regularisation of one training: Adam or RAdam ('adam', 'radam') at `lr`, linear
    warmup over `warmup_steps`, then a 'constant' or 'cosine' schedule to `steps`; batches of `batch_size`; the
    gradient norm clipped to `grad_clip` per network (None: no clipping); EMA of the weights with decay `ema`
    (None: off -- on short runs with a decaying lr it lags the weights, measured); L2 `weight_decay`."""

    optimizer: str = "adam"
    lr: float = 2e-3
    schedule: str = "cosine"
    warmup_steps: int = 0
    steps: int = 2000
    batch_size: int = 256
    grad_clip: float | None = 1.0
    ema: float | None = None
    weight_decay: float = 0.0


class Divergence(RuntimeError):
    """Training produced a non-finite loss; carries the step where it was seen."""

    def __init__(self, step: int, loss: float):
        super().__init__(f"non-finite loss ({loss}) by step {step}")
        self.step, self.loss = step, loss


class EMA:
    """theta_ema <- decay theta_ema + (1 - decay) theta after every step.

    torch.optim.swa_utils.AveragedModel does the same but reads a device counter into a Python bool on
    every update, a host round trip per step on a GPU; one fused lerp over the parameters does not.
    """

    def __init__(self, module: nn.Module, decay: float):
        self.decay = decay
        self.params = [p for p in module.parameters()]
        self.shadow = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self) -> None:
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1.0 - self.decay)

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        for p, s in zip(module.parameters(), self.shadow):
            p.copy_(s)


def make_optimizer(params, cfg: Optim) -> torch.optim.Optimizer:
    cls = {"adam": torch.optim.Adam, "radam": torch.optim.RAdam}[cfg.optimizer]
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(cfg: Optim) -> Callable[[int], float]:
    """Linear warmup over warmup_steps, then constant or cosine decay to 0 at `steps`."""

    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == "constant":
            return 1.0
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


@dataclass
class TrainLog:
    """Loss history (mean over each window of `check_every` steps), the final window's mean (None without steps),
    wall time."""

    steps: int
    final_loss: float | None
    history: list[float] = field(default_factory=list)
    seconds: float = 0.0
    snapshot: dict | None = None  # train_stack's snapshot_at weights (a state dict of the trainable parameters)
    # held-out selection (stack.Member.heldout): the step whose weights were kept, its held-out loss, and every check
    best_step: int | None = None
    best_heldout_loss: float | None = None
    heldout_history: list[tuple[int, float]] = field(default_factory=list)


def train(module: nn.Module, loss_fn: Callable[[int], Tensor], cfg: Optim, *, check_every: int = 50) -> TrainLog:
    """Minimise loss_fn(step) over module's parameters for cfg.steps steps; EMA weights are loaded at the end.

    Raises Divergence when a loss is not finite (checked every `check_every` steps, so at most that many
    steps run past the first bad one).
    """
    start = time.perf_counter()
    params = [p for p in module.parameters() if p.requires_grad]
    opt = make_optimizer(params, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(cfg))
    ema = EMA(module, cfg.ema) if cfg.ema is not None else None
    window: list[Tensor] = []
    history: list[float] = []
    module.train()
    for step in range(cfg.steps):
        loss = loss_fn(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip is not None:
            nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        sched.step()
        if ema is not None:
            ema.update()
        window.append(loss.detach())
        if len(window) == check_every or step == cfg.steps - 1:
            mean = torch.stack(window).mean().item()  # the one host sync per window
            window.clear()
            if not math.isfinite(mean):
                raise Divergence(step, mean)
            history.append(mean)
    if ema is not None:
        ema.copy_to(module)
    module.eval()
    return TrainLog(cfg.steps, history[-1] if history else None, history, time.perf_counter() - start)
