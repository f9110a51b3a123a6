"""Figure helpers: rows and levels of a table where some columns do not apply to some targets (NaN), and fits
looked up by what they fit, not by a title."""

import math

import pandas as pd
import pytest

from convlab.plotting import fit_for, label, levels, select


def test_levels_and_select_treat_a_missing_value_as_a_level():
    df = pd.DataFrame(
        {"target.name": ["ring8", "ring8", "gaussian", "ring8"], "target.radius": [2.0, 4.0, math.nan, 2.0]}
    )
    assert [[n, r if r == r else None] for n, r in levels(df, ["target.name", "target.radius"])] == [
        ["gaussian", None],
        ["ring8", 2.0],
        ["ring8", 4.0],
    ]
    assert list(select(df, {"target.name": "gaussian", "target.radius": math.nan}).index) == [2]
    assert list(select(df, {"target.name": "ring8", "target.radius": 2.0}).index) == [0, 3]


def test_fit_for_finds_a_rate_by_y_where_and_group_and_refuses_an_undeclared_one():
    report = {
        "study": "s",
        "rates": [
            {
                "y": "coupled_error",
                "where": {"solver": "euler"},
                "x_min": 32,
                "groups": [{"group": {"interpolant": "linear"}, "slope": -1.0}],
            },
            {
                "y": "coupled_error",
                "where": {"solver": "heun"},
                "x_min": 32,
                "groups": [{"group": {"interpolant": "linear"}, "slope": -2.0}],
            },
        ],
    }
    assert (
        fit_for(report, y="coupled_error", where={"solver": "heun"}, group={"interpolant": "linear"})["slope"] == -2.0
    )
    assert fit_for(report, y="coupled_error", where={"solver": "heun"}, group={"interpolant": "trig"}) is None
    with pytest.raises(LookupError, match="0 rates of y='coupled_error' where={'solver': 'rk4'}"):
        fit_for(report, y="coupled_error", where={"solver": "rk4"})
    assert label("coupled_error") == "coupled error (rms)" and label("teacher.n") == "teacher.n"


def test_a_panel_that_cannot_be_drawn_is_skipped_with_its_reason_and_the_study_stands(tmp_path):
    """A figure script asks for a column the table lacks: that panel says why, the figure, table and report are
    written, and the sweep exits 1 naming the panel (no traceback)."""
    from typer.testing import CliRunner

    from convlab.cli import app

    script = tmp_path / "fig.py"
    script.write_text(
        "from pathlib import Path\n"
        "from convlab.plotting import figure, load_results, paper_style, rate_panel, save\n"
        "def main(study_dir):\n"
        "    df, report = load_results(study_dir)\n"
        "    with paper_style():\n"
        "        fig, (ax,) = figure(1)\n"
        "        rate_panel(ax, df, None, x='K', y='no_such_metric', color='k', label='broken')\n"
        "    return save(fig, Path(study_dir) / 'figures', 'fig')\n"
    )
    study = tmp_path / "s.yaml"
    study.write_text(
        "name: s\nbase: {kind: flow, target: {name: ring8}, n_coupled: 50, reference: {K: 32}}\n"
        f"grid: {{K: [2, 4]}}\nfigure: {script}\n"
    )
    result = CliRunner().invoke(app, ["sweep", str(study), "--out", str(tmp_path / "res")])
    assert result.exit_code == 1 and "figure panel not drawn: rate_panel(broken): KeyError" in result.output
    assert (tmp_path / "res" / "s" / "figures" / "fig.png").exists() and (tmp_path / "res" / "s" / "report.md").exists()


def test_fit_for_a_rate_without_group_by_gives_its_pooled_fit_for_any_panel():
    """A figure script that draws one panel per interpolant finds the pooled fit of a rate that does not group by
    interpolant in each panel (it used to find none: no fit line drawn)."""
    report = {"rates": [{"y": "coupled_error", "where": {}, "groups": [{"group": {}, "slope": -1.0}]}]}
    assert fit_for(report, y="coupled_error", group={"interpolant": "linear"})["slope"] == -1.0
    grouped = {"rates": [{"y": "e", "where": {}, "groups": [{"group": {"D": 2}, "slope": -1.0}]}]}
    assert fit_for(grouped, y="e", group={"D": 2, "interpolant": "trig"})["slope"] == -1.0
    assert fit_for(grouped, y="e", group={"D": 3}) is None


def test_a_study_without_a_figure_script_gets_a_standard_figure_per_rate(tmp_path):
    """No figures/<name>.py and no `figure:`: one figure per rate (error against x per group with the fit and its
    band, local slopes below), equivalence-style comparisons included; a named script that does not exist is
    refused when the study is opened."""
    import convlab
    from convlab.study.plan import StudyError
    from tests.study.conftest import TINY_FLOW

    def write_study(text, name="study.yaml"):
        (tmp_path / name).write_text(text)
        return tmp_path / name

    compare = TINY_FLOW + "  - {name: solver difference, x: K, y: coupled_error, compare: solver, test: two_sided}\n"
    study = convlab.open_study(write_study(compare), ["grid.K=[4, 8, 16]"], out=tmp_path / "res")
    study.run()
    post = study.post()
    names = sorted(p.name for p in post.figures)
    assert not post.errors and names == sorted(
        f"tiny_{r}.{ext}" for r in ("euler", "heun", "solver-difference") for ext in ("png", "pdf")
    )
    from matplotlib.image import imread

    assert all(imread(p).shape[0] > 100 for p in post.figures if p.suffix == ".png")
    with pytest.raises(StudyError, match="figure: no such script"):
        convlab.open_study(write_study(TINY_FLOW + "figure: nowhere.py\n", "named.yaml"), out=tmp_path / "res2")
