"""Results stored under the old names are refused until `convlab migrate` rewrites them; migrated runs are the
runs today's planner makes of the migrated study (nothing is recomputed), under today's names."""

import json

import pandas as pd
from typer.testing import CliRunner

from convlab.cli import app
from convlab.files import atomic_write_json
from convlab.study.plan import load_plan
from convlab.study.store import FORMAT


class _Result:
    def __init__(self, r):
        self.stdout = self.stderr = r.output


def convlab(*args, check):
    """The command in process (fast); exit status and output as a user sees them."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == check, result.output
    return _Result(result)


OLD_STUDY = {
    "name": "old",
    "base": {
        "kind": "pf_ode",
        "target": {"name": "ring8", "std": 0.5},
        "method": "exp",
        "n": 100,
        "reference": {"steps": 64},
    },
    "grid": {"K": [4, 8]},
    "seeds": [0],
    "rates": [{"name": "exp", "x": "h", "y": "solver_error", "where": {"method": "exp"}, "group_by": ["target.std"]}],
    "checks": [],
}


def _old_results(root):
    """A study directory as the format-1 code wrote it: study.json without a format, runs under the old names."""
    d = root / "old"
    atomic_write_json(d / "study.json", {"source": "studies/old.yaml", "overrides": [], "study": OLD_STUDY})
    for i, K in enumerate((4, 8)):
        run = d / "runs" / f"oldid{i}"
        atomic_write_json(run / "config.json", {**OLD_STUDY["base"], "seed": 0, "K": K})
        atomic_write_json(
            run / "result.json",
            {
                "status": "ok",
                "stage": None,
                "reason": None,
                "solver_error": 0.1 / K,
                "R": 4.0,
                "std": 0.5,
                "w2_ub": 0.3,
                "h": 8.0 / K,
                "device": "cpu",
            },
        )
        atomic_write_json(run / "provenance.json", {"seed": 0})
        (run / "DONE").write_text("2026-11-01T00:00:00+00:00")  # what format-1 code wrote: the time
    return d


def test_old_results_are_refused_then_migrated_and_reused(tmp_path):
    d = _old_results(tmp_path / "res")
    refused = convlab("status", d, check=2)
    assert "format 1" in refused.stderr and f"convlab migrate {d}" in refused.stderr
    before = sorted(p.name for p in (d / "runs").iterdir())

    migrated = convlab("migrate", tmp_path / "res", check=0)
    assert f"{d}: 2 runs migrated" in migrated.stdout
    study = json.loads((d / "study.json").read_text())
    assert study["format"] == FORMAT
    assert study["study"]["base"] == {
        "kind": "pf_ode",
        "target": {"name": "ring8", "s": 0.5},
        "solver": "exp_score",
        "n_coupled": 100,
        "reference": {"K": 64},
    }
    rate = study["study"]["rates"][0]
    assert (rate["y"], rate["where"], rate["group_by"]) == ("coupled_error", {"solver": "exp_score"}, ["target.s"])
    # every run moved to the id today's planner gives it: nothing is recomputed
    plan = load_plan(d)
    assert sorted(p.name for p in (d / "runs").iterdir()) == sorted(r.run_id for r in plan.runs) != before
    result = json.loads((d / "runs" / plan.runs[0].run_id / "result.json").read_text())
    assert {"coupled_error", "support_radius", "s", "sampler_w2_ub"} <= set(result) and "solver_error" not in result
    assert "ran 0 runs" in convlab("sweep", d, "--no-post", check=0).stdout
    df = pd.read_parquet(d / "results.parquet")  # rebuilt by migrate
    assert {"coupled_error", "target.s", "solver"} <= set(df) and "solver_error" not in df and len(df) == 2
    assert "already current" in convlab("migrate", d, check=0).stdout


def test_a_study_file_into_old_results_is_refused_and_writes_nothing(tmp_path, write_study):
    d = _old_results(tmp_path / "res")
    study = write_study(
        "name: old\nbase: {kind: pf_ode, target: {name: ring8}, K: 4, n_coupled: 50, reference: {K: 32}}\n"
    )
    before = {p: p.read_bytes() for p in d.rglob("*") if p.is_file()}
    proc = convlab("sweep", study, "--out", tmp_path / "res", check=2)
    assert "run `convlab migrate" in proc.stderr
    assert {p: p.read_bytes() for p in d.rglob("*") if p.is_file()} == before


def test_a_study_file_with_old_names_is_told_the_new_ones(write_study):
    proc = convlab(
        "sweep",
        write_study("name: x\nbase: {kind: pf_ode, target: {name: ring8, std: 0.5}, method: exp, n: 10}\n"),
        "--dry-run",
        check=2,
    )
    for hint in (
        "base.method: renamed to 'solver'",
        "base.n: renamed to 'n_coupled'",
        "base.target.std: renamed to 's'",
    ):
        assert hint in proc.stderr, proc.stderr


def test_runs_stored_before_new_keys_with_defaults_move_to_their_new_ids(tmp_path):
    """Format 2 -> 3: a characteristic run stored before teacher.clean, net.skip and eval.converged_tol existed has
    a config without them; its id is a hash of the full config, so migrate revalidates it (defaults filled in) and
    moves it to the id today's planner gives the same run -- resumed, not recomputed."""
    from convlab.runs.characteristic import CharacteristicRun
    from convlab.study.plan import run_id

    cfg = CharacteristicRun.model_validate(
        {"target": {"name": "ring8"}, "teacher": {"kind": "oracle"}, "student": {"init": "random"}}
    )
    old = cfg.model_dump(mode="json")
    del (
        old["teacher"]["clean"],
        old["teacher"]["net"]["skip"],
        old["student"]["net"]["skip"],
        old["eval"]["converged_tol"],
    )
    run = tmp_path / "res" / "old" / "runs" / "0123456789abcdef"
    run.mkdir(parents=True)
    atomic_write_json(run / "config.json", old)
    atomic_write_json(run / "result.json", {"teacher_flow_error": 0.0})
    atomic_write_json(run / "provenance.json", {"seed": 0, "format": 2})
    (run / "DONE").write_text("2026-11-20T00:00:00+00:00")
    convlab("migrate", tmp_path / "res", check=0)
    moved = tmp_path / "res" / "old" / "runs" / run_id(cfg)
    assert moved.is_dir() and not run.exists()
    assert json.loads((moved / "provenance.json").read_text())["migrated"]["from_format"] == 2


def test_format_3_runs_move_to_the_selection_keys_and_curved_torus_runs_are_recomputed(tmp_path):
    """Format 3 -> 4: teacher/student.selection and heldout_fraction came with defaults (the run moves to its new
    id, resumed); the curved torus's draws changed (paired across D), so its runs are set aside, not carried."""
    from convlab.runs.characteristic import CharacteristicRun
    from convlab.study.plan import run_id

    runs = tmp_path / "res" / "old" / "runs"
    configs = {}
    for name, target in (
        ("aaaaaaaaaaaaaaaa", {"name": "ring8"}),
        ("bbbbbbbbbbbbbbbb", {"name": "curved_torus", "d": 1, "D": 4}),
    ):
        cfg = CharacteristicRun.model_validate(
            {"target": target, "teacher": {"kind": "kernel", "bandwidth": 0.1}, "student": {"init": "random"}}
        )
        old = cfg.model_dump(mode="json")
        for part in ("teacher", "student"):
            del old[part]["selection"], old[part]["heldout_fraction"]
        atomic_write_json(runs / name / "config.json", old)
        atomic_write_json(runs / name / "result.json", {"status": "ok", "teacher_flow_error": 0.1})
        atomic_write_json(runs / name / "provenance.json", {"seed": 0, "format": 3})
        (runs / name / "DONE").write_text("2026-11-30T00:00:00+00:00")
        configs[name] = cfg
    out = convlab("migrate", tmp_path / "res", check=0)
    assert "1 runs migrated" in out.stdout and "1 runs set aside to replaced/" in out.stdout
    assert (runs / run_id(configs["aaaaaaaaaaaaaaaa"]) / "DONE").exists()
    assert not (runs / "bbbbbbbbbbbbbbbb").exists() and not (runs / run_id(configs["bbbbbbbbbbbbbbbb"])).exists()
    (aside,) = (tmp_path / "res" / "old" / "replaced").iterdir()
    assert aside.name.startswith("bbbbbbbbbbbbbbbb-draws-changed-")


def test_format_4_runs_take_the_atom_target_names_and_the_solver_error_metric(tmp_path):
    """Format 4 -> 5: the atom targets sphere, torus, cube became sphere_atoms, torus_atoms, cube_atoms (the run's
    id moves with its config) and the metric teacher_euler_error became teacher_solver_error, in the run's result
    and in the study's rates; the old names in a study file are refused with the new ones."""
    from convlab.runs.characteristic import CharacteristicRun
    from convlab.study.plan import run_id

    new = CharacteristicRun.model_validate(
        {
            "target": {"name": "sphere_atoms", "d": 1, "D": 3, "n_atoms": 64},
            "teacher": {"kind": "oracle"},
            "student": {"init": "random"},
        }
    )
    old = new.model_dump(mode="json")
    old["target"]["name"] = "sphere"
    d = tmp_path / "res" / "old"
    study = {
        "name": "old",
        "base": old,
        "grid": {"target": [old["target"], {"name": "torus", "d": 1, "D": 3}]},
        "seeds": [0],
        "rates": [{"name": "euler", "x": "characteristics.K", "y": "teacher_euler_error", "where": {}}],
        "checks": [],
    }
    atomic_write_json(d / "study.json", {"source": "studies/old.yaml", "overrides": [], "study": study, "format": 4})
    run = d / "runs" / "cccccccccccccccc"
    atomic_write_json(run / "config.json", old)
    atomic_write_json(run / "result.json", {"status": "ok", "teacher_euler_error": 0.25})
    atomic_write_json(run / "provenance.json", {"seed": 0, "format": 4})
    (run / "DONE").write_text("2026-12-01T00:00:00+00:00")
    assert "format 4" in convlab("status", d, check=2).stderr
    convlab("migrate", tmp_path / "res", check=0)
    moved = d / "runs" / run_id(new)
    assert moved.is_dir() and not run.exists()
    result = json.loads((moved / "result.json").read_text())
    assert result["teacher_solver_error"] == 0.25 and "teacher_euler_error" not in result
    migrated = json.loads((d / "study.json").read_text())["study"]
    assert [t["name"] for t in migrated["grid"]["target"]] == ["sphere_atoms", "torus_atoms"]
    assert migrated["base"]["target"]["name"] == "sphere_atoms"
    assert migrated["rates"][0]["y"] == "teacher_solver_error"


def test_old_target_names_in_a_study_file_are_told_the_new_ones(write_study):
    proc = convlab(
        "sweep",
        write_study("name: x\nbase: {kind: flow, target: {name: cube, d: 2, D: 4}}\n"),
        "--dry-run",
        check=2,
    )
    assert "base.target.name: renamed to 'cube_atoms' (convlab migrate updates stored results) (got 'cube')" in (
        proc.stderr
    ), proc.stderr
