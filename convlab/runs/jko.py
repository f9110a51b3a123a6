"""The 'jko' run kind: a neural JKO flow of K blocks on an analytic target (convlab.theory.jko).

Block k is initialised and trained (convlab.models.stack.train) from its own seeded streams on the training
samples pushed through blocks 0..k-1, so the first k blocks of a run with K > k are the blocks of the run with
K = k: a sweep over K shares one chain per process (an artefact) without changing any number. The injected
per-step error is a translation by step_error * u_k (u_k a seeded unit vector) after block k; translations leave
log-densities unchanged, so KL stays exact, and the Gaussian closed form applies the same shifts.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field

from convlab.device import generator, stream_seed
from convlab.models.residual import ResidualBlock
from convlab.models.stack import train
from convlab.record import RunFailed
from convlab.runs import shared
from convlab.runs.config import BlockConfig, DType, OptimConfig, RunConfig, core
from convlab.runs.kind import Artefact, Metric, RunContext, RunKind
from convlab.runs.memory import DTYPE_BYTES, Need, jacobians, points, residual_blocks, target_of, w2
from convlab.targets import make_target
from convlab.theory.jko import (
    ProximalObjective,
    gaussian_jko_step,
    gaussian_kl,
    generate,
    kl_to_standard_normal,
    push,
)


class BlockOptim(OptimConfig):
    """Optimisation of one block: Adam with a cosine schedule on minibatches of the pushed training samples, no
    clipping (the blocks' Lipschitz bound keeps their gradients tame; the shipped results were measured without)."""

    steps: Annotated[int, Field(ge=0, description="optimiser steps per block")] = 300
    grad_clip: Annotated[float, Field(gt=0.0, description="max gradient norm; null: no clipping")] | None = None


class JKORun(RunConfig):
    """K blocks of the neural JKO flow towards N(0, I) (arXiv 2310.17582): KL(p_K || N(0, I)) by exact density tracking,
    W2 of generated samples (inverted blocks) to the target, and the Gaussian closed form beside them."""

    kind: Literal["jko"] = "jko"
    gamma: Annotated[float, Field(gt=0.0, description="JKO step size")] = 1.0
    K: Annotated[int, Field(ge=0, description="JKO steps (blocks)")] = 4
    step_error: Annotated[float, Field(ge=0.0, description="length of a seeded shift after every block")] = 0.0
    net: BlockConfig = BlockConfig()
    optim: BlockOptim = BlockOptim()
    dtype: DType = "float32"
    n: Annotated[int, Field(ge=2, description="training samples of the target (the sample size)")] = 2000
    n_mc: Annotated[int, Field(ge=2, description="fresh draws for the Monte Carlo KL")] = 4000
    n_w2: Annotated[int, Field(ge=0, description="generated samples for the sampled W2 (0: skip generation)")] = 500
    floor_repeats: Annotated[int, Field(ge=1)] = 3
    resolve_margin: Annotated[float, Field(ge=1.0)] = 2.0


DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _shift(cfg: JKORun, k: int, D: int, device, dtype) -> torch.Tensor:
    u = torch.randn(D, generator=generator(cfg.seed, f"jko.shift{k}", device), device=device, dtype=torch.float64)
    return (cfg.step_error * u / u.norm()).to(dtype)


def _extend(chain: dict, cfg: JKORun, target, device) -> None:
    """Train blocks until the chain has K (a diverging block fails this run; the chain keeps the blocks before it)."""
    D, dtype = target.ambient_dim, DTYPES[cfg.dtype]
    while len(chain["blocks"]) < cfg.K:
        k = len(chain["blocks"])
        with torch.random.fork_rng(devices=[]):  # layer initialisation draws from the global CPU generator
            torch.manual_seed(stream_seed(cfg.seed, f"jko.block{k}.init"))
            block = ResidualBlock(D, core(cfg.net)).to(device, dtype)
        g, x = generator(cfg.seed, f"jko.block{k}.batches", device), chain["x"]
        size = min(cfg.optim.batch_size, x.shape[0])
        log = train(
            ProximalObjective(block, cfg.gamma),
            core(cfg.optim),
            lambda objective, batch: objective(*batch),
            lambda step: (x[torch.randint(x.shape[0], (size,), generator=g, device=device)],),
        )
        shift = _shift(cfg, k, D, device, dtype)
        chain["x"] = push([block], x, torch.zeros(x.shape[0], device=device, dtype=dtype), [shift])[0]
        chain["blocks"].append(block)
        chain["shifts"].append(shift)
        chain["final_losses"].append(log.final_loss)


def _closed_form(cfg: JKORun, target, device) -> float | None:
    """KL after K exact JKO steps (and the same shifts) for a single Gaussian target, in its eigenbasis."""
    if target.n_components != 1:
        return None
    lam, U = torch.linalg.eigh(target.covariance())
    m, s = U.T @ target.mean(), lam.clamp_min(0).sqrt()
    for k in range(cfg.K):
        m, s = gaussian_jko_step(m, s, cfg.gamma)
        m = m + U.T @ _shift(cfg, k, target.ambient_dim, device, torch.float64).cpu()
    return float(gaussian_kl(m, s))


def run_jko(cfg: JKORun, ctx: RunContext) -> dict:
    """Train (or reuse) K blocks; KL(p_K || N(0, I)) on fresh samples with exact log-densities; W2 of generated
    samples."""
    target, device, dtype = make_target(cfg.target), ctx.device, DTYPES[cfg.dtype]
    if target.is_degenerate:
        raise RunFailed(f"target: {target.name} has singular covariances, so log p_0 (and KL) is undefined")

    def new_chain() -> dict:
        x = target.sample(cfg.n, generator=ctx.rng("jko.train"), device=device, dtype=dtype)
        return {"blocks": [], "shifts": [], "x": x, "final_losses": []}

    with ctx.stage("train"):
        chain = ctx.shared("chain", new_chain)
        _extend(chain, cfg, target, device)
    blocks, shifts = chain["blocks"][: cfg.K], chain["shifts"][: cfg.K]
    with ctx.stage("push"):
        x = target.sample(cfg.n_mc, generator=ctx.rng("jko.eval"), device=device, dtype=dtype)
        x, log_p = push(blocks, x, target.log_prob(x.double()).to(dtype), shifts)
        if not (torch.isfinite(x).all() and torch.isfinite(log_p).all()):
            raise RunFailed("non-finite samples or log-densities")
    kl, se = kl_to_standard_normal(x.double(), log_p.double())
    out = {"kl": kl, "kl_se": se, "kl_resolved": bool(kl > cfg.resolve_margin * se), "contraction": 1 / (1 + cfg.gamma)}
    if cfg.K and chain["final_losses"][cfg.K - 1] is not None:
        out["block_final_loss"] = chain["final_losses"][cfg.K - 1]
    closed = _closed_form(cfg, target, device)
    if closed is not None:
        out["kl_closed_form"] = closed
    if cfg.n_w2:
        with ctx.stage("generate"):
            z = torch.randn(cfg.n_w2, target.ambient_dim, generator=ctx.rng("jko.generate"), device=device, dtype=dtype)
            samples, residual = generate(blocks, z, shifts)
            out["inversion_residual"] = residual
            if not residual < 1e-4:
                raise RunFailed(f"fixed-point inversion did not converge (residual {residual:.2e})", out)
            out.update(shared.run_sampled_w2(cfg, samples, target, ctx, "jko.w2"))
    return out


def memory(cfg: JKORun) -> list[Need]:
    """The training sample, the blocks, the exact log-determinants (a D x D Jacobian per point: of a training batch
    with its graph, of the n_mc fresh draws), the generated samples and their exact W2."""
    D, w = target_of(cfg.target).ambient_dim, DTYPE_BYTES[cfg.dtype]
    return [
        points(("n",), cfg.n, D, w, 3, "the training sample and its pushes"),
        residual_blocks(cfg.net, D, cfg.K, w),
        jacobians(("optim.batch_size",), min(cfg.optim.batch_size, cfg.n), D, copies=6),
        jacobians(("n_mc",), cfg.n_mc, D),
        w2("n_w2", cfg.n_w2),
    ]


KIND = RunKind(
    name="jko",
    config=JKORun,
    metrics=(
        Metric(
            "kl",
            r"KL$(p_K \,\|\, N(0, I))$",
            "monte_carlo",
            "Monte Carlo mean over pushed samples with exactly tracked log-densities",
            unit="nats",
        ),
        Metric("kl_se", "standard error of kl", "monte_carlo", "standard error of the Monte Carlo mean", unit="nats"),
        Metric("kl_resolved", "KL resolved", "flag", "kl > resolve_margin * kl_se"),
        Metric(
            "contraction", r"$1 / (1 + \gamma)$", "closed_form", "the exact scheme's contraction of the mean per step"
        ),
        Metric(
            "block_final_loss",
            "last block's final loss",
            "record",
            "mean proximal loss of the last window of the last block's training",
            when="K > 0 and optim.steps > 0",
        ),
        Metric(
            "kl_closed_form",
            "exact JKO KL",
            "closed_form",
            "KL after K exact JKO steps with the same shifts",
            unit="nats",
            when="one Gaussian",
        ),
        Metric(
            "inversion_residual",
            "inversion residual",
            "record",
            "largest fixed-point residual of generation",
            when="n_w2 > 0",
        ),
        *shared.sampled_w2("w2", "$W_2$(samples, target)", when="n_w2 > 0"),
        shared.TIME_TOTAL,
    ),
    body=run_jko,
    memory=memory,
    artefacts=(
        Artefact("chain", ("seed", "target", "gamma", "step_error", "net", "optim", "dtype", "n"), memo_size=8),
    ),
)
