"""Shared fixtures: float64 numerics, devices (CPU always, CUDA when present) and hypothesis profiles."""

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

# CI runs derandomised so a red build is reproducible; 'dev' explores new examples on every run.
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=25,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=50, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]
    ),
]


@pytest.fixture(autouse=True)
def _fresh_artefact_memo():
    """Every test starts with an empty per-process artefact memo, so that no test sees another's shared artefacts."""
    from convlab.runs.artefacts import clear_memo

    clear_memo()
    yield
    clear_memo()


@pytest.fixture(params=DEVICES)
def device(request):
    """Every device test runs on the CPU, and on CUDA when one is present (one code path for both)."""
    return torch.device(request.param)


F64 = torch.float64
