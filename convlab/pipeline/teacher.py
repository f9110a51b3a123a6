"""Stage 1: the teacher, a velocity network trained by velocity matching on n samples (or the oracle)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from convlab.device import generator, stream_seed
from convlab.fields import ExactField
from convlab.interpolants import Interpolant
from convlab.models.fields import NetField
from convlab.models.nets import VelocityNet, n_parameters
from convlab.models.training import train
from convlab.config import CharacteristicRun


class TeacherCache(Protocol):
    """Where trained teachers are shared between runs: `load(key)` -> payload or None, `save(key, payload)`."""

    def load(self, key: str) -> dict[str, Any] | None: ...

    def save(self, key: str, payload: dict[str, Any]) -> None: ...


class MemoryCache(dict):
    """A TeacherCache in memory (tests, notebooks)."""

    def load(self, key):
        return self.get(key)

    def save(self, key, payload):
        self[key] = payload


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
    key = teacher_key(cfg)
    payload = cache.load(key) if cache is not None else None
    if payload is not None:
        net.load_state_dict(payload["state_dict"])
        net.eval()
        return Teacher(field, net, {**payload["info"], "teacher_cached": True})

    x1_train = target.sample(tc.n, generator=generator(cfg.seed, "teacher.data", device), device=device, dtype=dtype)
    g = generator(cfg.seed, "teacher.batches", device)
    B, T = tc.optim.batch_size, cfg.T

    def loss_fn(step: int) -> torch.Tensor:
        x1 = x1_train[torch.randint(tc.n, (B,), generator=g, device=device)]
        z = torch.randn(B, D, generator=g, device=device, dtype=dtype)
        t = T * torch.rand(B, generator=g, device=device, dtype=dtype)
        return velocity_matching_loss(field, x1, z, t, tc.loss)

    log = train(net, loss_fn, tc.optim)
    info = {"teacher_params": n_parameters(net), "teacher_final_loss": log.final_loss, "teacher_seconds": log.seconds,
            "teacher_loss_history": log.history, "teacher_cached": False}
    if cache is not None:
        cache.save(key, {"state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()}, "info": info})
    return Teacher(field, net, info)
