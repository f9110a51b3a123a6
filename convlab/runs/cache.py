"""A small per-process memo for expensive, deterministic intermediate results (reference flows).

Runs of a sweep that differ only in what the key leaves out (K, the method, a perturbation) share one
reference solve in a worker. The key must name everything the value depends on, so reusing it changes no
number; the oldest entries go first beyond `size`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import torch
from pydantic import BaseModel


def memo_key(cfg: BaseModel, fields: set[str], *extra: Any) -> str:
    """A key from the named config fields (as validated, defaults filled in) and any extra parts (e.g. device)."""
    return json.dumps([cfg.model_dump(mode="json", include=fields), *map(str, extra)], sort_keys=True)


def memoised(store: dict[str, torch.Tensor], key: str, compute: Callable[[], torch.Tensor], *, size: int = 16) -> torch.Tensor:
    if key not in store:
        if len(store) >= size:
            store.pop(next(iter(store)))
        store[key] = compute()
    return store[key]
