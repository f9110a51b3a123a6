"""The Python API mirrors the command line: open a study (with overrides), run it, ask its status, read its
results as a DataFrame and its report as objects, from the study file or from its results directory."""

import pytest

import convlab
from convlab.study.plan import StudyError
from tests.study.conftest import TINY_FLOW


def test_open_run_status_results_report(write_study, tmp_path):
    study = convlab.open_study(write_study(TINY_FLOW), ["grid.K=[4, 8, 16]", "seeds=2"], out=tmp_path / "res")
    assert study.status().new == 12 and not study.dir.exists()  # opening writes nothing
    result = study.run()
    assert result.count("ok") == 12
    status = study.status()
    assert (status.done, status.failed, status.left) == (12, 0, 0)
    df = study.results()
    assert len(df) == 12 and {"coupled_error", "K", "solver", "seed"} <= set(df)
    report = study.report(df)
    fit = report.fit(y="coupled_error", where={"kind": "flow", "solver": "euler"})
    assert fit is not None and -1.3 < fit.slope < -0.7 and fit.n_seeds == 2
    with pytest.raises(LookupError):
        report.fit(y="coupled_error", where={"kind": "flow", "solver": "rk4"})
    post = study.post(figures=False)
    assert post.table.exists() and not post.errors and (study.dir / "report.json").exists()
    # the results directory is a study too: the study as it was run, overrides included
    again = convlab.open_study(study.dir)
    assert {r.run_id for r in again.plan.runs} == {r.run_id for r in study.plan.runs} and again.status().done == 12


def test_invalid_input_raises_study_error_with_every_message(write_study, tmp_path):
    with pytest.raises(StudyError) as info:
        convlab.open_study(write_study(TINY_FLOW.replace("y: coupled_error", "y: coupled_eror")), out=tmp_path)
    assert any("rates[0].y: unknown metric" in m for m in info.value.messages)
    study = convlab.open_study(write_study(TINY_FLOW, "ok.yaml"), out=tmp_path / "res")
    with pytest.raises(StudyError, match="--device"):
        study.run(device="tpu")
    assert not (tmp_path / "res").exists()


def test_local_runs_use_one_torch_thread_unless_told_and_record_it(write_study, tmp_path):
    """Threads per worker by measurement (benchmarks/bench_threads.py): one unless --threads / resources.threads
    says otherwise; the number is in each run's provenance, and the caller's setting is restored afterwards."""
    import json

    import torch

    study = convlab.open_study(write_study(TINY_FLOW), ["grid.K=[4]", "grid.solver=[euler]", "seeds=1"], out=tmp_path)
    before = torch.get_num_threads()
    study.run()
    (prov,) = [json.loads(p.read_text()) for p in study.dir.glob("runs/*/provenance.json")]
    assert prov["torch_threads"] == 1 and torch.get_num_threads() == before
    study.run(force=True, threads=2)
    (prov,) = [json.loads(p.read_text()) for p in study.dir.glob("runs/*/provenance.json")]
    assert prov["torch_threads"] == 2 and torch.get_num_threads() == before


SCRIPT = """
import convlab
{guard}study = convlab.open_study({study!r}, ["grid.K=[4, 8]", "grid.solver=[euler]", "seeds=2"], out={out!r})
{indent}result = study.run(jobs=2)
{indent}print("ran", result.count("ok"))
"""


@pytest.mark.parametrize("guarded", [False, True], ids=["unguarded", "guarded"])
def test_a_plain_script_with_jobs_2_runs_or_refuses_at_once(write_study, tmp_path, guarded):
    """Workers are spawned and import the parent's script again: a script with no `__main__` guard is refused
    before anything runs, with the fix in the message (it used to return with every run 'worker died')."""
    import subprocess
    import sys

    script = tmp_path / "run_it.py"
    guard, indent = ('if __name__ == "__main__":\n    ', "    ") if guarded else ("", "")
    script.write_text(SCRIPT.format(guard=guard, indent=indent, study=str(write_study(TINY_FLOW)), out=str(tmp_path)))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    if guarded:
        assert proc.returncode == 0 and "ran 4" in proc.stdout, proc.stderr[-2000:]
    else:
        assert proc.returncode != 0 and "__name__" in proc.stderr and "jobs=1" in proc.stderr
        assert "worker died" not in proc.stderr + proc.stdout and not (tmp_path / "tiny").exists()


def test_a_run_with_overrides_gets_its_own_directory_and_replaces_nothing(write_study, tmp_path):
    """`--set seeds=1` is another study: it runs into <name>+seeds=1 and the study's own results, table and report
    stay byte for byte; each report says which definition and how many of its planned runs it read."""
    path = write_study(TINY_FLOW)
    base = convlab.open_study(path, ["grid.K=[4, 8]"], out=tmp_path)
    base.run()
    base.post(figures=False)
    kept = {p: p.read_bytes() for p in base.dir.rglob("*") if p.is_file()}
    other = convlab.open_study(path, ["grid.K=[4, 8]", "seeds=1"], out=tmp_path)
    assert other.dir.name.startswith("tiny+grid.K=4,8_seeds=1-") and other.dir != base.dir  # (brackets dropped)
    other.run()
    other.post(figures=False)
    assert {p: p.read_bytes() for p in base.dir.rglob("*") if p.is_file()} == kept
    text = (other.dir / "report.md").read_text()
    assert (
        "definition: study.yaml --set grid.K=[4, 8] --set seeds=1" in text and "read 4 finished runs of the 4" in text
    )
    assert "read 8 finished runs of the 8" in (base.dir / "report.md").read_text()
    # resources are not part of what a study is: the same directory
    same = convlab.open_study(path, ["grid.K=[4, 8]", "resources.jobs=1"], out=tmp_path)
    assert same.dir == base.dir
    assert convlab.open_study(path, ["seeds=1"], out=tmp_path).dir.name == "tiny+seeds=1"
    # an override that repeats the file's own value changes nothing: the study's own directory
    assert convlab.open_study(path, ["seeds=2"], out=tmp_path).dir.name == "tiny"


def test_a_changed_definition_keeps_the_previous_one_and_a_refined_one_stays(write_study, tmp_path):
    import json

    path = write_study(TINY_FLOW)
    first = convlab.open_study(path, out=tmp_path)
    first.run()
    path.write_text(path.read_text().replace("K: [2, 4, 8, 16, 32]", "K: [2, 4, 8, 16, 32, 64]"))
    second = convlab.open_study(path, out=tmp_path)
    second.run()
    kept = list((second.dir / "definitions").glob("study-*.json"))
    assert len(kept) == 1 and json.loads(kept[0].read_text())["study"]["grid"]["K"] == [2, 4, 8, 16, 32]
    assert any("definition changed (grid)" in w for w in second.plan.warnings)
    # a definition refine extended is kept when its study file is swept again (no flip back)
    record = json.loads((second.dir / "study.json").read_text())
    record["study"]["extend"] = [{"where": {}, "grid": {"seed": [7]}}]
    (second.dir / "study.json").write_text(json.dumps(record))
    convlab.open_study(path, out=tmp_path).run()
    assert json.loads((second.dir / "study.json").read_text())["study"]["extend"] == record["study"]["extend"]


def test_python_runs_show_progress_and_outcomes_speak_the_tables_language(write_study, tmp_path, capsys):
    """Study.run shows the CLI's progress on stderr (a line per run off a terminal) unless told not to; each
    outcome's status is the table's ('ok'/'failed'), and `ran` says whether it ran in this call."""
    study = convlab.open_study(write_study(TINY_FLOW), ["grid.K=[4, 8]", "seeds=1"], out=tmp_path)
    first = study.run()
    err = capsys.readouterr().err
    assert err.count("] ok ") == 4 and "eta" in err
    assert {(o.status, o.ran) for o in first.outcomes} == {("ok", True)} and first.count("ok") == 4
    again = study.run(progress=False)
    assert capsys.readouterr().err == ""
    assert {(o.status, o.ran) for o in again.outcomes} == {("ok", False)}
    assert again.count("ok") == 0 and again.count("ok", ran=False) == 4 and again.count("ok", ran=None) == 4


def test_a_script_whose_top_level_fails_in_the_workers_raises_naming_it(write_study, tmp_path):
    """Guarded, but the script's top level fails when a worker imports it again: `run` raises before any run,
    naming the script and the fix (it used to return with every run 'failed: worker died')."""
    import subprocess
    import sys

    script = tmp_path / "run_it.py"
    script.write_text(
        "import convlab\n"
        "if __name__ != '__main__':\n    raise RuntimeError('top-level code that only works in the parent')\n"
        + SCRIPT.format(
            guard='if __name__ == "__main__":\n    ',
            indent="    ",
            study=str(write_study(TINY_FLOW)),
            out=str(tmp_path),
        )
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode != 0 and "died while starting" in proc.stderr and str(script) in proc.stderr
    assert "Nothing ran" in proc.stderr
