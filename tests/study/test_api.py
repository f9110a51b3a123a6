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
