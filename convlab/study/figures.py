"""Figure scripts: one per study (figures/<name>.py by default), each with main(study_dir) -> [paths]."""

from __future__ import annotations

import runpy
from pathlib import Path

from convlab.study.schema import StudySpec


def figure_script(study: StudySpec, source: str | Path) -> Path:
    rel = study.figure or f"../figures/{study.name}.py"
    return (Path(source).resolve().parent / rel).resolve()


def make_figures(study: StudySpec, source: str | Path, study_dir: str | Path) -> list[Path]:
    """Run the study's figure script on its stored results; [] when the study has no script."""
    script = figure_script(study, source)
    if not script.is_file():
        return []
    return list(runpy.run_path(str(script))["main"](Path(study_dir)))
