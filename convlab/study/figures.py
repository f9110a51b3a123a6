"""Figure scripts: one per study (figures/<name>.py by default), each with main(study_dir) -> [paths]. A study with
no script gets the standard figure of each of its rates (convlab.plotting.rate_figures); a script the study names
in `figure:` must exist (the plan checks it)."""

from __future__ import annotations

import runpy
from pathlib import Path

from convlab.study.schema import StudySpec, figure_script


def make_figures(study: StudySpec, source: str | Path, study_dir: str | Path) -> tuple[list[Path], list[str]]:
    """Run the study's figure script on its stored results, or draw the standard figure of each rate when it has
    none: (the files written, the panels that could not be drawn and why)."""
    from convlab import plotting  # matplotlib and seaborn, loaded only when figures are drawn

    script = figure_script(study, source)
    plotting.SKIPPED.clear()
    if script.is_file():
        paths = list(runpy.run_path(str(script))["main"](Path(study_dir)))
    elif study.figure is not None:
        raise FileNotFoundError(f"figure: {study.figure}: no such script ({script})")
    else:
        paths = plotting.rate_figures(study_dir, study.name)
    return paths, list(plotting.SKIPPED)
