"""The SLURM executor end to end on a real cluster (scripts/slurm_cluster.sh starts one; .ci/run does).

Skipped, with the reason, where no SLURM controller answers."""

import json
import subprocess
import time

import pandas as pd
import pytest

from tests.study.conftest import convlab
from tests.study.test_sweep import FAILING, SLOW

try:
    from convlab.study.slurm import SlurmUnavailable, check_available

    check_available()
    REASON = None
except (ImportError, SlurmUnavailable, OSError, subprocess.SubprocessError) as err:
    REASON = (
        f"no SLURM cluster: {err} (start one: scripts/slurm_cluster.sh start DIR; export SLURM_CONF=DIR/slurm.conf)"
    )

pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

# what may differ between executors: wall times, hosts and dates, and where the teacher was trained
VOLATILE = ("prov.", "time_", "_seconds", "seconds", "eval_seconds", "runs_in_batch", "teacher_cached")


def comparable(df: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in df.columns if not any(v in c for v in VOLATILE)]
    return df[cols].sort_values("run_id").reset_index(drop=True)


def test_slurm_sweep_gives_the_local_table(write_study, tmp_path):
    study = write_study(FAILING)
    convlab("sweep", study, "--out", tmp_path / "local", "--jobs", "1", check=1)
    proc = convlab(
        "sweep",
        study,
        "--out",
        tmp_path / "slurm",
        "--executor",
        "slurm",
        "--cpus-per-run",
        "2",
        "--time-min",
        "10",
        check=1,
    )
    assert "submitted 4 runs as SLURM job array(s)" in proc.stdout, proc.stdout
    # the runs reusing a teacher went in a second array after the first
    subs = json.loads((tmp_path / "slurm" / "failing" / "slurm" / "submissions.json").read_text())
    assert len({s["job_id"].split("_")[0] for s in subs.values()}) == 2
    local = pd.read_parquet(tmp_path / "local" / "failing" / "results.parquet")
    slurm = pd.read_parquet(tmp_path / "slurm" / "failing" / "results.parquet")
    pd.testing.assert_frame_equal(comparable(local), comparable(slurm))
    assert sorted(slurm["status"]) == ["failed", "failed", "ok", "ok"]
    # resubmitting skips what is done, and failures stay failures without --retry-failed
    again = convlab("sweep", study, "--out", tmp_path / "slurm", "--executor", "slurm", check=1)
    assert "submitted 0 runs" in again.stdout and "2 failed before" in again.stdout
    # batches of 2: each teacher's two runs in one array task, one array, the same table
    convlab("sweep", study, "--out", tmp_path / "batched", "--executor", "slurm", "--batch", "2", check=1)
    subs = json.loads((tmp_path / "batched" / "failing" / "slurm" / "submissions.json").read_text())
    tasks = {s["job_id"] for s in subs.values()}
    assert len(tasks) == 2 and len({t.split("_")[0] for t in tasks}) == 1
    batched = pd.read_parquet(tmp_path / "batched" / "failing" / "results.parquet")
    assert sorted(batched["runs_in_batch"]) == [2, 2, 2, 2]
    pd.testing.assert_frame_equal(comparable(local), comparable(batched))


def test_cancelled_tasks_are_failed_runs_and_retry_failed_resubmits_only_them(write_study, tmp_path):
    study, out = write_study(SLOW), tmp_path / "res"
    detached = convlab(
        "sweep", study, "--out", out, "--executor", "slurm", "--detach", "--array-parallelism", "1", check=0
    )
    assert "submitted 10 runs" in detached.stdout and "detached" in detached.stdout
    subs = json.loads((out / "slow" / "slurm" / "submissions.json").read_text())
    array = next(iter(subs.values()))["job_id"].split("_")[0]
    deadline = time.time() + 120
    while not list((out / "slow" / "runs").glob("*/DONE")) and time.time() < deadline:
        time.sleep(0.5)
    subprocess.run(["scancel", array], check=True)  # what pre-emption or an admin does to the rest
    deadline = time.time() + 60
    while time.time() < deadline:
        status = convlab("status", study, "--out", out, check=0).stdout
        if "SLURM: 0 runs queued or running" in status:
            break
        time.sleep(1)
    failed = [json.loads(p.read_text()) for p in (out / "slow" / "runs").glob("*/error.json")]
    done = list((out / "slow" / "runs").glob("*/DONE"))
    assert done and failed and len(done) + len(failed) == 10, status
    assert all(f["stage"] == "slurm" and "CANCELLED" in f["reason"] for f in failed), failed
    assert f"failed {len(failed)}" in status
    retried = convlab("sweep", study, "--out", out, "--executor", "slurm", "--retry-failed", check=0)
    assert f"submitted {len(failed)} runs" in retried.stdout
    assert len(list((out / "slow" / "runs").glob("*/DONE"))) == 10
    assert len(pd.read_parquet(out / "slow" / "results.parquet")) == 10
