"""Figure scripts: one per study (figures/<name>.py by default), each with main(study_dir) -> [paths]."""

from __future__ import annotations

import runpy
from pathlib import Path

from convlab.study.schema import StudySpec


def figure_script(study: StudySpec, source: str | Path) -> Path:
    rel = study.figure or f"../figures/{study.name}.py"
    return (Path(source).resolve().parent / rel).resolve()


def make_figures(study: StudySpec, source: str | Path, study_dir: str | Path) -> tuple[list[Path], list[str]]:
    """Run the study's figure script on its stored results: (the files it wrote, the panels it could not draw and
    why); ([], []) when the study has no script."""
    from convlab import plotting

    script = figure_script(study, source)
    if not script.is_file():
        return [], []
    plotting.SKIPPED.clear()
    paths = list(runpy.run_path(str(script))["main"](Path(study_dir)))
    return paths, list(plotting.SKIPPED)
