"""The 'external' run kind: a model named by a factory (and a checkpoint pinned by its SHA-256) is measured by a
sweep like any run; a model that cannot be measured is refused when the study is planned -- the file, the dotted
path and the reason named, nothing written."""

import hashlib

import pytest
import torch
from typer.testing import CliRunner

from convlab.cli import app
from convlab.runs import RUN_KINDS

from .factories import Tiny

STUDY = """\
name: ext
base:
  kind: external
  target: {{name: ring8}}
  model: {model}
  n_coupled: 200
  n_velocity: 200
  reference: {{K: 64}}
grid:
  solver: [euler, heun]
  K: [4, 8, 16, 32, 64]
seeds: 2
rates:
  - {{name: euler, x: K, y: model_solver_error, where: {{solver: euler}}, expected: -1, tol: 0.2}}
"""


def convlab(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def test_the_exact_field_as_an_external_model_shows_the_solvers_orders(tmp_path):
    path = tmp_path / "ext.yaml"
    path.write_text(STUDY.format(model="{factory: 'tests.evaluate.factories:exact_linear'}"))
    code, out = convlab("sweep", path, "--out", tmp_path / "results", "--jobs", "1")
    assert code == 0, out
    assert "euler" in out and "consistent" in out, out
    rec = RUN_KINDS["external"].run(
        {"target": {"name": "ring8"}, "model": {"factory": "tests.evaluate.factories:exact_linear"}, "K": 8},
        device="cpu",
    )
    m = rec.metrics
    assert m["model_velocity_l2_error"] < 1e-6 and m["model_flow_error"] < 1e-4  # the exact field, in float32
    assert m["model_e2e_error"] == pytest.approx(m["model_solver_error"], rel=1e-3)


def test_a_checkpoint_is_pinned_by_its_sha256(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    torch.save(Tiny().state_dict(), "tiny.pt")
    sha = hashlib.sha256((tmp_path / "tiny.pt").read_bytes()).hexdigest()
    study = tmp_path / "ext.yaml"
    model = "{{factory: 'tests.evaluate.factories:tiny', checkpoint: tiny.pt{}}}"
    study.write_text(STUDY.format(model=model.format(f", sha256: '{sha}'")))
    code, out = convlab("sweep", study, "--dry-run")
    assert code == 0, out
    study.write_text(STUDY.format(model=model.format("")))
    code, out = convlab("sweep", study, "--dry-run")
    assert code == 2 and f"pin it by its SHA-256 (sha256: {sha})" in out, out
    study.write_text(STUDY.format(model=model.format(", sha256: '" + "0" * 64 + "'")))
    code, out = convlab("sweep", study, "--dry-run")
    assert code == 2 and f"has SHA-256 {sha}, not the {'0' * 64}" in out, out


@pytest.mark.parametrize(
    "model, message",
    [
        ("{factory: 'tests.evaluate.no_such_module:f'}", "importing tests.evaluate.no_such_module raised"),
        ("{factory: 'tests.evaluate.factories:missing'}", "has no attribute 'missing'"),
        ("{factory: 'tests.evaluate.factories:raises'}", "raised RuntimeError: no GPU here"),
        ("{factory: 'tests.evaluate.factories:not_a_factory'}", "returned a int, not a model"),
        ("{factory: 'tests.evaluate.factories:wrong_shape'}", "returned shape (7, 1), expected (7, 2)"),
        ("{factory: 'no_such_file.py:f'}", "no file no_such_file.py"),
        ("{factory: 'tests.evaluate.factories:tiny', checkpoint: nowhere.pt}", "checkpoint: no file nowhere.pt"),
        ("{factory: 'no colon'}", "expected 'module:attribute'"),
    ],
)
def test_a_model_that_cannot_be_measured_is_refused_at_plan_time(tmp_path, model, message):
    path = tmp_path / "ext.yaml"
    path.write_text(STUDY.format(model=model))
    code, out = convlab("sweep", path, "--out", tmp_path / "results")
    assert code == 2 and f"{path}: base.model" in out and message in out, out
    assert not (tmp_path / "results").exists()  # nothing written
