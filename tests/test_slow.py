"""Longer statistical checks, run by .ci/run after the default suite (`pytest -m slow`)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from convlab.demo import main
from convlab.fields import exact_field
from convlab.solvers import Reference, as_solver, reference_flow
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
            {"name": "sphere_atoms", "d": 2, "D": 6, "s": 0.3, "n_atoms": 256},
            {"name": "torus_atoms", "d": 1, "D": 3, "s": 0.3, "n_atoms": 256},
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
    exact = reference_flow(field, x0, T=1.0, reference=Reference(solver="dop853"), rtol=1e-13, atol=1e-13)
    errors = errors_over_K(field, x0, exact, 1.0, solver, "uniform", [2**j for j in range(3, 13)])
    assert abs(measured_order(errors) - as_solver(solver).order) <= TOLERANCE, errors


def test_manifold_dim_at_small_sizes_runs_to_the_end_with_its_verdicts_and_figures(tmp_path):
    """The shipped manifold_dim study (its blocks, rates and figure script) at small sizes: d = 1, D in {2, 16},
    n up to 1000, 2 seeds, a short neural training. The control's paired log-ratio is flat to rounding, so its
    equivalence verdicts are 'independent' and 'not slower'; every neural run records its held-out selection and
    convergence check, and its generator's error; the three figures are drawn."""
    import json

    import pandas as pd
    import yaml

    from tests.study.conftest import REPO, convlab

    study = yaml.safe_load((REPO / "studies" / "manifold_dim.yaml").read_text())
    for block in study["blocks"]:
        block["zip"] = [{"target.d": [1, 1], "target.D": [2, 16]}]
        block["grid"] = {"teacher.n": [100, 300, 1000]}
        if block["name"] == "neural":
            block["base"]["teacher"]["optim"] = {"steps": 200}
            block["base"]["teacher"]["net"]["width"] = 32
            block["base"]["student"]["optim"] = {"steps": 100}
            block["base"]["student"]["net"]["width"] = 32
    study["seeds"] = 2
    study["figure"] = str(REPO / "figures" / "manifold_dim.py")  # the shipped script, from the copy's directory
    path = tmp_path / "manifold_dim.yaml"
    path.write_text(yaml.safe_dump(study))
    out = tmp_path / "res"
    convlab("sweep", path, "--out", out, "--jobs", "2", check=0, timeout=1800)
    assert {p.name for p in (out / "manifold_dim" / "figures").glob("*.png")} == {
        "manifold_dim.png",
        "manifold_dim_ratio.png",
        "manifold_dim_trend.png",
    }
    report = json.loads((out / "manifold_dim" / "report.json").read_text())
    (control,) = [r for r in report["rates"] if r["name"].startswith("D-independence, control")]
    (level,) = control["equivalence"][0]["levels"]
    assert level["verdict"] == "independent" and level["one_sided"] == "not slower" and abs(level["slope"]) < 1e-9
    assert level["reference"] == 16 and level["level"] == 2
    df = pd.read_parquet(out / "manifold_dim" / "results.parquet")
    neural = df[df["teacher.kind"] == "trained"]
    assert len(neural) == 12 and neural["teacher_converged"].notna().all()
    assert (neural["teacher_flow_error_half"] > 0).all() and (neural["student_e2e_error"] > 0).all()
    assert neural["teacher_best_step"].between(0, 200).all() and neural["student_best_step"].between(0, 100).all()
