"""Stage 1: the teacher, a velocity network trained by velocity matching on n samples (or the oracle)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any, Protocol

import torch

from convlab.device import generator, stream_seed
from convlab.fields import ExactField
from convlab.interpolants import Interpolant
from convlab.models.fields import NetField
from convlab.models.nets import VelocityNet, n_parameters
from convlab.models.training import Divergence, train
from convlab.config import CharacteristicRun


class TeacherCache(Protocol):
    """Where trained teachers are shared between runs.

    get_or_create(key, create) returns the payload stored under key, or calls create() (which returns
    {'state_dict': ..., 'info': ...} or {'failed': reason}), stores and returns its result. A cache shared
    between processes holds a lock across the check and the creation, so one teacher is trained once.
    """

    def get_or_create(self, key: str, create: Callable[[], dict[str, Any]]) -> dict[str, Any]: ...


class MemoryCache(dict):
    """A TeacherCache in memory (tests, notebooks)."""

    def get_or_create(self, key, create):
        if key not in self:
            self[key] = create()
        return self[key]


@dataclass
class Teacher:
    """The field the characteristics follow, with its network (None for the oracle) and training record."""

    field: NetField | ExactField
    net: VelocityNet | None
    info: dict[str, Any]


def teacher_key(cfg: CharacteristicRun) -> str:
    """Everything the trained weights depend on, hashed: runs that differ only in K or the student share it."""
    parts = cfg.model_dump(include={"seed", "target", "interpolant", "T", "dtype", "teacher"})
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def velocity_matching_loss(field: NetField, x1: torch.Tensor, z: torch.Tensor, t: torch.Tensor, loss: str) -> torch.Tensor:
    """E |V(t, X_t) - (a' Z + b' X1)|^2 ('velocity'), or its unweighted denoising form E |D(t, X_t) - X1|^2
    ('denoiser'): both are minimised by the exact field at every t; they weight the times differently."""
    ip = field.interpolant
    a, b, da, db = (f(t)[:, None] for f in (ip.a, ip.b, ip.da, ip.db))
    xt = a * z + b * x1
    if loss == "velocity":
        residual = field.velocity(t, xt) - (da * z + db * x1)
    else:
        residual = field.denoiser(t, xt) - x1
    return residual.pow(2).sum(1).mean()


def build_teacher(cfg: CharacteristicRun, target, ip: Interpolant, device: torch.device, cache: TeacherCache | None = None) -> Teacher:
    """The oracle (exact velocity) or a network trained on n = cfg.teacher.n target samples drawn once."""
    tc = cfg.teacher
    if tc.kind == "oracle":
        return Teacher(ExactField(target, ip), None, {"teacher_params": 0, "teacher_seconds": 0.0, "teacher_cached": False})
    dtype = getattr(torch, cfg.dtype)
    D = target.ambient_dim
    with torch.random.fork_rng(devices=[]):  # network initialisation draws from the global CPU generator
        torch.manual_seed(stream_seed(cfg.seed, "teacher.init"))
        net = VelocityNet(D, tc.net)
    net = net.to(device, dtype)
    field = NetField(net, ip, tc.parametrization)
    trained_here: list[bool] = []

    def create() -> dict[str, Any]:
        trained_here.append(True)
        return _train_teacher(cfg, target, field, device)

    payload = create() if cache is None else cache.get_or_create(teacher_key(cfg), create)
    if "failed" in payload:
        raise Divergence(payload["failed_step"], payload["failed_loss"])
    if not trained_here:
        net.load_state_dict(payload["state_dict"])  # what training here would give: same seed, same streams
        net.eval()
    return Teacher(field, net, {**payload["info"], "teacher_cached": not trained_here})


def _train_teacher(cfg: CharacteristicRun, target, field: NetField, device: torch.device) -> dict[str, Any]:
    """Train field.net in place; the payload a cache keeps (a divergence is kept too, so no run repeats it)."""
    tc, net, dtype = cfg.teacher, field.net, getattr(torch, cfg.dtype)
    D = target.ambient_dim
    x1_train = target.sample(tc.n, generator=generator(cfg.seed, "teacher.data", device), device=device, dtype=dtype)
    g = generator(cfg.seed, "teacher.batches", device)
    B, T = tc.optim.batch_size, cfg.T

    def loss_fn(step: int) -> torch.Tensor:
        x1 = x1_train[torch.randint(tc.n, (B,), generator=g, device=device)]
        z = torch.randn(B, D, generator=g, device=device, dtype=dtype)
        t = T * torch.rand(B, generator=g, device=device, dtype=dtype)
        return velocity_matching_loss(field, x1, z, t, tc.loss)

    try:
        log = train(net, loss_fn, tc.optim)
    except Divergence as err:
        return {"failed": str(err), "failed_step": err.step, "failed_loss": err.loss}
    info = {"teacher_params": n_parameters(net), "teacher_final_loss": log.final_loss, "teacher_seconds": log.seconds,
            "teacher_loss_history": log.history}
    info.update(_generalisation(cfg, target, field, x1_train, device))
    return {"state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}, "info": info}


def _generalisation(cfg: CharacteristicRun, target, field: NetField, x1_train, device) -> dict[str, float]:
    """The training objective on the training set and on fresh target draws (same size, many (t, Z) draws):
    their gap shows whether the teacher is in the statistical regime or still under-trained."""
    g = generator(cfg.seed, "teacher.generalisation", device)
    x1_fresh = target.sample(x1_train.shape[0], generator=g, device=device, dtype=x1_train.dtype)
    out = {}
    with torch.no_grad():
        for name, x1 in (("teacher_train_loss", x1_train), ("teacher_val_loss", x1_fresh)):
            total = 0.0
            for _ in range(8):
                z = torch.randn(x1.shape, generator=g, device=device, dtype=x1.dtype)
                t = cfg.T * torch.rand(x1.shape[0], generator=g, device=device, dtype=x1.dtype)
                total += velocity_matching_loss(field, x1, z, t, cfg.teacher.loss).item() / 8
            out[name] = total
    return out
