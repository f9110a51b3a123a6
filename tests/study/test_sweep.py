"""`convlab sweep` end to end through the real command: resume, failures, kill -9, concurrency, outputs."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.study.conftest import REPO, TINY_FLOW, convlab, spawn_sweep

FIGURE = REPO / "figures" / "quickstart.py"


def _done_markers(out: Path, study: str) -> dict[str, str]:
    return {p.parent.name: p.read_text() for p in (out / study / "runs").glob("*/DONE")}


def test_sweep_resume_collect_report_and_figures(write_study, tmp_path):
    study = write_study(TINY_FLOW + f"figure: {FIGURE}\n")
    out = tmp_path / "res"
    first = convlab("sweep", study, "--out", out, check=0)
    assert "ran 20 runs: 20 ok, 0 failed" in first.stdout
    markers = _done_markers(out, "tiny")
    assert len(markers) == 20
    df = pd.read_parquet(out / "tiny" / "results.parquet")
    assert len(df) == 20 and df["run_id"].is_unique and (df["status"] == "ok").all()
    for col in (
        "K",
        "solver",
        "target.name",
        "reference.K",
        "seed",
        "coupled_error",
        "nfe",
        "prov.git_commit",
        "prov.host",
        "prov.versions.torch",
    ):
        assert col in df, col
    report = json.loads((out / "tiny" / "report.json").read_text())
    assert report["rates"][0]["groups"][0]["verdict"] in ("consistent", "inconclusive")
    assert (out / "tiny" / "results.csv").exists() and (out / "tiny" / "report.md").exists()
    pngs = {p: p.read_bytes() for p in (out / "tiny" / "figures").glob("*")}
    assert len(pngs) == 2
    # again: nothing recomputed, same table; figures regenerate to the same bytes
    again = convlab("sweep", study, "--out", out, check=0)
    assert "ran 0 runs" in again.stdout and _done_markers(out, "tiny") == markers
    convlab("figures", "--out", out, check=0)
    assert {p: p.read_bytes() for p in pngs} == pngs
    status = convlab("status", study, "--out", out, check=0)
    assert "done 20, failed 0, running 0, left 0" in status.stdout
    rep = convlab("report", study, "--out", out, "--json", check=0)
    assert json.loads(rep.stdout)["study"] == "tiny"
    # a results directory stands for its study (its study.json), from any working directory, file or no file
    study.unlink()
    by_dir = convlab("report", out / "tiny", "--json", cwd=tmp_path.parent, check=0)
    assert json.loads(by_dir.stdout) == json.loads(rep.stdout)
    figs = convlab("figures", out / "tiny", cwd=tmp_path.parent, check=0)
    assert figs.stdout.count("figure: ") == len(pngs) and {p: p.read_bytes() for p in pngs} == pngs


def test_a_rate_with_too_few_points_is_reported_and_still_drawn(write_study, tmp_path):
    """One K value leaves nothing to fit: the report says so (slope null in report.json) and the figure is drawn."""
    grouped = TINY_FLOW.replace("    tol: 0.3\n", "    tol: 0.3\n    group_by: [interpolant]\n")  # the figure's panels
    study = write_study(grouped + f"figure: {FIGURE}\n")
    out = tmp_path / "res"
    convlab("sweep", study, "--out", out, "--set", "grid.K=[4]", "--set", "seeds=1", check=0)
    (folder,) = out.glob("tiny+*")  # a run with overrides is a study of its own
    group = json.loads((folder / "report.json").read_text())["rates"][0]["groups"][0]
    assert group["verdict"] == "insufficient data" and group["slope"] is None
    assert len(list((folder / "figures").glob("*"))) == 2


def test_invalid_input_exits_2_and_writes_nothing(write_study, tmp_path):
    out = tmp_path / "res"
    bad = write_study(TINY_FLOW.replace("K: [2, 4, 8, 16, 32]", "K: [2, -4]"))
    proc = convlab("sweep", bad, "--out", out, check=2)
    assert f"{bad}: grid.K[1]: Input should be greater than or equal to 1 (got -4)" in proc.stderr
    assert not out.exists()  # every other bad input: tests/study/test_bad_input.py (in process)
    assert convlab("sweep", write_study(TINY_FLOW), "--out", out, "--jobs", "0").returncode == 2  # typer's own check
    dry = convlab("sweep", write_study(TINY_FLOW), "--out", out, "--dry-run", check=0)
    assert "20 runs" in dry.stdout and not out.exists()


FAILING = """
name: failing
base:
  kind: characteristic
  target: {name: ring8}
  teacher: {n: 200, optim: {steps: 60, batch_size: 64, grad_clip: null}}
  student: {optim: {steps: 10, batch_size: 64}}
  characteristics: {K: 4, m: 64}
  eval: {n_coupled: 100, n_w2: 50, n_velocity: 200, floor_repeats: 1}
  reference: {K: 32}
grid:
  teacher.optim.lr: [1.0e-3, 1.0e+6]
  characteristics.K: [2, 4]
"""


def test_failed_runs_are_recorded_skipped_and_retried_on_request(write_study, tmp_path):
    study, out = write_study(FAILING), tmp_path / "res"
    first = convlab("sweep", study, "--out", out, "--jobs", "2", check=1)
    assert "ran 4 runs: 2 ok, 2 failed" in first.stdout and "non-finite loss" in first.stdout
    errors = [json.loads(p.read_text()) for p in (out / "failing" / "runs").glob("*/error.json")]
    assert len(errors) == 2 and all(e["stage"] == "teacher" and "non-finite loss" in e["reason"] for e in errors)
    # one trained teacher per lr, shared by both K: the diverged one is remembered, not retrained
    assert len(list((out / ".artefacts" / "characteristic.teacher").glob("*/DONE"))) == 2
    df = pd.read_parquet(out / "failing" / "results.parquet")
    assert sorted(df["status"]) == ["failed", "failed", "ok", "ok"]
    ok = df[df["status"] == "ok"]
    assert sorted(ok["teacher_cached"]) == [False, True]
    again = convlab("sweep", study, "--out", out, check=1)
    assert "ran 0 runs" in again.stdout and "2 failed before (rerun with --retry-failed)" in again.stdout
    retried = convlab("sweep", study, "--out", out, "--retry-failed", check=1)
    assert "ran 2 runs: 0 ok, 2 failed" in retried.stdout
    assert len(list((out / "failing" / "replaced").iterdir())) == 2  # the earlier failures are kept


def test_force_recomputes_and_keeps_the_old_results(write_study, tmp_path):
    study, out = write_study(TINY_FLOW), tmp_path / "res"
    convlab("sweep", study, "--out", out, "--set", "grid.K=[2]", "--no-post", check=0)
    (folder,) = out.glob("tiny+*")  # a run with overrides is a study of its own
    before = _done_markers(out, folder.name)
    forced = convlab("sweep", study, "--out", out, "--set", "grid.K=[2]", "--force", "--no-post", check=0)
    assert "ran 4 runs: 4 ok" in forced.stdout
    assert len(list((folder / "replaced").iterdir())) == 4 and set(_done_markers(out, folder.name)) == set(before)


SLOW = """
name: slow
base:
  kind: flow
  target: {name: ring8}
  n_coupled: 3000
  reference: {K: 1024}
grid:
  K: [8]
seeds: 10
"""


def test_kill_minus_9_loses_only_the_runs_in_progress(write_study, tmp_path):
    study, out = write_study(SLOW), tmp_path / "res"
    proc = spawn_sweep(study, out)
    deadline = time.time() + 300
    while len(_done_markers(out, "slow")) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _done_markers(out, "slow")
    assert 3 <= len(before) < 10, "the sweep was not killed in the middle"
    started = {p.name for p in (out / "slow" / "runs").iterdir() if p.is_dir()}
    status = convlab("status", study, "--out", out, check=0)
    assert f"done {len(before)}" in status.stdout
    resumed = convlab("sweep", study, "--out", out, check=0)
    assert f"ran {10 - len(before)} runs" in resumed.stdout
    # Progress counts each run once: the finished ones are not counted again on resume.
    counters = [int(line[1:].split("/")[0]) for line in resumed.stdout.splitlines() if line.startswith("[")]
    assert counters and max(counters) == 10 and "left -" not in resumed.stdout
    after = _done_markers(out, "slow")
    assert len(after) == 10 and all(after[k] == v for k, v in before.items())  # finished runs not recomputed
    interrupted = started - set(before)
    assert len(list((out / "slow" / "replaced").glob("*-incomplete-*"))) == len(interrupted)
    df = pd.read_parquet(out / "slow" / "results.parquet")
    assert len(df) == 10 and df["run_id"].is_unique


def _children(pid: int) -> set[int]:
    kids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids.add(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:  # a zombie (dead, not yet reaped by whoever adopted it) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the worker processes")
def test_workers_exit_when_the_sweep_process_is_killed(write_study, tmp_path):
    study, out = write_study(SLOW), tmp_path / "res"
    proc = spawn_sweep(study, out, "--jobs", "2", threads=False)
    deadline = time.time() + 300
    while not (out / "slow" / "runs").exists() and time.time() < deadline:
        time.sleep(0.1)
    workers = set()
    while len(workers) < 2 and time.time() < deadline:  # the pool's worker processes (and its resource tracker)
        workers = {
            p
            for p in _children(proc.pid)
            if "spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")
        }
        time.sleep(0.1)
    assert workers, "no worker processes found"
    os.kill(proc.pid, signal.SIGKILL)  # the parent only, as an OOM killer or a lost terminal would
    proc.wait()
    deadline = time.time() + 20
    while any(map(_alive, workers)) and time.time() < deadline:
        time.sleep(0.2)
    leftover = [p for p in workers if _alive(p)]
    for p in leftover:
        os.kill(p, signal.SIGKILL)
    assert not leftover, f"workers {leftover} outlived the killed sweep"


def test_two_sweeps_of_one_study_at_once(write_study, tmp_path):
    study, out = write_study(SLOW.replace("seeds: 10", "seeds: 6")), tmp_path / "res"
    cmd = [sys.executable, "-m", "convlab", "sweep", str(study), "--out", str(out)]
    # one torch thread each: two processes spinning two OpenMP threads each on two cores can take minutes
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    ran = sum(int(o[0].split("ran ")[1].split(" runs")[0]) for o in outputs)
    assert ran == 6  # every run computed exactly once between the two
    logs = [p.read_text() for p in (out / "slow" / "runs").glob("*/log.txt")]
    assert len(logs) == 6 and all(log.count("finished in") == 1 for log in logs)
    assert not (out / "slow" / "replaced").exists()
    df = pd.read_parquet(out / "slow" / "results.parquet")
    assert len(df) == 6 and df["run_id"].is_unique


def test_targets_and_module_entry_point():
    listing = convlab("targets", check=0).stdout
    assert (
        "sphere_atoms(d, D=None, radius=1.0, s=0.0, n_atoms=4096, seed=0)" in listing
        and "ring8(radius=4.0, s=0.4)" in listing
    )
    from typer.testing import CliRunner

    from convlab.cli import app

    kinds = CliRunner().invoke(app, ["kinds"])
    assert kinds.exit_code == 0 and all(f"{k}: " in kinds.output for k in ("flow", "characteristic", "pf_ode", "jko"))
    assert "n_coupled" in kinds.output and CliRunner().invoke(app, ["kinds", "flw"]).exit_code == 2
    assert convlab("--help", check=0).stdout.count("sweep") >= 1
    assert convlab("no-such-command").returncode == 2
