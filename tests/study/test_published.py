"""The study pages of the docs show the results of the shipped studies as they are: every study file has a
published folder (docs/studies/<name>/, written by `convlab publish`) whose study.json is that study, unchanged
(no overrides, no refinement: re-run and re-publish after changing a study), whose report counts the study's runs,
and a short findings.md beside it."""

import json

import pytest

from convlab.study.plan import expand, load_study
from convlab.study.schema import StudySpec

from .conftest import REPO

STUDIES = sorted((REPO / "studies").glob("*.yaml"))


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_every_shipped_study_is_published_from_its_own_file(path):
    folder = REPO / "docs" / "studies" / path.stem
    assert (folder / "report.json").exists(), f"run `convlab sweep {path.relative_to(REPO)}` and `convlab publish`"
    published = json.loads((folder / "study.json").read_text())
    study = load_study(path)
    assert published["overrides"] == [], "published with --set overrides"
    assert StudySpec.model_validate(published["study"]) == study, "the study file changed since: re-publish"
    runs = len(expand(study))
    report = json.loads((folder / "report.json").read_text())
    assert report["study"] == path.stem and report["n_runs"] == runs
    assert (folder / "report.md").read_text().startswith(f"# {path.stem}: {runs} runs")
    assert list((folder / "figures").glob("*.png")), "no figures published"
    findings = (folder / "findings.md").read_text()
    assert 0 < len(findings) < 1500, "findings.md: a short paragraph on what was measured"
