"""One cache for the artefacts that runs of a sweep share: trained teachers, reference flows, JKO chains.

An artefact is declared by its run kind (runs.kind.Artefact: the config fields it depends on), so its key names
everything its value depends on and reusing it changes no number. Cheap-to-keep artefacts (reference flows, JKO
chains) are memoised per process, the oldest going first beyond the artefact's `memo_size`; artefacts worth
persisting (trained networks) are also stored on disk under <root>/.artefacts/<kind>.<artefact>/<key>-<device>/.

The disk copy is keyed by content, not by study: every study that shares a results root shares its artefacts.
Each is made under an exclusive lock on its key (`claim`), so two processes never compute the same one, whatever
studies they run: the second waits, then loads. A payload is whatever torch.save can store and
torch.load(weights_only=True) can read back (tensors, numbers, strings, lists and dicts of them); its DONE marker
records the payload's SHA-256, so a payload that was truncated or changed is never loaded: it is set aside
(kept, under replaced/) and made again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from convlab.files import atomic_write_bytes, utc_now

log = logging.getLogger("convlab")

DONE = "DONE"
PAYLOAD = "payload.pt"
_MEMO: OrderedDict[tuple[str, str], Any] = OrderedDict()  # (artefact name, key with device) -> value, per process


class DamagedArtefact(Exception):
    """A stored artefact that cannot be trusted; the message names its directory and why."""


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
        """The artefact if this process or the disk has it, else None (nothing is computed; a damaged copy on disk
        counts as none): with `claim` and `store`, the parts of `get` for callers that compute many missing
        artefacts together (a batch of teachers)."""
        memo_key = (name, f"{key}-{device}")
        if memo_key in _MEMO:
            _MEMO.move_to_end(memo_key)
            return _MEMO[memo_key]
        if on_disk and self.dir is not None:
            d = self.dir / name / f"{key}-{device.type}"
            if (d / DONE).exists():
                try:
                    value = _load(d)
                except DamagedArtefact as err:
                    log.warning("%s; it is made again", err)  # under its lock, by whoever claims it
                    return None
                self._memo(memo_key, value, memo_size)
                return value
        return None

    @contextlib.contextmanager
    def claim(self, name: str, key: str, device: torch.device) -> Iterator[None]:
        """Hold the on-disk lock of an artefact while it is looked up again, computed and stored; the lock is
        re-entrant in this process, so `store` inside a claim does not wait on it."""
        if self.dir is None:
            yield
            return
        with _lock(self.dir / name, f"{key}-{device.type}"):
            yield

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

    def forget_failures(self, shared: str) -> list[Path]:
        """Set aside the failure markers stored for '<kind>.<artefact>/<key>' (a diverged or collapsed teacher), so
        that the runs retried by `--retry-failed` make it again; returns where they went."""
        if self.dir is None:
            return []
        name, _, key = shared.partition("/")
        moved = []
        for done in sorted((self.dir / name).glob(f"{key}-*/{DONE}")):
            d = done.parent
            with _lock(self.dir / name, d.name):
                try:
                    payload = _load(d)
                except DamagedArtefact:
                    continue  # made again anyway
                if isinstance(payload, dict) and "failed" in payload:
                    moved.append(_set_aside(d, "failed"))
        return moved

    def _from_disk(self, name: str, key: str, create: Callable[[], Any]) -> tuple[Any, bool]:
        with _lock(self.dir / name, key):
            d = self.dir / name / key
            if (d / DONE).exists():
                try:
                    return _load(d), False
                except DamagedArtefact as err:
                    log.warning("%s; set aside to %s and made again", err, _set_aside(d, "damaged"))
            value = create()
            buf = io.BytesIO()
            torch.save(value, buf)
            data = buf.getvalue()
            atomic_write_bytes(d / PAYLOAD, data)
            marker = {"written": utc_now(), "payload_sha256": hashlib.sha256(data).hexdigest()}
            atomic_write_bytes(d / DONE, json.dumps(marker).encode())
            return value, True


def _lock(folder: Path, key: str) -> FileLock:
    """The artefact's lock: one object per path in this process (re-entrant), an flock across processes."""
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder / f"{key}.lock"), is_singleton=True)


def _set_aside(d: Path, why: str) -> Path:
    """Move an artefact directory to replaced/ beside it (kept, never deleted; out of every lookup's way)."""
    dest = d.parent / "replaced" / f"{d.name}.{why}-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S%f')}"
    dest.parent.mkdir(exist_ok=True)
    os.replace(d, dest)
    return dest


def _load(d: Path) -> Any:
    """The payload of artefact directory d, checked against the SHA-256 its DONE marker records (markers written
    before they recorded one hold a time only); DamagedArtefact naming the file when it is missing, changed or
    unreadable."""
    path = d / PAYLOAD
    try:
        data = path.read_bytes()
        text = (d / DONE).read_text()
    except OSError as err:
        raise DamagedArtefact(f"{path}: unreadable ({err.strerror or err})") from None
    try:
        expected = json.loads(text).get("payload_sha256")
    except (json.JSONDecodeError, AttributeError):
        expected = None
    if expected is not None and hashlib.sha256(data).hexdigest() != expected:
        raise DamagedArtefact(f"{path}: damaged (its SHA-256 is not the one its DONE marker recorded)")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises several types for a truncated or foreign file
        raise DamagedArtefact(f"{path}: damaged: torch.load failed ({type(err).__name__}: {err})") from None


def clear_memo() -> None:
    """Forget every memoised artefact of this process (tests; a notebook after editing code)."""
    _MEMO.clear()
