"""The 'jko' run kind: a neural JKO flow of N blocks on an analytic target (seed 003).

Block k is initialised and trained from its own seeded streams on the training samples pushed through blocks
0..k-1, so the first k blocks of a run with N > k are the blocks of the run with N = k: a sweep over N
shares them per process (memo) without changing any number. The injected per-step error is a translation
by step_error * u_k (u_k a seeded unit vector) after block k; translations leave log-densities unchanged, so
KL stays exact, and the Gaussian closed form applies the same shifts.
"""

from __future__ import annotations

import math
import time

import torch

from convlab.config import JKORun
from convlab.device import generator, resolve_device, stream_seed
from convlab.jko import gaussian_jko_step, gaussian_kl
from convlab.jko_flow import BlockTraining, ResidualBlock, generate, kl_to_standard_normal, push, train_block
from convlab.metrics import sampled_w2
from convlab.record import RunRecord
from convlab.runs.cache import memo_key
from convlab.targets import make_target

_CHAINS: dict[str, dict] = {}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _shift(cfg: JKORun, k: int, D: int, device, dtype) -> torch.Tensor:
    u = torch.randn(D, generator=generator(cfg.seed, f"jko.shift{k}", device), device=device, dtype=torch.float64)
    return (cfg.step_error * u / u.norm()).to(dtype)


def _chain(cfg: JKORun, target, device) -> dict:
    """The blocks trained so far for this config (all but N), extended to N blocks."""
    key = memo_key(cfg, {"seed", "target", "gamma", "step_error", "net", "train", "dtype", "n_train"}, device)
    if key not in _CHAINS:
        if len(_CHAINS) >= 8:
            _CHAINS.pop(next(iter(_CHAINS)))
        dtype = DTYPES[cfg.dtype]
        x = target.sample(cfg.n_train, generator=generator(cfg.seed, "jko.train", device), device=device, dtype=dtype)
        _CHAINS[key] = {"blocks": [], "shifts": [], "x": x, "losses": []}
    chain = _CHAINS[key]
    D, dtype = target.ambient_dim, DTYPES[cfg.dtype]
    opt = BlockTraining(steps=cfg.train.steps, lr=cfg.train.lr, batch_size=cfg.train.batch_size)
    while len(chain["blocks"]) < cfg.N:
        k = len(chain["blocks"])
        with torch.random.fork_rng(devices=[]):  # layer initialisation draws from the global CPU generator
            torch.manual_seed(stream_seed(cfg.seed, f"jko.block{k}.init"))
            block = ResidualBlock(D, width=cfg.net.width, depth=cfg.net.depth, lip=cfg.net.lip).to(device, dtype)
        losses = train_block(block, chain["x"], None, cfg.gamma, opt, generator(cfg.seed, f"jko.block{k}.batches", device))
        shift = _shift(cfg, k, D, device, dtype)
        chain["x"] = push([block], chain["x"], torch.zeros(cfg.n_train, device=device, dtype=dtype), [shift])[0]
        chain["blocks"].append(block)
        chain["shifts"].append(shift)
        chain["losses"].append(losses[-1] if losses else math.nan)
    return chain


def _closed_form(cfg: JKORun, target, device) -> float | None:
    """KL after N exact JKO steps (and the same shifts) for a single Gaussian target, in its eigenbasis."""
    if target.n_components != 1:
        return None
    lam, U = torch.linalg.eigh(target.covariance())
    m, s = U.T @ target.mean(), lam.clamp_min(0).sqrt()
    for k in range(cfg.N):
        m, s = gaussian_jko_step(m, s, cfg.gamma)
        m = m + U.T @ _shift(cfg, k, target.ambient_dim, device, torch.float64).cpu()
    return float(gaussian_kl(m, s))


def run_jko(cfg: JKORun | dict, *, device: str | torch.device = "auto", teacher_cache=None) -> RunRecord:
    """Train (or reuse) N blocks; KL(p_N || N(0, I)) on fresh samples with exact log-densities; W2 of generated samples."""
    cfg = cfg if isinstance(cfg, JKORun) else JKORun.model_validate(cfg)
    device = resolve_device(device)
    start = time.perf_counter()
    target = make_target(cfg.target)
    if target.is_degenerate:
        return RunRecord("failed", {}, {"device": str(device)}, stage="setup",
                         reason=f"target: {target.name} has singular covariances, so log p_0 (and KL) is undefined")
    chain = _chain(cfg, target, device)
    blocks, shifts = chain["blocks"][: cfg.N], chain["shifts"][: cfg.N]
    dtype = DTYPES[cfg.dtype]
    x = target.sample(cfg.n_eval, generator=generator(cfg.seed, "jko.eval", device), device=device, dtype=dtype)
    x, log_p = push(blocks, x, target.log_prob(x.double()).to(dtype), shifts)
    if not (torch.isfinite(x).all() and torch.isfinite(log_p).all()):
        return RunRecord("failed", {}, {"device": str(device)}, stage="push", reason="non-finite samples or log-densities")
    kl, se = kl_to_standard_normal(x.double(), log_p.double())
    metrics = {"kl": kl, "kl_se": se, "kl_resolved": bool(kl > cfg.resolve_margin * se), "contraction": 1 / (1 + cfg.gamma),
               "train_loss": chain["losses"][cfg.N - 1] if cfg.N else math.nan}
    closed = _closed_form(cfg, target, device)
    if closed is not None:
        metrics["kl_closed_form"] = closed
    if cfg.n_w2:
        z = torch.randn(cfg.n_w2, target.ambient_dim, generator=generator(cfg.seed, "jko.generate", device), device=device, dtype=dtype)
        samples, residual = generate(blocks, z, shifts)
        w2 = sampled_w2(samples, target, generator=generator(cfg.seed, "jko.w2", torch.device("cpu")), repeats=cfg.floor_repeats,
                        margin=cfg.resolve_margin)
        metrics.update(w2=w2.w2, w2_floor=w2.floor, w2_floor_sd=w2.floor_sd, w2_resolved=w2.resolved, inversion_residual=residual)
        if not residual < 1e-4:
            return RunRecord("failed", metrics, {"device": str(device)}, stage="generate", reason=f"fixed-point inversion did not converge (residual {residual:.2e})")
    bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v) and k != "train_loss"]
    if bad:
        return RunRecord("failed", {}, {"device": str(device)}, stage="measure", reason=f"non-finite {', '.join(bad)}")
    return RunRecord("ok", metrics, {"device": str(device), "time_total_s": time.perf_counter() - start})
