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
file or the new one, and a run without DONE or error.json is simply not finished. Every file is also checked when
it is read (`inspect`): DONE records the SHA-256 of result.json, so a result that was truncated, edited or lost
after its run finished is *damaged*, never a success; a damaged run is named with its file and reason, set aside
like an interrupted one (never deleted) and recomputed by the next sweep.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from convlab.device import device_name
from convlab.files import utc_now

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
# 4: held-out selection of trained networks (teacher/student.selection, .heldout_fraction) with defaults, and the
# curved torus's draws paired across D (its stored runs are set aside by migrate and recomputed, not carried).
# 5: the metric teacher_euler_error named teacher_solver_error (characteristics.solver may be exp_euler); the atom
# targets sphere, torus, cube named sphere_atoms, torus_atoms, cube_atoms (their run ids move).
# Bump it whenever a key with a default is added to a run kind (stored ids are hashes of the full config), and
# whenever a name in convlab.study.renames is added.
FORMAT = 5


class StaleResults(Exception):
    """A study directory holds results written under other names (an older format)."""


@dataclass(frozen=True)
class RunFiles:
    """What a run directory holds, checked: its state and, where they were read, its records.

    state: 'done' (DONE, and a result.json with status ok that matches DONE's checksum), 'failed' (a readable
    error.json, no DONE), 'damaged' (a file that should be there is missing, unreadable or changed; `problem` names
    it and says why), 'incomplete' (started, not finished) or 'new'."""

    state: str
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    provenance: dict[str, Any] | None = None
    problem: str | None = None


def done_marker(result: bytes) -> bytes:
    """The content of DONE: when, and the SHA-256 of the result.json it certifies."""
    return json.dumps({"finished": utc_now(), "result_sha256": hashlib.sha256(result).hexdigest()}).encode()


class Damaged(Exception):
    """A stored file that is missing, unreadable or not what convlab wrote; the message names the file."""


def read_record(path: Path, *, required: tuple[str, ...] = (), sha256: str | None = None) -> dict[str, Any]:
    """A JSON object convlab wrote, checked: Damaged('<path>: <why>') when it is missing, not JSON, not an object,
    lacks a required key, or does not match its checksum."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise Damaged(f"{path}: missing") from None
    except OSError as err:
        raise Damaged(f"{path}: unreadable ({err.strerror or err})") from None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise Damaged(f"{path}: changed after the run finished (its SHA-256 is not the one DONE recorded)")
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise Damaged(f"{path}: not valid JSON ({err})") from None
    if not isinstance(obj, dict):
        raise Damaged(f"{path}: not a JSON object")
    missing = [k for k in required if k not in obj]
    if missing:
        raise Damaged(f"{path}: no {', '.join(missing)}")
    return obj


class StudyStore:
    """The run directories of one study under a results root."""

    def __init__(self, root: str | Path, study: str):
        self.root = Path(root)
        self.dir = self.root / study
        self.runs = self.dir / "runs"

    def run_dir(self, run_id: str) -> Path:
        return self.runs / run_id

    def format(self) -> int | None:
        """The format of the stored results (study.json's, else the runs'; 1 where none is written), None for none.
        A damaged study.json or provenance.json is passed over (the run is recomputed, study.json rewritten)."""
        if (self.dir / STUDY).exists():
            try:
                return read_record(self.dir / STUDY).get("format", 1)
            except Damaged:
                pass
        for prov in self.runs.glob("*/" + PROVENANCE) if self.runs.is_dir() else ():
            try:
                return read_record(prov).get("format", 1)
            except Damaged:
                continue
        return None

    def damaged_study_record(self) -> str | None:
        """Why study.json is damaged ('<path>: <why>'), or None when it is fine or absent."""
        if not (self.dir / STUDY).exists():
            return None
        try:
            data = read_record(self.dir / STUDY, required=("study", "source"))
        except Damaged as err:
            return str(err)
        return None if isinstance(data["study"], dict) else f"{self.dir / STUDY}: 'study' is not a mapping"

    def check_format(self) -> None:
        """Raise StaleResults unless the directory is empty or holds results of this convlab's FORMAT."""
        found = self.format()
        if found not in (None, FORMAT):
            raise StaleResults(
                f"{self.dir}: holds results written under the names of format {found} (this convlab writes "
                f"format {FORMAT}); run `convlab migrate {self.dir}` first, or use another --out"
            )

    def inspect(self, run_id: str) -> RunFiles:
        """The run's state with its records, every file read checked (RunFiles)."""
        d = self.run_dir(run_id)
        try:
            if (d / DONE).exists():
                sha = _done_checksum(d / DONE)
                result = read_record(d / RESULT, required=("status",), sha256=sha)
                if result["status"] != "ok":
                    raise Damaged(f"{d / RESULT}: status {result['status']!r} under a DONE marker")
                if not set(result) - set(_BOOKKEEPING):
                    raise Damaged(f"{d / RESULT}: no metrics (a run is ok only with what it measured)")
                return RunFiles("done", result=result, provenance=read_record(d / PROVENANCE))
            if (d / ERROR).exists():
                # a run that died before it started (a lost SLURM task) has a reason and no provenance: a failure
                error = read_record(d / ERROR, required=("stage", "reason"))
                result = read_record(d / RESULT) if (d / RESULT).exists() else None
                prov = read_record(d / PROVENANCE) if (d / PROVENANCE).exists() else None
                return RunFiles("failed", result=result, error=error, provenance=prov)
        except Damaged as err:
            return RunFiles("damaged", problem=str(err))
        return RunFiles("incomplete" if d.exists() else "new")

    def state(self, run_id: str) -> str:
        """'done', 'failed', 'damaged', 'incomplete' or 'new' (see RunFiles)."""
        return self.inspect(run_id).state

    def lock(self, run_id: str) -> FileLock:
        """Held while a run executes; an flock, so a killed process releases it."""
        self.runs.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.runs / f"{run_id}.lock"))

    def is_running(self, run_id: str) -> bool:
        """Whether some process holds the run's lock; writes nothing, so it answers in a read-only store too (no
        lock file: nobody ever ran it). A shared flock on a read-only descriptor fails exactly while a sweep holds
        the run's exclusive one (filelock's, an flock too)."""
        try:
            fd = os.open(self.runs / f"{run_id}.lock", os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing releases the shared lock
        return False

    def set_aside_file(self, name: str, why: str) -> Path:
        """Move a file of the study directory (a damaged study.json) out of the way, kept under replaced/."""
        dest = self.dir / "replaced" / f"{name}-{why}-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S%f')}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.dir / name, dest)
        return dest

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


def _done_checksum(path: Path) -> str | None:
    """The SHA-256 a DONE marker records for result.json; None for a marker written before it did, which holds the
    time it was written only (result.json is then checked by reading it). Anything else is Damaged: an emptied or
    garbled marker must not switch the checksum off."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise Damaged(f"{path}: unreadable ({getattr(err, 'strerror', None) or err})") from None
    try:
        marker = json.loads(text)
    except json.JSONDecodeError:
        try:
            dt.datetime.fromisoformat(text.strip())  # an older marker: the time only
        except ValueError:
            raise Damaged(f"{path}: neither a completion record nor the time of one") from None
        return None
    if not (isinstance(marker, dict) and isinstance(marker.get("result_sha256"), str)):
        raise Damaged(f"{path}: not a completion record (no result_sha256)")
    return marker["result_sha256"]


# What result.json holds besides the run's metrics (RunRecord.as_dict): a record with nothing else is no result.
_BOOKKEEPING = ("status", "stage", "reason", "device", "runs_in_batch")


def provenance(seed: int, device: torch.device) -> dict[str, Any]:
    name = device_name(device)
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
