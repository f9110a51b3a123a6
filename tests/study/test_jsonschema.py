"""The JSON Schema of study files (`convlab schema`): the committed copy is current, every shipped study points
editors at it and validates against it, and it rejects what convlab rejects (misspelled keys, unknown target
parameters, unknown grid keys, wrong types)."""

import json

import jsonschema
import pytest
import yaml

from convlab.study.jsonschema import study_json_schema
from convlab.study.plan import StudyError, load_study

from .conftest import REPO, TINY_FLOW

COMMITTED = REPO / "docs" / "schema" / "study.schema.json"
MODELINE = "# yaml-language-server: $schema=../docs/schema/study.schema.json"
STUDIES = sorted((REPO / "studies").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator():
    schema = study_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_committed_schema_is_the_generated_one():
    assert json.loads(COMMITTED.read_text()) == study_json_schema(), (
        "docs/schema/study.schema.json is stale: run `convlab schema --out docs/schema/study.schema.json`"
    )


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_shipped_studies_carry_the_modeline_and_validate(path, validator):
    text = path.read_text()
    assert text.splitlines()[0] == MODELINE
    assert (path.parent / MODELINE.split("=", 1)[1]).resolve() == COMMITTED.resolve()
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(yaml.safe_load(text))]
    assert not errors


@pytest.mark.parametrize(
    "change",
    [
        {"base": {"kind": "flow", "solvr": "euler", "target": {"name": "ring8"}}},  # misspelled key
        {"base": {"kind": "flow", "target": {"name": "ring8", "std": 0.1}}},  # a renamed target parameter
        {"base": {"kind": "flow", "target": {"name": "ring9"}}},  # no such target
        {"base": {"kind": "flow", "target": {"name": "ring8"}, "n_coupled": "many"}},  # wrong type
        {"base": {"kind": "flows", "target": {"name": "ring8"}}},  # no such run kind
        {"grid": {"teacher.m": [1, 2]}},  # no such dotted key
        {"grid": {"K": []}},  # an empty list
        {"rates": [{"x": "K"}]},  # a rate without y
        {"blocks": [{"name": "a", "base": {"n_coupled": "many"}}]},  # inside a block
        {"grid": {"solver": ["euler", "rk5"]}},  # no such solver
        {"base": {"kind": "flow", "target": {"name": "ring8"}, "solver": "rk5"}, "grid": {"K": [2, 4]}},
        {"grid": {"K": [-1]}},  # out of bounds, in a grid
        {"base": {"kind": "flow", "target": {"name": "ring8"}, "interpolant": "linaer"}},  # no such interpolant
        {"grid": {"target.name": ["ring9"]}},
    ],
)
def test_schema_and_convlab_reject_the_same_mistakes(change, validator, tmp_path):
    study = {**yaml.safe_load(TINY_FLOW), **change}
    assert list(validator.iter_errors(study)), change
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    with pytest.raises(StudyError):
        from convlab.study.plan import make_plan

        make_plan(load_study(path), path)


def test_schema_command_prints_the_schema():
    from typer.testing import CliRunner

    from convlab.cli import app

    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0 and json.loads(result.output) == study_json_schema()


def test_a_misspelled_base_key_is_named_not_lost_in_a_union(validator):
    """`base` is dispatched on its kind, so the error names the key (it used to say only 'not valid under any of
    the given schemas')."""
    study = {**yaml.safe_load(TINY_FLOW), "base": {"kind": "flow", "solvr": "euler", "target": {"name": "ring8"}}}
    messages = [e.message for e in validator.iter_errors(study)]
    assert any("'solvr' was unexpected" in m for m in messages), messages
    block = {**yaml.safe_load(TINY_FLOW), "blocks": [{"name": "a", "base": {"n_coupld": 3}}]}
    assert any("'n_coupld'" in e.message for e in validator.iter_errors(block))


def test_schema_out_prints_the_modeline_for_a_study_beside_it(tmp_path, validator):
    """Outside the repository the shipped relative modeline does not resolve: `convlab schema --out` writes the
    schema where the user's study is and prints the line that points to it."""
    from typer.testing import CliRunner

    from convlab.cli import app

    out = tmp_path / "study.schema.json"
    result = CliRunner().invoke(app, ["schema", "--out", str(out)])
    assert result.exit_code == 0 and "# yaml-language-server: $schema=study.schema.json" in result.output
    assert json.loads(out.read_text()) == study_json_schema()
