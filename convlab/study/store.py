"""Results on disk. One directory per run, named by the hash of its validated config:

    <root>/<study>/runs/<run_id>/config.json       the validated config
                                 provenance.json   git commit and dirty flag, versions, device, host, times, seed
                                 log.txt           the run's log
                                 result.json       the record (ok or failed)
                                 error.json        a failed run's stage, reason and traceback
                                 DONE              completion marker, written last
    <root>/.teachers/<key>/                        trained teachers shared by runs (and studies)

Every file is written atomically (temp file, fsync, rename), so a killed process leaves either the old
file or the new one, and a run without DONE or error.json is simply not finished.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
import math
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

DONE, ERROR, RESULT, CONFIG, PROVENANCE, LOG = "DONE", "error.json", "result.json", "config.json", "provenance.json", "log.txt"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(_jsonable(obj), indent=1, sort_keys=True) + "\n").encode())


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _jsonable(obj: Any) -> Any:
    """JSON-safe: non-finite floats become None (JSON has no nan), tensors and numpy scalars become numbers."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


class StudyStore:
    """The run directories of one study under a results root."""

    def __init__(self, root: str | Path, study: str):
        self.root = Path(root)
        self.dir = self.root / study
        self.runs = self.dir / "runs"

    def run_dir(self, run_id: str) -> Path:
        return self.runs / run_id

    def state(self, run_id: str) -> str:
        """'done', 'failed' (error.json, no DONE), 'incomplete' (started, not finished) or 'new'."""
        d = self.run_dir(run_id)
        if (d / DONE).exists():
            return "done"
        if (d / ERROR).exists():
            return "failed"
        return "incomplete" if d.exists() else "new"

    def lock(self, run_id: str) -> FileLock:
        """Held while a run executes; an flock, so a killed process releases it."""
        self.runs.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.runs / f"{run_id}.lock"))

    def is_running(self, run_id: str) -> bool:
        """Whether some process holds the run's lock; writes nothing (no lock file: nobody ever ran it)."""
        if not (self.runs / f"{run_id}.lock").exists():
            return False
        lock = self.lock(run_id)
        try:
            lock.acquire(timeout=0)
        except Exception:  # noqa: BLE001 - filelock.Timeout: somebody holds it
            return True
        lock.release()
        return False

    def set_aside(self, run_id: str, why: str) -> Path:
        """Move a run's directory out of the way (kept, never deleted) before recomputing it."""
        dest = self.dir / "replaced" / f"{run_id}-{why}-{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%S%f')}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.run_dir(run_id), dest)
        return dest


class FileTeacherCache:
    """Trained teachers on disk, one directory per teacher key, created under an exclusive lock so that two
    workers never train the same teacher at once (the second waits, then loads)."""

    def __init__(self, root: str | Path):
        self.dir = Path(root) / ".teachers"

    def has(self, key: str) -> bool:
        return (self.dir / key / DONE).exists()

    def get_or_create(self, key, create):
        self.dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.dir / f"{key}.lock")):
            if self.has(key):
                return self._load(key)
            payload = create()
            self._save(key, payload)
            return payload

    def _save(self, key: str, payload: dict[str, Any]) -> None:
        d = self.dir / key
        if "state_dict" in payload:
            buf = io.BytesIO()
            torch.save(payload["state_dict"], buf)
            atomic_write_bytes(d / "state.pt", buf.getvalue())
        atomic_write_json(d / "payload.json", {k: v for k, v in payload.items() if k != "state_dict"})
        atomic_write_bytes(d / DONE, utc_now().encode())

    def _load(self, key: str) -> dict[str, Any]:
        d = self.dir / key
        payload = read_json(d / "payload.json")
        if (d / "state.pt").exists():
            payload["state_dict"] = torch.load(d / "state.pt", map_location="cpu", weights_only=True)
        return payload


@functools.lru_cache(maxsize=1)
def _code_provenance() -> dict[str, Any]:
    """The convlab source: git commit and whether the tree had uncommitted changes (None outside git)."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    status = git("status", "--porcelain", "--untracked-files=no")
    versions = {}
    for pkg in ("convlab", "torch", "numpy", "scipy", "pot", "pydantic", "pandas"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"git_commit": git("rev-parse", "HEAD"), "git_dirty": None if status is None else bool(status),
            "python": sys.version.split()[0], "versions": versions}


def provenance(seed: int, device: torch.device) -> dict[str, Any]:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    return {**_code_provenance(), "seed": seed, "device": str(device), "device_name": name, "host": socket.gethostname(),
            "platform": platform.platform(), "torch_threads": torch.get_num_threads(), "pid": os.getpid(), "started": utc_now()}
