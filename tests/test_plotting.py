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
