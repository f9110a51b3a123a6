"""`convlab publish`: a results directory's report, study and figures go to docs/studies/<name>/, replacing an
earlier publish (a hand-written findings.md stays); a directory without a report is refused with exit 2."""

import json

import pandas as pd
from typer.testing import CliRunner

from convlab.cli import app


def _results(root, name="tiny", figures=("a.png", "b.png")):
    d = root / name
    (d / "figures").mkdir(parents=True)
    (d / "report.json").write_text(json.dumps({"study": name, "n_runs": 2, "n_failed": 0, "rates": [], "checks": []}))
    (d / "report.md").write_text(f"# {name}: 2 runs (0 failed)\n")
    (d / "study.json").write_text(json.dumps({"format": 3, "study": {"name": name, "base": {}}}))
    for f in figures:
        (d / "figures" / f).write_bytes(b"png " + f.encode())
    (d / "figures" / "a.pdf").write_bytes(b"pdf")
    pd.DataFrame({"prov.git_commit": ["abc", "abc"], "device": ["cpu", "cuda"]}).to_parquet(d / "results.parquet")
    return d


def test_publish_copies_the_report_and_figures_and_replaces_an_earlier_publish(tmp_path):
    docs = tmp_path / "docs"
    results = _results(tmp_path / "results")
    out = CliRunner().invoke(app, ["publish", str(results), "--docs", str(docs)])
    assert out.exit_code == 0, out.output
    page = docs / "tiny"
    assert sorted(p.name for p in (page / "figures").iterdir()) == ["a.png", "b.png"]  # PNGs only
    assert json.loads((page / "report.json").read_text())["study"] == "tiny"
    meta = json.loads((page / "published.json").read_text())
    assert meta["commits"] == ["abc"] and meta["devices"] == ["cpu", "cuda"] and meta["runs"] == 2
    (page / "findings.md").write_text("what was measured")
    (results / "figures" / "b.png").unlink()  # the study's figures changed
    (results / "report.md").write_text("# tiny: new\n")
    assert CliRunner().invoke(app, ["publish", str(results), "--docs", str(docs)]).exit_code == 0
    assert sorted(p.name for p in (page / "figures").iterdir()) == ["a.png"]
    assert (page / "report.md").read_text() == "# tiny: new\n" and (
        page / "findings.md"
    ).read_text() == "what was measured"


def test_publish_refuses_a_directory_without_a_report(tmp_path):
    results = _results(tmp_path / "results")
    (results / "report.json").unlink()
    good = _results(tmp_path / "results", name="other")
    out = CliRunner().invoke(app, ["publish", str(results), str(good), "--docs", str(tmp_path / "docs")])
    assert out.exit_code == 2 and "no report.json" in out.output
    assert (tmp_path / "docs" / "other" / "report.json").exists()  # the others are still published
    assert not (tmp_path / "docs" / "tiny").exists()
