"""What a training is, apart from the loop that runs it (convlab.models.stack, the one loop: `train` for one network,
`train_stack` for several): the optimiser settings (Optim), the learning-rate schedule, the log it returns and the
Divergence it raises or records."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field


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
