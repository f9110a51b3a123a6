"""Results on disk. One directory per run, named by the hash of its validated config:

    <root>/<study>/runs/<run_id>/config.json       the validated config
                                 provenance.json   git commit and dirty flag, versions, device, host, times, seed
                                 log.txt           the run's log
                                 result.json       the record (ok or failed)
                                 error.json        a failed run's stage, reason and traceback
                                 DONE              completion marker, written last
    <root>/<study>/study.json                      the study as it was run (source, overrides, format)
    <root>/.artefacts/<kind>.<artefact>/<key>-<device>/   shared artefacts (trained teachers) on disk

FORMAT is the version of the names in stored results (the vocabulary of config keys and metrics); results of
another format are refused with a pointer to `convlab migrate`, never mixed into a table.

Every file is written atomically (temp file, fsync, rename), so a killed process leaves either the old
file or the new one, and a run without DONE or error.json is simply not finished.
"""

from __future__ import annotations

import datetime as dt
import functools
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

from convlab.files import read_json, utc_now

DONE, ERROR, RESULT, CONFIG, PROVENANCE, LOG, STUDY = (
    "DONE",
    "error.json",
    "result.json",
    "config.json",
    "provenance.json",
    "log.txt",
    "study.json",
)
# 1: names before the one-vocabulary redesign (no "format" in study.json); 2: the names of convlab.runs;
# 3: the characteristic kind's new keys with defaults (teacher.clean, net.skip, eval.converged_tol) are part of
# every run's config, so its run id moved: `convlab migrate` revalidates each stored config and moves the run.
# Bump it whenever a key with a default is added to a run kind: stored ids are hashes of the full config.
FORMAT = 3


class StaleResults(Exception):
    """A study directory holds results written under other names (an older format)."""


class StudyStore:
    """The run directories of one study under a results root."""

    def __init__(self, root: str | Path, study: str):
        self.root = Path(root)
        self.dir = self.root / study
        self.runs = self.dir / "runs"

    def run_dir(self, run_id: str) -> Path:
        return self.runs / run_id

    def format(self) -> int | None:
        """The format of the stored results (study.json's, else the runs'; 1 where none is written), None for none."""
        if (self.dir / STUDY).exists():
            return read_json(self.dir / STUDY).get("format", 1)
        for prov in self.runs.glob("*/" + PROVENANCE) if self.runs.is_dir() else ():
            return read_json(prov).get("format", 1)
        return None

    def check_format(self) -> None:
        """Raise StaleResults unless the directory is empty or holds results of this convlab's FORMAT."""
        found = self.format()
        if found not in (None, FORMAT):
            raise StaleResults(
                f"{self.dir}: holds results written under the names of format {found} (this convlab writes "
                f"format {FORMAT}); run `convlab migrate {self.dir}` first, or use another --out"
            )

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
        dest = self.dir / "replaced" / f"{run_id}-{why}-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S%f')}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.run_dir(run_id), dest)
        return dest


@functools.lru_cache(maxsize=1)
def _code_provenance() -> dict[str, Any]:
    """The convlab source: git commit and whether the tree had uncommitted changes (None outside git)."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            return subprocess.run(
                ["git", "-C", str(here), *args], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    status = git("status", "--porcelain", "--untracked-files=no")
    versions = {}
    for pkg in ("convlab", "torch", "numpy", "scipy", "pot", "pydantic", "pandas"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "python": sys.version.split()[0],
        "versions": versions,
    }


def provenance(seed: int, device: torch.device) -> dict[str, Any]:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    return {
        **_code_provenance(),
        "format": FORMAT,
        "seed": seed,
        "device": str(device),
        "device_name": name,
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "pid": os.getpid(),
        "started": utc_now(),
    }
