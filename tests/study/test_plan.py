"""Study files: expansion, identity of runs, and invalid input reported as file: dotted.path: message (got VALUE)."""

import pytest

from convlab.study.plan import (
    StudyError,
    expand,
    flatten,
    get_dotted,
    load_plan,
    load_study,
    make_plan,
    run_id,
    set_dotted,
)
from tests.study.conftest import REPO, TINY_FLOW


def test_dotted_helpers():
    tree = {}
    set_dotted(tree, "a.b.c", 1)
    set_dotted(tree, "a.d", [1, 2])
    assert tree == {"a": {"b": {"c": 1}, "d": [1, 2]}}
    assert get_dotted(tree, "a.b.c") == 1 and get_dotted(tree, "a.x", "missing") == "missing"
    assert flatten(tree) == {"a.b.c": 1, "a.d": [1, 2]}


def test_grid_zip_seeds_and_exclude(write_study):
    path = write_study("""
        name: g
        base: {kind: flow, target: {name: ring8}}
        grid: {K: [2, 4, 8]}
        zip: [{solver: [euler, heun], n_coupled: [100, 200]}]
        seeds: [3, 7]
        exclude: [{K: 8, solver: heun}]
    """)
    study = load_study(path)
    assert len(expand(study)) == 3 * 2 * 2
    plan = make_plan(study, path)
    assert len(plan.runs) == 3 * 2 * 2 - 2
    pairs = {(r.config.solver, r.config.n_coupled) for r in plan.runs}
    assert pairs == {("euler", 100), ("heun", 200)}
    assert {r.config.seed for r in plan.runs} == {3, 7}
    assert not any(r.config.K == 8 and r.config.solver == "heun" for r in plan.runs)


def test_blocks_merge_their_base_cross_the_study_grid_and_name_themselves_in_errors(write_study):
    path = write_study("""
        name: b
        base: {target: {name: ring8}, interpolant: linear}
        grid: {T: [1.0, 0.99]}
        blocks:
          - name: flows
            base: {kind: flow, n_coupled: 100}
            grid: {K: [2, 4]}
          - name: pipeline
            base: {kind: characteristic, teacher: {n: 50}}
            grid: {characteristics.K: [2, 4, 8]}
            seeds: [5]
    """)
    plan = load_plan(path)
    kinds = [r.kind for r in plan.runs]
    assert kinds.count("flow") == 2 * 2 and kinds.count("characteristic") == 2 * 3
    flows = [r.config for r in plan.runs if r.kind == "flow"]
    chars = [r.config for r in plan.runs if r.kind == "characteristic"]
    assert all(c.interpolant == "linear" and c.n_coupled == 100 for c in flows)
    assert all(c.teacher.n == 50 and c.seed == 5 for c in chars)
    assert {c.T for c in chars} == {1.0, 0.99}
    bad = write_study(
        path.read_text().replace("teacher: {n: 50}", "teacher: {n: 0}").replace("K: [2, 4]}", "K: [2, -4]}"), "bad.yaml"
    )
    with pytest.raises(StudyError) as err:
        load_plan(bad)
    text = str(err.value)
    assert "blocks[1].base.teacher.n" in text and "(got 0)" in text
    assert "blocks[0].grid.K[1]" in text and "(got -4)" in text
    smaller = load_plan(path, ["seeds=2", "grid.characteristics.K=[4]", "grid.T=[1.0]"])
    assert len(smaller.runs) == 2 * 2 + 2 * 1  # flows: 2 K x 2 seeds; pipeline: 1 K x 2 seeds; one T
    dup = write_study("name: d\nbase: {}\nblocks: [{name: a}, {name: a}]\n", "dup.yaml")
    with pytest.raises(StudyError, match="blocks: names must differ"):
        load_plan(dup)


def test_run_ids_are_the_hash_of_the_validated_config(write_study):
    plan = load_plan(write_study(TINY_FLOW))
    ids = [r.run_id for r in plan.runs]
    assert len(set(ids)) == len(ids) == 20
    # writing a default explicitly does not change a run's identity; changing a value does
    same = load_plan(write_study(TINY_FLOW.replace("n_coupled: 200", "n_coupled: 200\n  T: 1.0"), "same.yaml"))
    assert [r.run_id for r in same.runs] == ids
    other = load_plan(write_study(TINY_FLOW, "other.yaml"), ["base.n_coupled=201"])
    assert not set(r.run_id for r in other.runs) & set(ids)
    assert run_id(plan.runs[0].config) == ids[0]


def test_runs_that_differ_only_in_K_or_student_share_a_teacher(write_study):
    plan = load_plan(
        write_study("""
        name: t
        base: {kind: characteristic, target: {name: ring8}}
        grid: {characteristics.K: [4, 8], student.semigroup_weight: [0.0, 1.0]}
        seeds: 2
    """)
    )
    keys = {r.shared for r in plan.runs}
    assert len(plan.runs) == 8 and len(keys) == 2 and None not in keys
    assert all(k.startswith("characteristic.teacher/") for k in keys)
    oracle = load_plan(
        write_study(
            "name: o\nbase: {kind: characteristic, target: {name: ring8}, teacher: {kind: oracle}, "
            "student: {init: random}}\n",
            "o.yaml",
        )
    )
    assert oracle.runs[0].shared is None


def test_overrides(write_study):
    path = write_study(TINY_FLOW)
    plan = load_plan(path, ["seeds=[5]", "grid.K=[32]", "base.reference.K=64", "name=renamed"])
    assert plan.study.name == "renamed" and len(plan.runs) == 2
    assert {(r.config.seed, r.config.K, r.config.reference.K) for r in plan.runs} == {(5, 32, 64)}


def test_yaml_floats_in_scientific_notation(write_study):
    plan = load_plan(write_study("name: f\nbase: {kind: flow, target: {name: ring8, s: 5e-1}}\n"))
    assert plan.runs[0].config.target["s"] == 0.5


def _errors(path, overrides=()):
    with pytest.raises(StudyError) as info:
        load_plan(path, list(overrides))
    return info.value.messages


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "name: x\nbase: {kind: flow, target: {name: ring8}}\nseedz: 3\n",
            ": seedz: unknown key (did you mean 'seeds'?)",
        ),
        (
            "name: x\nbase: {kind: flow, target: {name: ring8}, solver: rk5}\n",
            ": base.solver: unknown solver (did you mean 'rk4'?); known: euler, exp_euler, exp_score, heun, rk4 "
            "(got 'rk5')",
        ),
        (
            "name: x\nbase: {kind: flow, target: {name: ring8}}\ngrid: {K: [4, 0]}\n",
            ": grid.K[1]: Input should be greater than or equal to 1 (got 0)",
        ),
        (
            "name: x\nbase: {kind: flow, target: {name: ring8}}\ngrid: {solvr: [euler]}\n",
            ": grid.solvr[0]: unknown key (did you mean 'solver'?)",
        ),
        (
            "name: x\nbase: {kind: characteristic, target: {name: ring8}, teacher: {optim: {lr: -1}}}\n",
            ": base.teacher.optim.lr: Input should be greater than 0 (got -1)",
        ),
        ("name: x\nbase: {kind: flw, target: {name: ring8}}\n", ": base.kind: unknown run kind (did you mean 'flow'?)"),
        (
            "name: x\nbase: {kind: flow, target: {name: sphre, d: 2}}\n",
            ": base.target.name: unknown target (did you mean 'sphere_atoms'?)",
        ),
        (
            "name: x\nbase: {kind: flow, target: {name: sphere_atoms, d: 2, radus: 1}}\n",
            ": base.target.radus: unknown parameter of sphere_atoms (did you mean 'radius'?)",
        ),
        (
            "name: x\nbase: {kind: flow, target: {name: sphere_atoms, d: 2, D: 8}}\ngrid: {target.d: [2, 9]}\n",
            ": base.target.D: sphere_atoms with d=9 needs an ambient dimension >= 10 (got 8) [grid point target.d=9]",
        ),
        (
            "name: x\nbase: {kind: flow, target: {name: ring8, s: -1}}\n",
            ": base.target.s: must be a number >= 0 (got -1)",
        ),
        (
            "name: x\nbase: {kind: flow, target: {name: ring8}, interpolant: {name: vp, S: -2}}\n",
            ": base.interpolant: vp interpolant: S must be a positive number (got -2)",
        ),
        (
            "name: x\nbase: {kind: flow, target: {name: ring8}}\nzip: [{K: [1, 2], n: [100]}]\n",
            "lists that vary together need equal lengths",
        ),
        ("name: bad name\nbase: {kind: flow, target: {name: ring8}}\n", ": name: String should match pattern"),
        (
            "name: x\nbase: {kind: flow, target: {name: ring8}}\nexclude: [{K: 16}]\ngrid: {K: [16]}\n",
            "leave no run to do",
        ),
        ("name: x\nbase: [1, 2\n", "not valid YAML"),
        (
            "name: x\nbase: {kind: pf_ode, target: {name: ring8}, S: 2.0}\ngrid: {s_min: [0.5, 3.0]}\n",
            ": grid.s_min[1]: must be below the horizon S = 2.0 (got 3.0)",
        ),
        ("name: x\nbase: {kind: pf_ode, target: {name: ring8}, method: exp}\n", ": base.method: renamed to 'solver'"),
        (
            "name: x\nbase: {kind: flow, target: {name: ring8}, solver: exp_score}\n",
            ": base.interpolant: exp_score needs a variance-preserving schedule with b(0) > 0, i.e. vp (got linear)",
        ),
        (
            "name: x\nbase: {kind: stability, target: {name: ring8}, perturbation: {eps: -1}}\n",
            ": base.perturbation.eps: Input should be greater than or equal to 0 (got -1)",
        ),
        (
            "name: x\nbase: {kind: lipschitz, target: {name: gaussian, D: 0}}\n",
            ": base.target.D: must be an integer >= 1 (got 0)",
        ),
        (
            "name: x\nbase: {kind: lipschitz, target: {name: ring8}}\ngrid: {t: [0.5, 1.0]}\n",
            ": grid.t[1]: Input should be less than 1",
        ),
        ("- just a list\n", "a study is a mapping"),
    ],
)
def test_invalid_studies_name_file_path_and_value(write_study, text, expected):
    path = write_study(text)
    messages = _errors(path)
    assert any(expected in m for m in messages), messages
    assert all(m.startswith(str(path)) for m in messages)


def test_bad_overrides(write_study):
    path = write_study(TINY_FLOW)
    assert any(
        "--set sedes: unknown study field 'sedes' (did you mean 'seeds'?)" in m for m in _errors(path, ["sedes=3"])
    )
    assert any("expected dotted.key=value" in m for m in _errors(path, ["seeds"]))
    assert any(
        "base.reference.K: Input should be greater than or equal to 16 (got 2)" in m
        for m in _errors(path, ["base.reference.K=2"])
    )


def test_every_problem_is_reported_at_once(write_study):
    messages = _errors(
        write_study("""
        name: x
        base: {kind: flow, target: {name: ring8, s: -1}, solver: rk5}
        grid: {K: [0, 4]}
    """)
    )
    assert len(messages) == 3


def test_checks_are_counted_in_the_report():
    """A declared check passes only when its column is true in every ok run of its window."""
    import pandas as pd

    from convlab.study.report import make_report
    from convlab.study.schema import StudySpec

    study = StudySpec.model_validate(
        {
            "name": "c",
            "base": {"kind": "stability", "target": {"name": "ring8"}},
            "checks": [
                {"name": "bound", "column": "holds"},
                {"name": "bound on a", "column": "holds", "where": {"g": "a"}},
                {"name": "missing", "column": "nope"},
            ],
        }
    )
    df = pd.DataFrame(
        {
            "status": ["ok", "ok", "ok", "failed"],
            "holds": [True, True, False, False],
            "g": ["a", "a", "b", "a"],
            "seed": [0, 1, 0, 0],
        }
    )
    checks = make_report(study, df).to_dict()["checks"]
    assert [c.get("verdict") for c in checks] == ["fail", "pass", None]
    assert (checks[0]["n_true"], checks[0]["n_runs"]) == (2, 3) and "nope" in checks[2]["error"]
    assert "bound (holds): 2/3 runs: fail" in make_report(study, df).render()


def test_every_shipped_study_is_valid():
    """Each studies/*.yaml plans without error (what `convlab sweep --dry-run` checks) and names a figure script that
    exists."""

    for path in sorted((REPO / "studies").glob("*.yaml")):
        plan = load_plan(path)
        assert plan.runs, path
        assert (REPO / "figures" / f"{plan.study.name}.py").is_file(), path
