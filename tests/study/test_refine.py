"""`convlab refine` extends the grid where a rate has not settled, within its budget, and the report then says so;
the heavy-tail diagnostic fires on paths that cross a sharp boundary, with the median path at the declared order."""

import json

import pandas as pd
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


PAIRED = """
name: seeds
base: {kind: flow, target: {name: ring8}, solver: euler, n_coupled: 30, reference: {K: 64}}
grid: {K: [4, 8, 16, 32], interpolant: [linear, trig]}
seeds: 2
rates:
  - {x: K, y: coupled_error, group_by: [interpolant], compare: interpolant, reference: trig, test: equivalence,
     delta: 0.05}
"""


def test_refine_adds_paired_seeds_where_an_interval_is_too_wide_and_stops_at_its_budget(write_study, tmp_path):
    """Two seeds leave the linear-vs-trig comparison inconclusive; the report says how many seeds its spread needs,
    and refine adds seeds -- to both interpolants, so the new runs are paired like the old -- one by one until its
    budget (here one seed's 8 runs) is spent, and says that the budget stopped it."""
    out = tmp_path / "res"
    runner = CliRunner()
    assert runner.invoke(app, ["sweep", str(write_study(PAIRED)), "--out", str(out)]).exit_code == 0
    (level,) = json.loads((out / "seeds" / "report.json").read_text())["rates"][0]["equivalence"][0]["levels"]
    assert level["one_sided"] == "inconclusive" and level["seeds_needed_one_sided"] > 3
    assert (
        f"seeds needed at this spread: {level['seeds_needed']} for the equivalence"
        in (out / "seeds" / "report.md").read_text()
    )
    refined = runner.invoke(app, ["refine", str(out / "seeds"), "--max-runs", "10"])
    assert refined.exit_code == 0, refined.output
    assert "round 1: every grid point: seed += [2]" in refined.output
    assert "refined: 8 new runs; the budget of 10 runs took 1 of the" in refined.output
    df = pd.read_parquet(out / "seeds" / "results.parquet")
    assert len(df) == 24 and sorted(df.loc[df["seed"] == 2, "interpolant"].value_counts().to_dict().items()) == [
        ("linear", 4),
        ("trig", 4),
    ]
    level = json.loads((out / "seeds" / "report.json").read_text())["rates"][0]["equivalence"][0]["levels"][0]
    assert level["n_seeds"] == 3


def test_refine_dry_run_says_each_lever_and_why_and_runs_nothing(write_study, tmp_path):
    """A too-wide interval takes paired seeds (not more x), each entry says why; --dry-run runs nothing."""
    out = tmp_path / "res"
    runner = CliRunner()
    runner.invoke(app, ["sweep", str(write_study(PAIRED)), "--out", str(out)])
    before = sorted(p.name for p in (out / "seeds" / "runs").iterdir())
    dry = runner.invoke(app, ["refine", str(out / "seeds"), "--dry-run", "--batch", "off"])
    assert dry.exit_code == 0, dry.output
    assert "seed += [2]" in dry.output and "interval is too wide" in dry.output and "paired seeds" in dry.output
    assert "K +=" not in dry.output and "nothing ran" in dry.output
    assert sorted(p.name for p in (out / "seeds" / "runs").iterdir()) == before
