"""Longer statistical checks, run by .ci/run after the default suite (`pytest -m slow`)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from convlab.demo import main
from convlab.fields import exact_field
from convlab.solvers import as_solver, reference_flow
from convlab.targets import make_target
from tests.solvers.test_order import TOLERANCE, errors_over_K, measured_order

pytestmark = pytest.mark.slow


def test_full_demo_recovers_every_declared_order(capsys):
    assert main([]) == 0
    fits = [line for line in capsys.readouterr().out.splitlines() if " slope " in line and "expected" in line]
    assert len(fits) == 4 and all(line.endswith(": consistent") for line in fits)


@settings(max_examples=16)
@given(
    spec=st.sampled_from(
        [
            {"name": "swiss_roll", "s": 0.3, "n_atoms": 256},
            {"name": "sphere", "d": 2, "D": 6, "s": 0.3, "n_atoms": 256},
            {"name": "torus", "d": 1, "D": 3, "s": 0.3, "n_atoms": 256},
            {"name": "subspaces", "d": 1, "D": 3, "s": 0.3},
            {"name": "random_mixture", "D": 3, "K": 5, "cov": "diag", "var_min": 0.3},
        ]
    ),
    solver=st.sampled_from(["euler", "heun", "rk4", "exp_euler"]),
    ip=st.sampled_from(["linear", "trig"]),
    seed=st.integers(0, 10**6),
)
def test_orders_on_named_targets(spec, solver, ip, seed):
    target = make_target(spec)
    field = exact_field(target, ip)
    x0 = torch.randn(6, target.ambient_dim, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    exact = reference_flow(field, x0, T=1.0, reference={"solver": "dop853"}, rtol=1e-13, atol=1e-13)
    errors = errors_over_K(field, x0, exact, 1.0, solver, "uniform", [2**j for j in range(3, 13)])
    assert abs(measured_order(errors) - as_solver(solver).order) <= TOLERANCE, errors


def test_the_readmes_smaller_manifold_recipe_runs_to_the_end_with_honest_intervals(tmp_path):
    """`convlab sweep studies/manifold_dim.yaml --set 'grid.target.d=[1,8]' --set 'grid.target.D=[16,128]' --set
    seeds=2` (24 runs, ~5 min): before issue 13 its figure step crashed ('yerr' must not contain negative values) and
    its 2-seed intervals had zero width. Now it exits 0, draws its figures, and no 2-seed interval is narrower than
    the two seeds' own slopes are apart."""
    import json

    from tests.study.conftest import REPO, convlab

    out = tmp_path / "res"
    convlab(
        "sweep",
        REPO / "studies" / "manifold_dim.yaml",
        "--set",
        "grid.target.d=[1,8]",
        "--set",
        "grid.target.D=[16,128]",
        "--set",
        "seeds=2",
        "--out",
        out,
        "--jobs",
        "2",
        check=0,
        timeout=1800,
    )
    assert {p.name for p in (out / "manifold_dim" / "figures").glob("*.png")} == {
        "manifold_dim.png",
        "manifold_dim_curves.png",
    }
    import numpy as np
    import pandas as pd

    report = json.loads((out / "manifold_dim" / "report.json").read_text())
    df = pd.read_parquet(out / "manifold_dim" / "results.parquet")
    for group in report["rates"][0]["groups"]:
        rows = df[(df["target.d"] == group["group"]["target.d"]) & (df["target.D"] == group["group"]["target.D"])]
        seeds = [
            np.polyfit(np.log(r["teacher.n"]), np.log(r["teacher_flow_error"]), 1)[0] for _, r in rows.groupby("seed")
        ]
        assert group["n_seeds"] == 2 and group["ci_high"] - group["ci_low"] >= abs(seeds[0] - seeds[1])
