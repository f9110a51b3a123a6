"""What a run will hold in memory, estimated from its config before it runs: the plan refuses a run whose largest
tensors cannot fit on the device (`n_coupled: 1e12`, `K: 1e9`) with the field that asks for them, instead of an
allocator error an hour in.

Each run kind declares `memory(cfg) -> [Need, ...]`: its largest tensors as products of config fields, counted
with the copies the code makes of them (solver stages, optimiser state, autograd). The estimate is deliberately
coarse -- the right order of magnitude, the sum of the terms -- since its one job is to tell "fits" from "cannot
fit"; a run near the limit is better measured than estimated (`--allow-large` runs it anyway).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from convlab.runs.config import BlockConfig, NetConfig
from convlab.targets import GaussianMixture, make_target
from convlab.targets.continuous import CurvedTorus

F64 = 8
DTYPE_BYTES = {"float32": 4, "float64": 8}
# integrate() turns the time grid into a list of Python floats (24-byte objects plus the list's pointer) and a tensor:
# about this many bytes per grid time.
PER_STEP = 64
# Activations kept for the backward pass of an MLP layer, per batch row and unit (the linear output, the activation
# and their gradients), and the parameter copies of training (weights, gradient, two Adam moments, EMA, the
# convergence check's half-length copy).
ACTIVATION_COPIES, PARAMETER_COPIES = 4, 6


@dataclass(frozen=True)
class Need:
    """`bytes` held for `what`, driven by the config fields `keys` (dotted; the first is the one to lower)."""

    keys: tuple[str, ...]
    bytes: float
    what: str


@functools.lru_cache(maxsize=16)
def _target(spec: str):

    return make_target(json.loads(spec))


def target_of(spec: dict[str, Any]):
    """The target of a spec, built once per distinct spec (a plan asks for every run)."""
    return _target(json.dumps(spec, sort_keys=True))


def points(keys: tuple[str, ...], n: int, D: int, itemsize: int, copies: float, what: str) -> Need:
    """n points of R^D, `copies` times (states, solver stages, results)."""
    count = int(copies) if float(copies).is_integer() else copies
    return Need(keys, float(n) * D * itemsize * copies, f"{what}: {count} x {n} x {D} values")


def grid(key: str, K: int) -> Need:
    return Need((key,), float(K + 1) * PER_STEP, f"the time grid of {K} steps")


def w2(key: str, n: int) -> Need:
    """The exact W2 solve of n against n points: the cost matrix, the plan and the solver's copy (float64)."""
    return Need((key,), 3.0 * n * n * F64, f"the {n} x {n} cost matrix and plan of the exact W2")


def jacobians(keys: tuple[str, ...], n: int, D: int, copies: float = 3) -> Need:
    """n Jacobians or Hessians of R^D (float64), with their products and gradients."""
    return Need(keys, float(n) * D * D * F64 * copies, f"{n} Jacobians of {D} x {D}")


def field(key: str, target, n: int, itemsize: int = F64) -> Need:
    """The exact field's temporaries on n points: a mixture works in blocks of chunk_size elements whatever n is; a
    curved torus holds n x nodes posterior weights per circle, and its d x nodes x D grid of curve points."""

    D = target.ambient_dim
    if isinstance(target, GaussianMixture):
        size = 4.0 * target.chunk_size * itemsize + 4.0 * n * D * itemsize
    elif isinstance(target, CurvedTorus):
        size = 3.0 * n * target.nodes * itemsize + float(target.intrinsic_dim) * target.nodes * D * itemsize
    else:
        size = 4.0 * n * D * itemsize
    return Need((key,), size, f"the exact field's temporaries on {n} points")


def mlp(prefix: str, net: NetConfig, d_in: int, d_out: int, batch: int, itemsize: int, members: int = 1) -> list[Need]:
    """A trained MLP: its parameters with their training copies, and its activations on one batch."""
    w, depth = net.width, net.depth
    params = (d_in * w + (depth - 1) * w * w + w * d_out) * itemsize * PARAMETER_COPIES * members
    acts = float(batch) * (w * depth + d_in + d_out) * itemsize * ACTIVATION_COPIES * members
    return [
        Need((f"{prefix}.net.width",), float(params), f"the network's parameters ({w} wide, {depth} deep) in training"),
        Need((f"{prefix}.optim.batch_size",), acts, f"the activations of a batch of {batch}"),
    ]


def residual_blocks(net: BlockConfig, D: int, K: int, itemsize: int) -> Need:
    params = (D * net.width + (net.depth - 1) * net.width**2 + net.width * D) * itemsize * PARAMETER_COPIES * max(K, 1)
    return Need(("net.width",), float(params), f"{K} residual blocks of width {net.width}")
