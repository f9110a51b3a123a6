"""One cache for the artefacts that runs of a sweep share: trained teachers, reference flows, JKO chains.

An artefact is declared by its run kind (runs.kind.Artefact: the config fields it depends on), so its key names
everything its value depends on and reusing it changes no number. Cheap-to-keep artefacts (reference flows, JKO
chains) are memoised per process, the oldest going first beyond the artefact's `memo_size`; artefacts worth
persisting (trained networks) are also stored on disk under <root>/.artefacts/<kind>.<artefact>/<key>-<device>/, created
under an exclusive lock so that two workers never compute the same one (the second waits, then loads). A
payload on disk is whatever torch.save can store and torch.load(weights_only=True) can read back: tensors,
numbers, strings, lists and dicts of them.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from convlab.files import atomic_write_bytes, utc_now

DONE = "DONE"
_MEMO: OrderedDict[tuple[str, str], Any] = OrderedDict()  # (artefact name, key with device) -> value, per process


class ArtefactCache:
    """Per-process memo for every artefact, plus a directory on disk (under `root`) for the ones declared on_disk."""

    def __init__(self, root: str | Path | None = None):
        self.dir = None if root is None else Path(root) / ".artefacts"

    def get(
        self,
        name: str,
        key: str,
        device: torch.device,
        create: Callable[[], Any],
        *,
        on_disk: bool = False,
        memo_size: int = 16,
    ) -> tuple[Any, bool]:
        """(value, created here): the artefact `name` ('<kind>.<artefact>') under `key` on `device`, computed by
        create() if nobody has it yet; at most memo_size of each name are kept in this process."""
        memo_key = (name, f"{key}-{device}")
        if memo_key in _MEMO:
            _MEMO.move_to_end(memo_key)
            return _MEMO[memo_key], False
        if on_disk and self.dir is not None:
            value, created = self._from_disk(name, f"{key}-{device.type}", create)
        else:
            value, created = create(), True
        self._memo(memo_key, value, memo_size)
        return value, created

    def lookup(
        self, name: str, key: str, device: torch.device, *, on_disk: bool = False, memo_size: int = 16
    ) -> Any | None:
        """The artefact if this process or the disk has it, else None (nothing is computed): with `store`, the
        two halves of `get` for callers that compute many missing artefacts together (a batch of teachers)."""
        memo_key = (name, f"{key}-{device}")
        if memo_key in _MEMO:
            _MEMO.move_to_end(memo_key)
            return _MEMO[memo_key]
        if on_disk and self.dir is not None:
            d = self.dir / name / f"{key}-{device.type}"
            if (d / DONE).exists():
                value = _load(d)
                self._memo(memo_key, value, memo_size)
                return value
        return None

    def store(
        self, name: str, key: str, device: torch.device, value: Any, *, on_disk: bool = False, memo_size: int = 16
    ) -> Any:
        """Keep `value` as the artefact (on disk too if declared so); if another worker stored it meanwhile, its
        value is kept and returned (made from the same config and streams, it is the same numbers)."""
        if on_disk and self.dir is not None:
            value, _ = self._from_disk(name, f"{key}-{device.type}", lambda: value)
        self._memo((name, f"{key}-{device}"), value, memo_size)
        return value

    @staticmethod
    def _memo(memo_key: tuple[str, str], value: Any, memo_size: int) -> None:
        _MEMO[memo_key] = value
        while sum(k[0] == memo_key[0] for k in _MEMO) > memo_size:
            del _MEMO[next(k for k in _MEMO if k[0] == memo_key[0])]

    def has(self, shared: str) -> bool:
        """Whether '<kind>.<artefact>/<key>' (RunKind.shared_key) is on disk for some device."""
        if self.dir is None:
            return False
        name, _, key = shared.partition("/")
        return any((self.dir / name).glob(f"{key}-*/{DONE}"))

    def _from_disk(self, name: str, key: str, create: Callable[[], Any]) -> tuple[Any, bool]:
        folder = self.dir / name
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder / f"{key}.lock")):
            d = folder / key
            if (d / DONE).exists():
                return _load(d), False
            value = create()
            buf = io.BytesIO()
            torch.save(value, buf)
            atomic_write_bytes(d / "payload.pt", buf.getvalue())
            atomic_write_bytes(d / DONE, utc_now().encode())
            return value, True


def _load(d: Path) -> Any:
    return torch.load(d / "payload.pt", map_location="cpu", weights_only=True)


def clear_memo() -> None:
    """Forget every memoised artefact of this process (tests; a notebook after editing code)."""
    _MEMO.clear()
