"""A store that never lies: every stored file is checked when it is read; a damaged run is named (path and why), set
aside and recomputed; a run is ok only with its metrics; a sweep whose table lacks a planned run is not a success;
read-only stores, corrupt artefacts, publish and figures behave (issue 22's findings, each reproduced here)."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from convlab.cli import app
from convlab.runs.artefacts import ArtefactCache, clear_memo
from convlab.study.store import StudyStore
from tests.study.conftest import REPO

SMALL = """
name: small
base: {kind: flow, target: {name: ring8}, n_coupled: 50, reference: {K: 32}}
grid: {K: [4, 8, 16]}
seeds: 2
rates: [{x: K, y: coupled_error, expected: -1, tol: 0.5}]
"""


def cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture
def swept(tmp_path):
    """A finished study: (study file, results root, the study's store)."""
    study = tmp_path / "small.yaml"
    study.write_text(SMALL)
    out = tmp_path / "res"
    code, output = cli("sweep", study, "--out", out)
    assert code == 0, output
    return study, out, StudyStore(out, "small")


def _run_ids(store: StudyStore) -> list[str]:
    return sorted(p.name for p in store.runs.iterdir() if p.is_dir())


@pytest.mark.parametrize(
    "damage, why",
    [
        (lambda d: (d / "result.json").write_text((d / "result.json").read_text()[:40]), "changed after the run"),
        (lambda d: (d / "result.json").unlink(), "result.json: missing"),
        (lambda d: (d / "provenance.json").write_text("{"), "provenance.json: not valid JSON"),
        (lambda d: (d / "DONE").write_text(""), "DONE: neither a completion record nor the time of one"),
        (  # a result with no metrics, certified by a marker that holds a time only (as older markers did)
            lambda d: ((d / "result.json").write_text('{"status": "ok"}'), (d / "DONE").write_text("2026-12-01")),
            "result.json: no metrics",
        ),
    ],
    ids=["truncated-result", "deleted-result", "garbage-provenance", "emptied-marker", "no-metrics"],
)
def test_a_damaged_finished_run_is_named_set_aside_and_recomputed(swept, damage, why):
    """Findings 2 and 4: a truncated result.json used to give exit 0, a stale table and 'all done'; a deleted one an
    `ok` row of NaNs. Now status names it, the table leaves it out, and the next sweep recomputes it."""
    study, out, store = swept
    victim = _run_ids(store)[0]
    before = json.loads((store.run_dir(victim) / "result.json").read_text())
    damage(store.run_dir(victim))
    code, output = cli("status", study, "--out", out)
    assert code == 0 and "done 5, failed 0, running 0, left 1 (1 damaged)" in output, output
    assert f"damaged {victim}: {store.run_dir(victim)}" in output and why in output
    code, output = cli("collect", study, "--out", out)
    assert code == 1 and "5 rows" in output and f"damaged {victim}" in output
    assert victim not in set(pd.read_parquet(out / "small" / "results.parquet")["run_id"])
    code, output = cli("sweep", study, "--out", out)
    assert code == 0 and "ran 1 runs: 1 ok" in output, output
    assert json.loads((store.run_dir(victim) / "result.json").read_text())["coupled_error"] == before["coupled_error"]
    assert [p.name.split("-")[1] for p in (store.dir / "replaced").iterdir()] == ["damaged"]
    df = pd.read_parquet(out / "small" / "results.parquet")
    assert len(df) == 6 and (df["status"] == "ok").all() and df["coupled_error"].notna().all()


def test_a_damaged_error_record_and_study_record_are_named_not_tracebacks(swept):
    """Finding 2: a truncated error.json or a garbage study.json crashed status, sweep and --retry-failed with a
    ~55-line traceback naming no file."""
    study, out, store = swept
    victim = _run_ids(store)[0]
    (store.run_dir(victim) / "DONE").unlink()
    (store.run_dir(victim) / "error.json").write_text('{"stage": "me')
    code, output = cli("status", study, "--out", out)
    assert code == 0 and f"{store.run_dir(victim) / 'error.json'}: not valid JSON" in output
    assert "Traceback" not in output
    code, output = cli("sweep", study, "--out", out, "--retry-failed", "--no-post")
    assert code == 0 and "ran 1 runs: 1 ok" in output
    (store.dir / "study.json").write_text("garbage")
    code, output = cli("status", store.dir)  # the results directory stands for its study: it cannot be read
    assert code == 2 and output.startswith(f"{store.dir / 'study.json'}: damaged: not readable JSON (")
    assert len(output.strip().splitlines()) == 1
    code, output = cli("sweep", study, "--out", out, "--no-post")  # from the study file: set aside and rewritten
    assert code == 0 and "study.json: not valid JSON" in output and "the next sweep sets it aside" in output
    assert json.loads((store.dir / "study.json").read_text())["study"]["name"] == "small"
    assert any(p.name.startswith("study.json-damaged-") for p in (store.dir / "replaced").iterdir())


def test_a_sweep_whose_table_lacks_a_planned_run_fails(swept, monkeypatch):
    """Finding 4: 'ran 32 runs: 32 ok' and exit 0 while the table had 31 rows (a run directory deleted meanwhile)."""
    study, out, store = swept
    shutil.rmtree(store.run_dir(_run_ids(store)[0]))
    from convlab.api import Study

    run = Study.run

    def run_then_lose_one(self, **kwargs):
        result = run(self, **kwargs)
        shutil.rmtree(self.store.run_dir(_run_ids(self.store)[-1]))
        return result

    monkeypatch.setattr(Study, "run", run_then_lose_one)
    code, output = cli("sweep", study, "--out", out)
    assert "ran 1 runs: 1 ok" in output
    assert code == 1 and "small: the table lacks 1 of the 6 planned runs (1 not run)" in output, output
    assert len(pd.read_parquet(out / "small" / "results.parquet")) == 5


def test_a_corrupt_artefact_is_set_aside_and_made_again(tmp_path, caplog):
    """Finding 2: a corrupt teacher payload.pt failed its run with a torch error that named no file."""
    cache, device = ArtefactCache(tmp_path), torch.device("cpu")
    made = []

    def create():
        made.append(1)
        return {"w": torch.arange(4.0)}

    value, created = cache.get("k.teacher", "key", device, create, on_disk=True)
    assert created and len(made) == 1
    payload = tmp_path / ".artefacts" / "k.teacher" / "key-cpu" / "payload.pt"
    data = payload.read_bytes()
    flipped = data[: len(data) // 2] + bytes([data[len(data) // 2] ^ 1]) + data[len(data) // 2 + 1 :]
    for corrupt in (data[:30], flipped):  # truncated; one bit changed
        payload.write_bytes(corrupt)
        clear_memo()
        assert cache.lookup("k.teacher", "key", device, on_disk=True) is None
        assert f"{payload}: damaged" in caplog.text
        again, created = cache.get("k.teacher", "key", device, create, on_disk=True)
        assert created and torch.equal(again["w"], value["w"])
    assert len(made) == 3 and len(list((payload.parent.parent / "replaced").iterdir())) == 2


def test_publish_writes_only_inside_its_docs_folder(swept, tmp_path):
    """Finding 5: a report naming '../../../x' was published three levels up, after deleting what was there."""
    study, out, store = swept
    (store.dir / "figures").mkdir(exist_ok=True)
    docs = tmp_path / "site" / "docs" / "studies"
    victim = tmp_path / "x"
    victim.mkdir()
    (victim / "report.json").write_text("precious")
    report = json.loads((store.dir / "report.json").read_text())
    (store.dir / "report.json").write_text(json.dumps({**report, "study": "../../../x"}))
    code, output = cli("publish", store.dir, "--docs", docs)
    assert code == 2 and "study: not a study name" in output and "'../../../x'" in output
    assert (victim / "report.json").read_text() == "precious" and not docs.exists()
    (store.dir / "report.json").write_text(json.dumps(report))
    docs.mkdir(parents=True)
    os.symlink(victim, docs / "small")  # a link out of the docs folder is refused too
    code, output = cli("publish", store.dir, "--docs", docs)
    assert code == 2 and "a link, or outside" in output and (victim / "report.json").read_text() == "precious"
    (docs / "small").unlink()  # ... and so is a link anywhere below it: its figures folder
    (docs / "small").mkdir()
    (victim / "keep.png").write_text("precious")
    os.symlink(victim, docs / "small" / "figures")
    code, output = cli("publish", store.dir, "--docs", docs)
    assert code == 2 and "figures: a link, or outside" in output and (victim / "keep.png").read_text() == "precious"
    (docs / "small" / "figures").unlink()
    os.symlink(victim / "keep.png", store.dir / "figures" / "x.png")  # a source that is a link is not copied
    code, output = cli("publish", store.dir, "--docs", docs)
    assert code == 2 and "x.png: a link, or outside" in output


def test_figures_are_written_atomically(tmp_path, monkeypatch):
    """Finding 7: a kill -9 during the figure step left a truncated PDF in place. A figure is drawn into memory and
    renamed into place, so a figure step that dies leaves the old file whole."""
    import matplotlib.figure

    from convlab import plotting

    fig, _ = plotting.figure()
    paths = plotting.save(fig, tmp_path, "f")
    old = {p: p.read_bytes() for p in paths}

    def dies_halfway(self, fname, **kwargs):
        (fname.write(b"%PDF-1.4 trunc") if hasattr(fname, "write") else Path(fname).write_bytes(b"%PDF-1.4 trunc"))
        raise KeyboardInterrupt  # the process is killed while it writes

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", dies_halfway)
    fig, _ = plotting.figure()
    with pytest.raises(KeyboardInterrupt):
        plotting.save(fig, tmp_path, "f")
    assert {p: p.read_bytes() for p in paths} == old


def _mount_read_only(path: Path) -> bool:
    ok = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True).returncode == 0
    if ok and subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", str(path)], capture_output=True)
        return False
    return ok


def test_a_read_only_store_is_read_and_refused_in_one_line(swept):
    """Finding 9: on a read-only store `status` said 'running 2' for runs that do not exist, other commands ended
    in a ~43-line traceback."""
    study, out, store = swept
    shutil.rmtree(store.run_dir(_run_ids(store)[0]))  # one run left to do
    (store.runs / f"{_run_ids(store)[0]}.lock").touch()
    if not _mount_read_only(out):
        pytest.skip("cannot bind-mount read-only here (needs root)")
    try:
        code, output = cli("status", study, "--out", out)
        assert code == 0 and "done 5, failed 0, running 0, left 1" in output, output
        code, output = cli("sweep", study, "--out", out)
        assert code == 1 and output.strip().splitlines()[-1].endswith(
            "cannot write the results here (Read-only file system); sweep into another --out"
        )
        for command, file in (("collect", "results.parquet"), ("report", "report.json")):
            code, output = cli(command, study, "--out", out)
            assert code == 1 and "Read-only file system" in output and "Traceback" not in output, output
            assert f"{store.dir / file}: Read-only file system" in output  # the file, not its temporary twin
    finally:
        subprocess.run(["umount", str(out)], check=True)


def test_is_running_writes_nothing_and_sees_a_held_lock(tmp_path):
    store = StudyStore(tmp_path, "s")
    store.runs.mkdir(parents=True)
    assert not store.is_running("abc") and not (store.runs / "abc.lock").exists()
    lock = store.lock("abc")
    with lock:
        assert store.is_running("abc")
    assert not store.is_running("abc")


SHARED_TEACHER = """
name: {name}
base:
  kind: characteristic
  target: {{name: ring8}}
  T: 0.99
  teacher: {{n: 500, net: {{width: 64}}, optim: {{steps: 1500, batch_size: 128}}}}
  characteristics: {{K: 4, m: 64}}
  student: {{net: {{width: 64}}, optim: {{steps: 10, batch_size: 32}}}}
  eval: {{n_coupled: 64, n_w2: 32, n_velocity: 64, floor_repeats: 1}}
  reference: {{K: 32}}
"""


def test_two_studies_sharing_a_results_root_train_their_teacher_once(tmp_path):
    """Finding 6: two studies sharing one --out both trained the same teacher (both teacher_cached=False). The
    artefact is claimed under its content-keyed lock, so the second waits and loads it, whatever study it runs."""
    out = tmp_path / "res"
    procs = []
    for name in ("one", "two"):
        (tmp_path / f"{name}.yaml").write_text(SHARED_TEACHER.format(name=name))
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "convlab", "sweep", str(tmp_path / f"{name}.yaml"), "--out", str(out)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
                cwd=REPO,
            )
        )
        time.sleep(0.05)
    for p in procs:
        output = p.communicate(timeout=300)[0]
        assert p.returncode == 0, output
    rows = [pd.read_parquet(out / name / "results.parquet").iloc[0] for name in ("one", "two")]
    assert sorted(bool(r["teacher_cached"]) for r in rows) == [False, True]
    assert rows[0]["teacher_final_loss"] == rows[1]["teacher_final_loss"]
    assert len(list((out / ".artefacts" / "characteristic.teacher").glob("*-cpu"))) == 1


def test_a_run_that_died_before_it_started_is_a_failure_not_damage(tmp_path):
    """A lost SLURM task leaves error.json (its reason) and no provenance: a failed run, shown with its reason."""
    store = StudyStore(tmp_path, "s")
    d = store.run_dir("abc")
    d.mkdir(parents=True)
    (d / "error.json").write_text(json.dumps({"stage": "slurm", "reason": "SLURM task 7_0 ended TIMEOUT"}))
    files = store.inspect("abc")
    assert files.state == "failed" and files.error["reason"].endswith("TIMEOUT") and files.provenance is None


def test_figures_of_every_study_skip_one_that_cannot_be_read(swept, tmp_path):
    """One damaged study.json used to stop `convlab figures` for every study under --out."""
    study, out, store = swept
    other = tmp_path / "other.yaml"
    other.write_text(SMALL.replace("name: small", "name: other"))
    assert cli("sweep", other, "--out", out)[0] == 0
    (store.dir / "study.json").write_text("{")
    code, output = cli("figures", "--out", out)
    assert code == 1 and f"{store.dir}: skipped: {store.dir / 'study.json'}: damaged" in output


def test_a_study_run_with_allow_large_can_be_read_again(tmp_path, monkeypatch):
    """The plan-size limit lifted for a sweep is lifted for its results directory too (its study.json says so), and
    every command that opens a study takes --allow-large."""
    import convlab.study.plan as plan

    monkeypatch.setattr(plan, "MAX_RUNS", 4)
    study = tmp_path / "small.yaml"
    study.write_text(SMALL)
    out = tmp_path / "res"
    assert cli("sweep", study, "--out", out)[0] == 2
    assert cli("sweep", study, "--out", out, "--allow-large")[0] == 0
    assert cli("status", out / "small")[0] == 0
    assert cli("status", study, "--out", out)[0] == 2
    for command in ("status", "collect", "report", "figures"):
        assert cli(command, study, "--out", out, "--allow-large")[0] == 0, command


def test_a_long_exclude_list_and_a_grid_of_errors_are_handled_fast(tmp_path):
    """Exclusions are set lookups (50 000 entries against 20 000 points used to take minutes); a grid whose every
    point is invalid stops after the first 25 messages instead of validating every point."""
    from convlab.study.plan import MAX_ERRORS, _exclusions

    excluded = _exclusions([{"K": k, "solver": "heun"} for k in range(50_000)] + [{"T": 1}])
    start = time.perf_counter()
    hits = sum(excluded({"K": k, "solver": s, "T": 0.5}) for k in range(10_000) for s in ("euler", "heun"))
    assert hits == 10_000 and time.perf_counter() - start < 5
    assert excluded({"K": 3, "solver": "euler", "T": 1.0})  # 1 == 1.0, as the config holds it
    study = tmp_path / "bad.yaml"
    study.write_text(SMALL.replace("grid: {K: [4, 8, 16]}", f"grid: {{K: {list(range(-9_999, 1))}}}"))
    start = time.perf_counter()
    code, output = cli("sweep", study, "--out", tmp_path / "res", "--dry-run")
    assert code == 2 and output.count("grid.K[") == MAX_ERRORS and time.perf_counter() - start < 10
