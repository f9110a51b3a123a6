"""Bad input of every sort is refused before anything runs: exit 2, a message naming the file, the dotted field and
the value, and nothing written (through the real command, in process)."""

import pytest
import torch
from typer.testing import CliRunner

from convlab.cli import app
from tests.study.conftest import REPO, TINY_FLOW

QUICKSTART = (REPO / "studies" / "quickstart.yaml").read_text()
# "Billion laughs": nine anchors of ten aliases each, 10^9 strings from ~350 bytes (finding 1 of issue 22: 7 GB and a
# MemoryError, or nothing at all within 120 s with the anchors inside `description` or `exclude`).
LAUGHS = "".join(
    f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join([f'*{chr(96 + i)}' if i else 'lol'] * 10)}]\n" for i in range(9)
)
FLOW = "name: x\nbase: {kind: flow, target: {name: ring8}, n_coupled: 50, reference: {K: 32}}\n"
RATE = "rates: [{x: K, y: coupled_error, where: {solver: euler}}]\n"
LAUGHS_FLOW = "[" + ", ".join(line.split(": ", 1)[1] for line in LAUGHS.splitlines()) + "]"  # the same, in one line

CASES = [
    # (study text, extra CLI arguments, what the message must say)
    (
        QUICKSTART.replace("y: coupled_error", "y: coupled_eror", 1),
        [],
        "rates[0].y: unknown metric of run kinds characteristic, flow (did you mean 'coupled_error'?) "
        "(got 'coupled_eror')",
    ),
    (FLOW + "rates: [{x: KK, y: coupled_error}]\n", [], "rates[0].x: unknown column (did you mean 'K'?)"),
    (
        FLOW + "rates: [{x: K, y: coupled_error, group_by: [solvr]}]\n",
        [],
        "rates[0].group_by[0]: unknown column (did you mean 'solver'?)",
    ),
    (
        FLOW + "rates: [{x: K, y: coupled_error, resolved: coupled_error}]\n",
        [],
        "rates[0].resolved: coupled_error is not a flag",
    ),
    (
        FLOW + "rates: [{x: K, y: K}]\n",
        [],
        "rates[0].y: unknown metric of run kind flow (a config key, not a metric) (got 'K')",
    ),
    (FLOW + "rates: [{x: K, y: coupled_error, where: {solvr: euler}}]\n", [], "rates[0].where.solvr: unknown column"),
    (
        FLOW + "rates: [{x: K, y: coupled_error, expected: '-1/(target.d + 3)', tol: 0.1}]\n",
        [],
        "rates[0].expected: only numbers, group_by columns",
    ),
    (FLOW + "checks: [{name: c, column: sandwich_holds}]\n", [], "checks[0].column: unknown metric of run kind flow"),
    (FLOW + "checks: [{name: c, column: coupled_error}]\n", [], "checks[0].column: coupled_error is not a flag"),
    ("name: x\nbase: [1, 2\n", [], "not valid YAML"),
    ("name: x\nbase: !!python/object/apply:os.system ['echo pwned']\n", [], "not valid YAML"),
    (FLOW.replace("name: x", "name: ../escape"), [], ": name: String should match pattern"),
    (
        "name: x\nbase: {kind: flow, target: {name: gaussian, mean: .nan}}\n",
        [],
        "base.target.mean: must be a finite number",
    ),
    (
        "name: x\nbase: {kind: flow, target: {name: sphre, d: 2}}\n",
        [],
        "base.target.name: unknown target (did you mean 'sphere_atoms'?)",
    ),
    (
        "name: x\nbase: {kind: flow, target: {name: ring8, radus: 1}}\n",
        [],
        "base.target.radus: unknown parameter of ring8 (did you mean 'radius'?)",
    ),
    ("name: x\nbase: {kind: flw, target: {name: ring8}}\n", [], "base.kind: unknown run kind (did you mean 'flow'?)"),
    (FLOW.replace("n_coupled: 50", "solver: rk5"), [], "base.solver: unknown solver (did you mean 'rk4'?)"),
    (FLOW + "grid: {K: []}\n", [], "grid.K: List should have at least 1 item"),
    (FLOW + "seeds: 0\n", [], "seeds"),
    (FLOW.replace("n_coupled: 50", "T: 1.5"), [], "base.T: Input should be less than or equal to 1 (got 1.5)"),
    (FLOW, ["--set", "seeds"], "--set seeds: expected dotted.key=value"),
    (FLOW, ["--set", "sedes=2"], "--set sedes: unknown study field 'sedes' (did you mean 'seeds'?)"),
    (FLOW, ["--set", "grid.K=[4, -1]"], "grid.K[1]: Input should be greater than or equal to 1 (got -1)"),
    (FLOW, ["--device", "tpu"], "--device: must be auto, cpu or cuda (got 'tpu')"),
    (FLOW, ["--executor", "ray"], "--executor: must be local or slurm (got 'ray')"),
    (FLOW, ["--detach"], "--detach: only with --executor slurm"),
    (
        "name: x\nbase: {kind: pf_ode, target: {name: ring8, std: 0.5}, method: exp}\n",
        [],
        "base.method: renamed to 'solver'",
    ),
    # issue 22: hostile files and values that used to pass validation and fail (or hang) at run time
    (LAUGHS + FLOW, [], "refused: expands to more than 200000 values once its aliases"),
    (FLOW + LAUGHS.replace("a: &a", "description: &a"), [], "refused: expands to more than 200000 values"),
    (FLOW + "exclude: [{K: " + "[" * 100 + "]" * 100 + "}]\n", [], "refused: nested more than 64 levels deep"),
    (FLOW + "description: " + "x" * (1 << 20) + "\n", [], "more than a study file can be (1048576); nothing was read"),
    (FLOW.replace("name: x", "name: " + "x" * 300), [], "name: String should have at most 100 characters"),
    (FLOW + "description: " + "x" * 20000 + "\n", [], "description: String should have at most 10000 characters"),
    (
        FLOW + "grid: {K: " + str(list(range(1, 201))) + ", n_coupled: " + str(list(range(2, 202))) + "}\n",
        [],
        "grid: 40000 grid points, more than a plan may hold (20000); it crosses K (200), n_coupled (200) and 1 seeds",
    ),
    (FLOW.replace("n_coupled: 50", "n_coupled: 1e12"), [], "base.n_coupled: this run needs about"),
    (
        "name: x\nbase: {kind: characteristic, target: {name: ring8}, characteristics: {K: 1000000, m: 10000000}}\n",
        [],
        "base.characteristics.K: this run needs about 72.8 TiB, more than this machine's memory",
    ),
    (FLOW + "grid: {K: [4, 100000000000]}\n", [], "grid.K[1]: this run needs about 5.8 TiB"),  # the time grid
    (
        "name: x\nbase: {kind: flow, target: {name: uniform_sphere, d: 2, D: 1000000}}\n",
        [],
        "base.target.D: the target's random rotation of R^D is a 1000000 x 1000000 matrix",
    ),
    (
        FLOW + "rates: [{x: K, y: coupled_error, x_min: 64, x_max: 8}]\n",
        [],
        "rates[0]: x_max: the window [x_min, x_max] is empty: x_max must be above x_min = 64 (got 8)",
    ),
    (
        FLOW + "rates: [{x: K, y: coupled_error, group_by: [coupled_median]}]\n",
        [],
        "rates[0].group_by[0]: coupled_median is a measured metric of run kind flow, not a setting",
    ),
    (FLOW, ["--set", "base.K=" + LAUGHS_FLOW], "--set base.K: refused: expands to more than 200000 values"),
    (FLOW, ["--device", "tpu", "--dry-run"], "--device: must be auto, cpu or cuda (got 'tpu')"),
    (
        "name: x\nbase: {kind: characteristic, target: {name: ring8}, teacher: {kind: kernel, selection: heldout}}\n",
        [],
        "base.teacher.selection: only a trained teacher has checkpoints to choose (teacher.kind is 'kernel')",
    ),
    (FLOW + "name: y\n", [], "not valid YAML: line 3, column 1: duplicate key 'name' (YAML keys must differ)"),
    (FLOW + "seeds: 100000000000\n", [], "seeds: Input should be less than or equal to 100000 (got 100000000000)"),
    (FLOW, ["--batch", "xyz", "--dry-run"], "--batch: must be auto, off or a number of runs >= 1 (got 'xyz')"),
]


@pytest.mark.parametrize("text, args, message", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, text, args, message):
    study = tmp_path / "study.yaml"
    study.write_text(text)
    out = tmp_path / "res"
    result = CliRunner().invoke(app, ["sweep", str(study), "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    assert not out.exists()


def test_the_billion_laughs_are_refused_in_under_a_second_with_bounded_memory(tmp_path):
    import time
    import tracemalloc

    from convlab.api import Study
    from convlab.study.plan import StudyError

    study = tmp_path / "laughs.yaml"
    study.write_text(LAUGHS + FLOW)
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(StudyError, match="aliases"):
        Study(study, out=tmp_path / "res")
    seconds, (_, peak) = time.perf_counter() - start, tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert seconds < 1.0 and peak < 5 * 2**20, (seconds, peak)


def test_out_naming_a_file_is_refused(tmp_path):
    study, out = tmp_path / "study.yaml", tmp_path / "res"
    study.write_text(FLOW)
    out.write_text("not a directory")
    result = CliRunner().invoke(app, ["sweep", str(study), "--out", str(out)])
    assert result.exit_code == 2 and f"--out: {out} is a file, not a directory" in result.output


def test_refine_needs_rates_and_runs(tmp_path):
    study = tmp_path / "study.yaml"
    study.write_text(FLOW)
    result = CliRunner().invoke(app, ["refine", str(study), "--out", str(tmp_path / "res")])
    assert (
        result.exit_code == 2 and "rates: the study declares no rates, so there is nothing to refine" in result.output
    )
    study.write_text(FLOW + RATE)
    result = CliRunner().invoke(app, ["refine", str(study), "--out", str(tmp_path / "res")])
    assert result.exit_code == 2 and "x: no finished runs yet: run `convlab sweep` first" in result.output


def test_allow_large_lifts_the_memory_and_plan_limits(tmp_path):
    study = tmp_path / "study.yaml"
    study.write_text(FLOW.replace("n_coupled: 50", "n_coupled: 1000000000000"))
    args = ["sweep", str(study), "--out", str(tmp_path / "res"), "--dry-run"]
    assert CliRunner().invoke(app, args).exit_code == 2
    result = CliRunner().invoke(app, [*args, "--allow-large"])
    assert result.exit_code == 0 and "x: 1 runs" in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_refused(tmp_path):
    study = tmp_path / "study.yaml"
    study.write_text(TINY_FLOW)
    result = CliRunner().invoke(app, ["sweep", str(study), "--out", str(tmp_path / "res"), "--device", "cuda"])
    assert (
        result.exit_code == 2
        and "--device: 'cuda' was asked for but no CUDA device is available (got 'cuda')" in result.output
    )
    assert not (tmp_path / "res").exists()


def test_a_where_value_no_run_has_is_a_warning_not_an_error(tmp_path):
    """A grid narrowed by --set leaves some rate with nothing to fit: allowed (the README's smaller recipes do it)."""
    study = tmp_path / "study.yaml"
    study.write_text(FLOW + "grid: {solver: [euler, heun], K: [4, 8]}\n" + RATE)
    result = CliRunner().invoke(
        app, ["sweep", str(study), "--out", str(tmp_path / "res"), "--set", "grid.solver=[heun]", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "rates[0].where.solver: no planned run has solver = 'euler'" in result.output
