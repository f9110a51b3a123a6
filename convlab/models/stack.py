"""Training S same-shaped networks as one computation: their parameters stacked along a leading member axis,
one forward and backward for all of them through torch.func.vmap, and per-member Adam/RAdam, schedule,
gradient clipping, EMA and divergence check. `train` is the same loop for one network (a stack of one): every
network of convlab -- teachers, students, JKO blocks -- is trained here.

Each member is exactly what it would be trained alone: its own data and random streams (its `draw` function,
called outside the vmapped computation), its own optimiser state, learning rate, schedule, clipping norm (never a
norm across members) and EMA. A member whose loss is not finite becomes a Divergence; the others go on.

Why vmap over stacked parameters: a step of one small MLP is launch- and dispatch-bound, and S of them stacked
cost about what one costs until the device is busy (benchmarks/bench_batched.py measures the ratio). Why the
optimiser is written out here: torch.optim takes one learning rate per parameter tensor, and a stacked tensor
holds S members with their own learning rates and schedules; the update below is torch's single-tensor Adam and
RAdam, operation for operation, with the learning rate as a per-member column.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from convlab.models.training import Divergence, Optim, TrainLog, lr_factor

BETAS, EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's and RAdam's defaults


@dataclass
class Member:
    """One network of a stack: the module (trained in place), its optimiser settings, and draw(step), which
    returns the tensors of its loss for that step from its own streams and data. `heldout`: the tensors of its
    loss on held-out data, drawn once; with them the member keeps the weights of its lowest held-out loss (checked
    every `check_every` steps and at the last), not its last weights: an estimator defined by its data alone, where
    "the last step" depends on the budget."""

    module: nn.Module
    optim: Optim
    draw: Callable[[int], tuple[Tensor, ...]]
    heldout: tuple[Tensor, ...] | None = None


def stack_key(cfg: Optim) -> tuple:
    """What members of one stack must share: the optimiser (the update rule), the step count and batch size (one
    loop, one tensor shape). Learning rate, schedule, warmup, clipping, EMA and weight decay may differ."""
    return (cfg.optimizer, cfg.steps, cfg.batch_size)


def halfway(steps: int) -> int | None:
    """The step count of the convergence check's second network: half the training (None below 2 steps)."""
    return steps // 2 if steps >= 2 else None


def train_checked(
    members: Sequence[Member], loss: Callable, fresh: Callable[[int, Optim], Member]
) -> tuple[list[TrainLog | Divergence], list[dict | None]]:
    """train_stack, and per member the weights of the same network trained for half the steps (its own schedule),
    for the convergence check: "doubling the steps moved the error by less than tol".

    With a constant schedule the weights after k of N steps do not depend on N, so they are a snapshot of this
    training; otherwise fresh(i, cfg) -- member i rebuilt from its initialisation and streams with optimiser cfg --
    is trained for half the steps in a second stack (one and a half times the training).
    """
    half = halfway(members[0].optim.steps) if members else None
    if half is None:
        return list(train_stack(members, loss)), [None] * len(members)
    if all(m.optim.schedule == "constant" for m in members):
        logs = train_stack(members, loss, snapshot_at=half)
        return logs, [None if isinstance(log, Divergence) else log.snapshot for log in logs]
    logs = train_stack(members, loss)
    copies = [fresh(i, dataclasses.replace(m.optim, steps=half)) for i, m in enumerate(members)]
    states = []
    for copy_, log in zip(copies, train_stack(copies, loss)):
        params = dict(copy_.module.named_parameters())
        states.append(None if isinstance(log, Divergence) else {k: v.detach().clone() for k, v in params.items()})
    return logs, states


def at_snapshot(module: nn.Module, snapshot: dict | None) -> nn.Module | None:
    """A copy of `module` in eval mode with a snapshot's weights (train_checked's halves); None without one."""
    if snapshot is None:
        return None
    twin = copy.deepcopy(module)
    twin.load_state_dict(snapshot, strict=False)  # parameters only; copy_ moves them to the module's device
    return twin.eval()


def _column(values: Sequence[float], like: Tensor) -> Tensor:
    """Per-member scalars as a (S, 1, ..., 1) tensor against a stacked parameter."""
    return torch.tensor(values, dtype=like.dtype, device=like.device).reshape(-1, *([1] * (like.ndim - 1)))


def train_stack(
    members: Sequence[Member],
    loss: Callable[[Callable[..., Tensor], tuple[Tensor, ...]], Tensor],
    *,
    check_every: int = 50,
    snapshot_at: int | None = None,
) -> list[TrainLog | Divergence]:
    """Minimise loss(model, member.draw(step)) for every member; model is a callable with the module's forward.

    Returns, per member, its TrainLog (the module holds the trained, or EMA, weights; for a member with `heldout`
    data, those of its lowest held-out loss, TrainLog.best_step saying when) or the Divergence that ended it (its
    module is left as it was). Members must share stack_key(cfg) and the module's structure.
    snapshot_at: after that many steps, each member's weights as they would be loaded then (EMA or not; the best
    so far for a selecting member) are kept in TrainLog.snapshot, a state dict (the convergence check compares the
    network there and at the end).
    """
    start = time.perf_counter()
    if not members:
        return []
    cfgs = [m.optim for m in members]
    if len({stack_key(c) for c in cfgs}) != 1:
        raise ValueError(
            f"train_stack: members differ in optimiser, steps or batch size: {sorted(map(stack_key, cfgs))}"
        )
    S, steps, rule = len(members), cfgs[0].steps, cfgs[0].optimizer
    modules = [m.module for m in members]
    selecting = [m.heldout is not None for m in members]
    params, buffers = stack_module_state(modules)  # leaves with a leading member axis
    names = list(params)
    # Training mode, as nn.Module training has it: spectral norm's power iteration runs (updating its buffers, u and
    # v, in place in `buffers`) in training mode only; the held-out checks evaluate in eval mode.
    base = copy.deepcopy(modules[0]).to("meta").train()

    def member_loss(p: dict, b: dict, inputs: tuple[Tensor, ...]) -> Tensor:
        return loss(lambda *args: functional_call(base, (p, b), args), inputs)

    if S == 1:  # a run alone: the same computation without vmap's per-operation overhead (~40% on a busy CPU)

        def batched_loss(p: dict, b: dict, inputs: tuple[Tensor, ...]) -> Tensor:
            first = {k: v[0] for k, v in p.items()}, {k: v[0] for k, v in b.items()}
            return member_loss(*first, tuple(t[0] for t in inputs)).unsqueeze(0)

    else:
        batched_loss = vmap(member_loss)
    ps = [params[k] for k in names]
    exp_avg = [torch.zeros_like(p) for p in ps]
    exp_avg_sq = [torch.zeros_like(p) for p in ps]
    ema = [p.detach().clone() for p in ps]
    decay = [c.ema if c.ema is not None else 0.0 for c in cfgs]
    clip = [c.grad_clip if c.grad_clip is not None else math.inf for c in cfgs]
    decay_col = [_column([1.0 - d for d in decay], p) for p in ps]
    wd_col = [_column([c.weight_decay for c in cfgs], p) for p in ps] if any(c.weight_decay for c in cfgs) else None
    factors = [lr_factor(c) for c in cfgs]
    alive = [True] * S
    outcome: list[TrainLog | Divergence | None] = [None] * S
    history: list[list[float]] = [[] for _ in range(S)]
    window: list[Tensor] = []
    snapshots: list[dict | None] = [None] * S
    heldout: list[list[tuple[int, float]]] = [[] for _ in range(S)]  # (step, held-out loss) per check
    best: list[tuple[int, float, dict] | None] = [None] * S  # (step, loss, weights) of the lowest held-out loss

    def weights(s: int, *, copy: bool = True) -> dict:
        """Member s's weights as they would be loaded now (EMA or not): a copy, or views of the stacked tensors."""
        source = ema if cfgs[s].ema is not None else ps
        return {k: v[s].detach().clone() if copy else v[s].detach() for k, v in zip(names, source)}

    @torch.no_grad()
    def check_heldout(done: int) -> None:
        """Each selecting member's held-out loss after `done` steps; the best weights so far are kept."""
        base.eval()
        for s in range(S):
            if not (selecting[s] and alive[s]):
                continue
            value = float(
                member_loss(weights(s, copy=False), {k: v[s] for k, v in buffers.items()}, members[s].heldout)
            )
            heldout[s].append((done, value))
            if math.isfinite(value) and (best[s] is None or value < best[s][1]):
                best[s] = (done, value, weights(s))
        base.train()

    if any(selecting):
        check_heldout(0)  # the initialisation is a checkpoint too: a training that only degrades keeps it
    for step in range(steps):
        draws = [m.draw(step) for m in members]
        inputs = tuple(torch.stack(parts) for parts in zip(*draws))
        losses = batched_loss(params, buffers, inputs)  # (S,)
        grads = torch.autograd.grad(losses.sum(), ps)  # member s's slice is the gradient of its own loss
        with torch.no_grad():
            grads = _clip(grads, clip)
            lrs = [c.lr * f(step) for c, f in zip(cfgs, factors)]
            _update(rule, ps, grads, exp_avg, exp_avg_sq, step + 1, lrs, wd_col)
            if any(c.ema is not None for c in cfgs):
                for e, p, w in zip(ema, ps, decay_col):
                    e.lerp_(p, w)
        done = step + 1
        if any(selecting) and (done % check_every == 0 or done == steps or done == snapshot_at):
            check_heldout(done)
        if snapshot_at is not None and done == snapshot_at:
            with torch.no_grad():  # what a training of snapshot_at steps would give: its best weights so far
                for s in range(S):
                    snapshots[s] = best[s][2] if selecting[s] and best[s] is not None else weights(s)
        window.append(losses.detach())
        if len(window) == check_every or step == steps - 1:
            means = torch.stack(window).mean(0).tolist()  # the one host sync per window
            window.clear()
            for s, mean in enumerate(means):
                if not alive[s]:
                    continue
                if not math.isfinite(mean):
                    alive[s], outcome[s] = False, Divergence(step, mean)
                else:
                    history[s].append(mean)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        for s, module in enumerate(modules):
            if not alive[s]:
                continue
            chosen = best[s][2] if selecting[s] and best[s] is not None else weights(s)
            module.load_state_dict(chosen, strict=False)
            for k, v in buffers.items():  # state the forward keeps (spectral norm's u, v), as training left it
                module.get_buffer(k).copy_(v[s])
            module.eval()
            log = TrainLog(steps, history[s][-1] if history[s] else None, history[s], seconds, snapshots[s])
            if selecting[s] and best[s] is not None:
                log.best_step, log.best_heldout_loss, log.heldout_history = best[s][0], best[s][1], heldout[s]
            outcome[s] = log
    return outcome


def train(
    module: nn.Module,
    optim: Optim,
    loss: Callable[[Callable[..., Tensor], tuple[Tensor, ...]], Tensor],
    draw: Callable[[int], tuple[Tensor, ...]],
    *,
    heldout: tuple[Tensor, ...] | None = None,
    check_every: int = 50,
) -> TrainLog:
    """One network trained alone: train_stack with a stack of one (its path without vmap), so a network trained
    alone and in a stack go through the same update. Minimises loss(model, draw(step)); raises the Divergence.

    A loss that needs more than the module's forward (the JKO blocks' log-determinant) is written as the forward
    of a wrapping module (convlab.theory.jko.ProximalObjective) and trained through it.
    """
    (log,) = train_stack([Member(module, optim, draw, heldout)], loss, check_every=check_every)
    if isinstance(log, Divergence):
        raise log
    return log


def _clip(grads: Sequence[Tensor], max_norm: Sequence[float]) -> list[Tensor]:
    """torch.nn.utils.clip_grad_norm_ per member: the norm of the per-parameter norms, then a factor <= 1."""
    if all(math.isinf(m) for m in max_norm):
        return list(grads)
    norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads])  # (P, S)
    total = torch.linalg.vector_norm(norms, dim=0)  # (S,)
    limit = torch.tensor(max_norm, dtype=total.dtype, device=total.device)
    factor = torch.clamp(limit / (total + 1e-6), max=1.0)
    return [g * factor.reshape(-1, *([1] * (g.ndim - 1))).to(g.dtype) for g in grads]


def _update(rule, ps, grads, exp_avg, exp_avg_sq, step: int, lrs: Sequence[float], wd_col) -> None:
    """One Adam or RAdam step (torch's single-tensor formulas) with a learning rate per member."""
    b1, b2 = BETAS
    bc1, bc2 = 1 - b1**step, 1 - b2**step
    if rule == "radam":
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * step * (b2**step) / bc2
    for i, (p, g, m, v) in enumerate(zip(ps, grads, exp_avg, exp_avg_sq)):
        if wd_col is not None:
            g = g + wd_col[i] * p  # grad.add(param, alpha=weight_decay); adds zero where it is 0
        m.lerp_(g, 1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        if rule == "adam":
            step_size = _column([lr / bc1 for lr in lrs], p)
            denom = (v.sqrt() / math.sqrt(bc2)).add_(EPS)
            p.sub_(step_size * (m / denom))
        elif rho_t > 5.0:
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            adaptive = math.sqrt(bc2) / v.sqrt().add_(EPS)
            p.sub_((m / bc1) * _column(lrs, p) * adaptive * rect)
        else:
            p.sub_((m / bc1) * _column(lrs, p))
