"""Small studies written to a temporary directory, and a helper that runs the real `convlab` command."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

TINY_FLOW = """
name: tiny
base:
  kind: flow
  target: {name: ring8}
  interpolant: linear
  n_coupled: 200
  reference: {K: 128}
grid:
  solver: [euler, heun]
  K: [2, 4, 8, 16, 32]
seeds: 2
rates:
  - name: Euler
    x: K
    y: coupled_error
    where: {kind: flow, solver: euler}
    expected: -1
    tol: 0.3
  - name: Heun
    x: K
    y: coupled_error
    where: {kind: flow, solver: heun}
    expected: -2
    tol: 0.3
"""


@pytest.fixture
def write_study(tmp_path):
    def write(text: str, name: str = "study.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


def convlab(*args, cwd=None, check=None, timeout=600, env_extra=None) -> subprocess.CompletedProcess:
    """The installed CLI as a user runs it (python -m convlab), in a subprocess."""
    # One OpenMP thread: a test process and the command's both spinning two threads on two cores (or any other
    # load on the machine) can slow a run a hundredfold; what these tests check does not depend on threads.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **(env_extra or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "convlab", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def spawn_sweep(study, out, *args, threads: bool = True) -> subprocess.Popen:
    """`convlab sweep STUDY --out OUT --no-post ARGS` in the background, in its own session (so that a test can
    kill -9 the whole group), output discarded; one OpenMP thread unless threads=False."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"} if threads else None
    return subprocess.Popen(
        [sys.executable, "-m", "convlab", "sweep", str(study), "--out", str(out), "--no-post", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )
