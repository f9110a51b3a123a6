"""`convlab refine` extends the grid where a rate has not settled, within its budget, and the report then says so;
the heavy-tail diagnostic fires on paths that cross a sharp boundary, with the median path at the declared order."""

import json

from typer.testing import CliRunner

from convlab.cli import app
from convlab.runs import RUN_KINDS

PRE_ASYMPTOTIC = """
name: pre
base:
  kind: flow
  target: {name: ring8}
  interpolant: follmer
  T: 0.999
  grid: quadratic
  solver: euler
  n_coupled: 200
  reference: {K: 512}
grid:
  K: [2, 4, 8, 16]
seeds: 3
rates:
  - {name: Euler, x: K, y: coupled_error, resolved: coupled_resolved, x_min: auto, expected: -1, tol: 0.05}
"""


def _groups(study_dir):
    return json.loads((study_dir / "report.json").read_text())["rates"][0]["groups"]


def test_refine_extends_K_until_the_euler_rate_settles(write_study, tmp_path):
    """Euler's local slopes on the ring (follmer) fall from -1.13 at K = 4..8 to -1.01 only by K = 128: over
    K = 2..16 there is less than a decade to fit; refine doubles K twice a round until the automatic window settles
    within tol = 0.05 of -1, and stops there (12 of its 30 runs)."""
    out = tmp_path / "res"
    runner = CliRunner()
    first = runner.invoke(app, ["sweep", str(write_study(PRE_ASYMPTOTIC)), "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert _groups(out / "pre")[0]["verdict"] == "insufficient data"
    refined = runner.invoke(app, ["refine", str(out / "pre"), "--max-runs", "30"])
    assert refined.exit_code == 0, refined.output
    assert "round 1: every grid point: K += [32, 64]" in refined.output and "every rate settled" in refined.output
    (group,) = _groups(out / "pre")
    assert group["verdict"] == "consistent" and group["x_min"] >= 16 and group["x_max"] >= 128, group
    study = json.loads((out / "pre" / "study.json").read_text())["study"]
    assert study["extend"] and len(list((out / "pre" / "runs").glob("*/DONE"))) <= 12 + 30
    again = runner.invoke(app, ["refine", str(out / "pre"), "--max-runs", "30"])
    assert "0 new runs; every rate settled" in again.output


def test_refine_respects_its_budget(write_study, tmp_path):
    out = tmp_path / "res"
    runner = CliRunner()
    runner.invoke(app, ["sweep", str(write_study(PRE_ASYMPTOTIC)), "--out", str(out), "--no-post"])
    refined = runner.invoke(app, ["refine", str(out / "pre"), "--max-runs", "5"])
    assert "0 new runs; the next round needs 6 runs, over the budget of 5" in refined.output, refined.output
    assert len(list((out / "pre" / "runs").glob("*/DONE"))) == 12


def test_a_few_paths_across_a_sharp_boundary_are_flagged_and_the_median_path_keeps_the_order(write_study, tmp_path):
    """The strongly anisotropic 7-D mixture of studies/heavy_tail.yaml at K = 16..256: the top 1% of paths carry most
    of the mean square, the rms rate is off, the report flags the heavy tail and the median path's slope is -1."""
    kind = RUN_KINDS["flow"]
    target = {"name": "random_mixture", "D": 7, "K": 3, "cov": "full", "var_min": 0.005, "var_max": 1.0, "seed": 0}
    rec = kind.run({"target": target, "K": 64, "n_coupled": 500, "reference": {"K": 512}}, device="cpu").metrics
    assert rec["coupled_top1_share"] > 0.5 and rec["coupled_error"] > 3 * rec["coupled_median"]
    study = write_study(f"""
name: tail
base: {{kind: flow, target: {json.dumps(target)}, n_coupled: 500, reference: {{K: 512}}}}
grid: {{K: [16, 32, 64, 128, 256]}}
seeds: 3
rates:
  - {{name: Euler, x: K, y: coupled_error, expected: -1, tol: 0.15}}
""")
    out = tmp_path / "res"
    assert CliRunner().invoke(app, ["sweep", str(study), "--out", str(out)]).exit_code == 0
    (group,) = _groups(out / "tail")
    assert group["heavy_tail"] and group["top1_share"] > 0.9
    assert group["median_path"]["verdict"] == "consistent" and abs(group["median_path"]["slope"] + 1) < 0.05
    assert group["verdict"] != "consistent"
    assert "heavy tail: the top 1% of paths carry" in (out / "tail" / "report.md").read_text()


def test_refine_says_which_rates_it_cannot_extend(write_study, tmp_path):
    """A rate over a metric (h = S / K of pf_ode) cannot be extended by refine: it says so instead of settling."""
    study = write_study("""
name: h
base: {kind: pf_ode, target: {name: gaussian, D: 2, mean: 1.0, s: 0.5}, S: 2.0, n_coupled: 50, reference: {K: 64}}
grid: {K: [2, 4]}
seeds: 2
rates:
  - {name: step, x: h, y: coupled_error, expected: 1, tol: 0.1}
""")
    out = tmp_path / "res"
    runner = CliRunner()
    runner.invoke(app, ["sweep", str(study), "--out", str(out), "--no-post"])
    refined = runner.invoke(app, ["refine", str(out / "h")])
    assert "not refined: step: x = h is not a numeric config key" in refined.output, refined.output
    assert "every rate settled" not in refined.output
