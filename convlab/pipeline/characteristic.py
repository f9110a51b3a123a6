"""run_one for the characteristic generator: teacher -> characteristics -> student -> error budget."""

from __future__ import annotations

import platform
import time
from typing import Any

import torch

from convlab.device import generator, resolve_device
from convlab.interpolants import as_interpolant
from convlab.models.training import Divergence
from convlab.config import CharacteristicRun
from convlab.pipeline.measure import measure
from convlab.pipeline.student import NonFinite, characteristics, fit_student
from convlab.pipeline.teacher import TeacherCache, build_teacher
from convlab.record import RunRecord
from convlab.targets import make_target


def run_characteristic(cfg: CharacteristicRun | dict, *, device: str | torch.device = "auto", teacher_cache: TeacherCache | None = None) -> RunRecord:
    """Run the whole pipeline on cfg's target; a divergence or a non-finite stage gives a failed record.

    All tensors stay on `device` ('auto': CUDA when present). One seed drives every draw through named
    streams (convlab.device.generator), so the same config on the same device gives the same numbers.
    """
    cfg = cfg if isinstance(cfg, CharacteristicRun) else CharacteristicRun.model_validate(cfg)
    device = resolve_device(device)
    info: dict[str, Any] = {"device": str(device), "device_name": _device_name(device)}
    timings: dict[str, float] = {}
    stage = "setup"
    start = time.perf_counter()
    try:
        target = make_target(cfg.target)
        ip = as_interpolant(cfg.interpolant)
        stage = "teacher"
        t0 = time.perf_counter()
        teacher = build_teacher(cfg, target, ip, device, teacher_cache)
        timings["time_teacher_s"] = time.perf_counter() - t0
        stage = "characteristics"
        t0 = time.perf_counter()
        z = torch.randn(cfg.characteristics.m, target.ambient_dim, device=device, dtype=getattr(torch, cfg.dtype),
                        generator=generator(cfg.seed, "characteristics.noise", device))
        chars = characteristics(teacher, cfg, z)
        timings["time_characteristics_s"] = time.perf_counter() - t0
        stage = "student"
        t0 = time.perf_counter()
        student, student_info = fit_student(teacher, chars, cfg, device)
        timings["time_student_s"] = time.perf_counter() - t0
        stage = "eval"
        t0 = time.perf_counter()
        metrics = measure(teacher, student, target, cfg, device)
        timings["time_eval_s"] = time.perf_counter() - t0
    except (Divergence, NonFinite) as err:
        timings["time_total_s"] = time.perf_counter() - start
        return RunRecord("failed", {}, {**info, **timings}, stage=stage, reason=str(err))
    timings["time_total_s"] = time.perf_counter() - start
    info.update(teacher.info, **student_info, characteristics_nfe=chars.nfe)
    return RunRecord("ok", metrics, {**info, **timings})


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()
