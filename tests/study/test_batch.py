"""Runs trained as batches: the same answers as alone, per-run failures, the batch plan, and kill -9."""

import json
import os
import signal
import time

import numpy as np
import pandas as pd
import pytest

from convlab.api import open_study
from convlab.study.execute import plan_batches
from tests.study.conftest import convlab, spawn_sweep

TINY = """
name: tinychar
base:
  kind: characteristic
  target: {name: ring8}
  teacher: {n: 400, net: {width: 32, depth: 2}, optim: {steps: 100, batch_size: 64}}
  characteristics: {K: 4, m: 200}
  student: {net: {width: 32, depth: 2}, optim: {steps: 100, batch_size: 64}}
  eval: {n_coupled: 200, n_w2: 200, n_velocity: 400, floor_repeats: 1}
  reference: {K: 64}
grid:
  teacher.optim.lr: [0.002, 1.0e+9]
  characteristics.K: [4, 8]
seeds: 2
"""

ERRORS = ["student_e2e_error", "teacher_flow_error", "velocity_l2_error", "fitting_error", "semigroup_defect"]


def _records(out) -> dict[str, dict]:
    runs = out / "tinychar" / "runs"
    return {p.name: json.loads((p / "result.json").read_text()) for p in runs.iterdir() if (p / "result.json").exists()}


def test_a_batched_sweep_gives_each_run_what_it_gives_alone(write_study, tmp_path):
    """8 runs (4 teachers, 2 of them diverging at lr 1e9) as one batch and one at a time. Loss histories agree to
    float rounding and the errors to 1e-5 relative (measured: <= 1.4e-6 after 100 steps of each stage, float32);
    the diverging teachers fail their runs only, with the reason they give alone."""
    study = write_study(TINY)
    alone, together = tmp_path / "alone", tmp_path / "together"
    open_study(study, out=alone).run(batch="off")
    open_study(study, out=together).run(batch="auto")
    a, b = _records(alone), _records(together)
    assert a.keys() == b.keys() and len(a) == 8
    for rid, ra in a.items():
        rb = b[rid]
        assert (ra["runs_in_batch"], rb["runs_in_batch"]) == (1, 8)
        assert ra["status"] == rb["status"]
        if ra["status"] == "failed":
            assert ra["stage"] == rb["stage"] == "teacher" and ra["reason"] == rb["reason"]
            continue
        for name in ("teacher_loss_history", "student_loss_history"):
            np.testing.assert_allclose(rb[name][:2], ra[name][:2], rtol=1e-6)
        for name in ERRORS:
            assert rb[name] == pytest.approx(ra[name], rel=1e-5), name
    assert sum(r["status"] == "ok" for r in a.values()) == 4


def test_batches_keep_runs_that_share_a_teacher_together(write_study, tmp_path):
    """Runs differing only in K share a teacher: a batch that holds the whole group trains it once; a batch size
    below the group puts its first run first and the rest after it (the unbatched schedule at size 1)."""
    s = open_study(write_study(TINY), out=tmp_path / "res")
    everything = lambda r: True  # noqa: E731
    (one,) = plan_batches(s.plan, s.store, everything, size=8)
    assert len(one.runs) == 8 and not one.after
    pairs = plan_batches(s.plan, s.store, everything, size=2)
    assert [len(b.runs) for b in pairs] == [2, 2, 2, 2]
    assert all(len({r.shared for r in b.runs}) == 1 for b in pairs)  # each pair is one teacher's runs
    off = plan_batches(s.plan, s.store, everything, size="off")
    leaders = [b for b in off if not b.after]
    assert len(leaders) == 4 and len(off) == 8
    assert {r.shared for b in leaders for r in b.runs} == {r.shared for r in s.plan.runs}
    for b in off:
        for i in b.after:
            assert off[i].runs[0].shared == b.runs[0].shared


SLOW = TINY.replace("steps: 100", "steps: 400").replace("1.0e+9", "0.001")


def _done(out) -> dict[str, float]:
    runs = out / "tinychar" / "runs"
    return {p.parent.name: p.stat().st_mtime for p in runs.glob("*/DONE")} if runs.exists() else {}


def test_kill_minus_9_of_a_batched_sweep_then_resume_gives_every_run_once(write_study, tmp_path):
    study, out = write_study(SLOW), tmp_path / "res"
    proc = spawn_sweep(study, out, "--batch", "2")
    deadline = time.time() + 300
    while len(_done(out)) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _done(out)
    assert 2 <= len(before) < 8, "the sweep was not killed in the middle"
    resumed = convlab("sweep", study, "--out", out, "--batch", "2", check=0)
    assert f"ran {8 - len(before)} runs" in resumed.stdout
    after = _done(out)
    assert len(after) == 8 and all(after[k] == v for k, v in before.items())  # finished runs not recomputed
    df = pd.read_parquet(out / "tinychar" / "results.parquet")
    assert len(df) == 8 and df["run_id"].is_unique and (df["status"] == "ok").all()


def test_bad_batch_option_fails_before_anything_runs(write_study, tmp_path):
    study = write_study(TINY)
    bad = convlab("sweep", study, "--out", tmp_path / "res", "--batch", "lots", check=2)
    assert "--batch: must be auto, off or a number of runs >= 1 (got 'lots')" in bad.stderr
    assert not (tmp_path / "res").exists()
    bad_yaml = write_study(TINY + "resources: {batch: 0}\n", "bad.yaml")
    res = convlab("sweep", bad_yaml, "--out", tmp_path / "res", check=2)
    assert "resources.batch" in res.stderr
