"""Bad input of every sort is refused before anything runs: exit 2, a message naming the file, the dotted field and
the value, and nothing written (through the real command, in process)."""

import pytest
import torch
from typer.testing import CliRunner

from convlab.cli import app
from tests.study.conftest import REPO, TINY_FLOW

QUICKSTART = (REPO / "studies" / "quickstart.yaml").read_text()
FLOW = "name: x\nbase: {kind: flow, target: {name: ring8}, n_coupled: 50, reference: {K: 32}}\n"
RATE = "rates: [{x: K, y: coupled_error, where: {solver: euler}}]\n"

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
        "base.target.name: unknown target (did you mean 'sphere'?)",
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
