"""Devices and seeds: one code path for CPU and GPU, and one seed that drives every random draw."""

from __future__ import annotations

import os
import platform
import zlib

import numpy as np
import torch


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """'auto' is CUDA when available, else the CPU; 'cuda' without a device is an error, not a silent CPU run."""
    if isinstance(spec, torch.device):
        return spec
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: 'cuda' was asked for but no CUDA device is available (got {spec!r})")
    return device


def stream_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for the named stream of a run (e.g. 'teacher.data'): independent streams, stable names."""
    state = np.random.SeedSequence([seed, zlib.crc32(stream.encode())]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def generator(seed: int, stream: str, device: torch.device) -> torch.Generator:
    """A torch.Generator on `device` for one stream of a run's seed."""
    return torch.Generator(device).manual_seed(stream_seed(seed, stream))


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's as the platform reports it."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def memory_bytes(device: str | torch.device = "cpu") -> int:
    """The memory a run on `device` can use at most: a CUDA device's total memory, else this machine's RAM."""
    device = resolve_device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def format_bytes(n: float) -> str:
    """1.5e9 -> '1.4 GiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError
