"""The characteristic-generator pipeline shows what the theory says, at sizes CI can afford."""

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from convlab.metrics import fit_rate
from convlab.runs import RUN_KINDS
from convlab.runs.artefacts import clear_memo
from convlab.runs.characteristic import CharacteristicRun

KIND = RUN_KINDS["characteristic"]
SMALL_EVAL = {"n_coupled": 500, "n_w2": 100, "n_velocity": 1000, "floor_repeats": 1}
ORACLE = {"target": {"name": "ring8"}, "teacher": {"kind": "oracle"}, "eval": SMALL_EVAL, "reference": {"K": 512}}


def run(cfg, device="cpu"):
    return KIND.run(cfg, device=device).as_dict()


def test_oracle_teacher_solver_error_falls_like_one_over_K():
    Ks = [4, 8, 16, 32, 64]
    errors = [
        run({**ORACLE, "student": {"init": "random", "optim": {"steps": 20}}, "characteristics": {"K": K, "m": 200}})[
            "teacher_solver_error"
        ]
        for K in Ks
    ]
    fit = fit_rate(Ks, errors)
    assert -1.15 <= fit.slope <= -0.85, (fit, errors)


@pytest.mark.slow  # about a minute on 2 cores; CI runs it with `make test-slow`
def test_one_step_student_beats_one_teacher_euler_step():
    d = run(
        {**ORACLE, "student": {"init": "random", "optim": {"steps": 1500}}, "characteristics": {"K": 16, "m": 1000}}
    )
    assert d["status"] == "ok"
    assert d["student_e2e_error"] < 0.3 * d["teacher_one_step_e2e_error"], d
    # the decomposition: rms over the same draws is a norm, so Minkowski's inequality binds the terms
    assert d["student_e2e_error"] <= d["fitting_error"] + d["teacher_e2e_error"] + 1e-9
    assert d["teacher_e2e_error"] <= d["teacher_solver_error"] + d["teacher_flow_error"] + 1e-9
    assert d["velocity_l2_error"] == 0.0 and d["teacher_flow_error"] < 1e-6  # the oracle is the exact field


def test_trained_teacher_end_to_end_error_flattens_at_the_velocity_error():
    rows = {}
    for K in [2, 4, 8, 16, 32, 64, 128]:
        cfg = {
            "target": {"name": "ring8"},
            "eval": SMALL_EVAL,
            "reference": {"K": 512},
            "teacher": {"n": 1000, "optim": {"steps": 1500}},
            "student": {"optim": {"steps": 20}},
            "characteristics": {"K": K, "m": 200},
        }
        rows[K] = run(cfg)
    # one teacher, trained by the first run and shared through the artefact cache by the others
    assert not rows[2]["teacher_cached"] and all(rows[K]["teacher_cached"] for K in [4, 128])
    e2e = np.array([rows[K]["teacher_e2e_error"] for K in rows])
    euler = np.array([rows[K]["teacher_solver_error"] for K in rows])
    floor = rows[128]["teacher_flow_error"]  # Flow[v_theta] vs Flow[V]: the velocity error's share
    assert floor > 0.05
    # coarse K: the Euler error dominates and the curve falls; fine K: it flattens onto the velocity error
    assert e2e[0] > 2 * e2e[-1]
    assert fit_rate([32, 64, 128], e2e[-3:]).slope > -0.2
    assert abs(e2e[-1] - floor) < 0.1 * floor
    assert fit_rate([16, 32, 64, 128], euler[-4:]).slope < -0.8  # while the Euler part keeps falling


def test_semigroup_penalty_lowers_the_semigroup_defect():
    defect = {}
    for lam in (0.0, 1.0):
        d = run(
            {
                **ORACLE,
                "student": {"init": "random", "semigroup_weight": lam, "optim": {"steps": 800}},
                "characteristics": {"K": 8, "m": 500},
            }
        )
        defect[lam] = d["semigroup_defect"]
    assert defect[1.0] < 0.75 * defect[0.0], defect


def test_divergence_gives_a_failed_record_not_an_exception():
    cfg = {
        "target": {"name": "ring8"},
        "teacher": {"optim": {"lr": 1e6, "grad_clip": None, "steps": 200}},
        "student": {"optim": {"steps": 5}},
    }
    d = run(cfg)
    assert d["status"] == "failed" and d["stage"] == "teacher"
    assert "non-finite loss" in d["reason"]


@pytest.mark.slow  # about a minute on 2 cores; CI runs it with `make test-slow`
def test_same_config_same_numbers_and_the_cache_changes_nothing():
    cfg = {
        "target": {"name": "ring8", "s": 0.5},
        "eval": SMALL_EVAL,
        "reference": {"K": 512},
        "teacher": {"n": 300, "optim": {"steps": 100}},
        "student": {"optim": {"steps": 100}},
        "characteristics": {"K": 4, "m": 100},
        "seed": 3,
    }
    strip = lambda d: {k: v for k, v in d.items() if not (k.startswith("time_") or k == "teacher_cached")}  # noqa: E731
    trained = run(cfg)
    cached = run(cfg)  # the teacher from the artefact cache
    assert not trained["teacher_cached"] and cached["teacher_cached"]
    assert strip(cached) == strip(trained)
    clear_memo()
    assert strip(run(cfg)) == strip(trained)  # trained again: the same numbers
    key = KIND.artefact("teacher").key
    other_K = {**cfg, "characteristics": {"K": 8, "m": 100}}
    assert key(CharacteristicRun(**other_K)) == key(CharacteristicRun(**cfg))
    assert key(CharacteristicRun(**{**cfg, "seed": 4})) != key(CharacteristicRun(**cfg))
    assert key(CharacteristicRun(**{**cfg, "teacher": {"kind": "oracle"}, "student": {"init": "random"}})) is None


@pytest.mark.parametrize(
    "override, message",
    [
        ({"teacher": {"kind": "oracle"}}, "needs a trained teacher"),
        ({"student": {"form": "exp_euler"}}, "the form must be 'euler'"),
        ({"student": {"net": {"width": 64}}}, "student.net equal to teacher.net"),
        ({"teacher": {"parametrization": "denoiser"}, "student": {"form": "exp_euler"}, "T": 1.0}, "use T < 1"),
        ({"teacher": {"optim": {"lr": -1}}}, "greater than 0"),
        ({"characteristics": {"K": 1}}, "greater than or equal to 2"),
        ({"student": {"semigroup": 1}}, "Extra inputs are not permitted"),
    ],
)
def test_bad_configs_fail_before_anything_runs(override, message):
    with pytest.raises(ValidationError, match=message):
        CharacteristicRun(**{"target": {"name": "ring8"}, **override})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_pipeline_runs_on_the_gpu_through_the_same_code_path():
    cfg = {
        "target": {"name": "ring8"},
        "eval": SMALL_EVAL,
        "reference": {"K": 512},
        "teacher": {"n": 300, "optim": {"steps": 100}},
        "student": {"optim": {"steps": 100}},
        "characteristics": {"K": 4, "m": 100},
    }
    d = run(cfg, device="cuda")
    assert d["status"] == "ok" and d["device"].startswith("cuda")
    cpu = run(cfg)
    assert abs(d["teacher_solver_error"] - cpu["teacher_solver_error"]) < 0.5 * cpu["teacher_solver_error"] + 0.05


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_every_trained_network_records_its_convergence_check(schedule):
    """teacher_flow_error_half is the flow error of the teacher trained for half the steps (a snapshot with a
    constant schedule, a second training with a decaying one): the same as an independent run with half the steps;
    the verdicts follow eval.converged_tol."""
    optim = {"steps": 40, "schedule": schedule, "batch_size": 64}
    cfg = {
        "target": {"name": "uniform_sphere", "d": 1, "D": 6},
        "interpolant": "linear",
        "T": 0.95,
        "eval": SMALL_EVAL,
        "reference": {"K": 64},
        "teacher": {"n": 200, "net": {"width": 32, "skip": True}, "optim": optim},
        "student": {"net": {"width": 32, "skip": True}, "optim": {"steps": 20}},
        "characteristics": {"K": 4, "m": 64},
        "seed": 1,
    }
    full = run(cfg)
    half = run({**cfg, "teacher": {**cfg["teacher"], "optim": {**optim, "steps": 20}}})
    assert full["status"] == "ok" and half["status"] == "ok"
    assert full["teacher_flow_error_half"] == pytest.approx(half["teacher_flow_error"], rel=1e-5)
    for net, error in (("teacher", "teacher_flow_error"), ("student", "student_e2e_error")):
        change = abs(full[error] - full[f"{error}_half"]) / full[error]
        assert full[f"{net}_converged"] == (change < 0.05), (net, change)
    oracle = run({**ORACLE, "student": {"init": "random", "optim": {"steps": 0}}, "characteristics": {"K": 4, "m": 50}})
    assert oracle.get("teacher_converged") is None and oracle.get("student_converged") is None


def test_a_notebook_runs_the_pipeline_without_a_study_config():
    """The pipeline's own dataclasses drive it stage by stage (no pydantic, no run context), and give the numbers the
    run kind gives for the same run: the run layer's translation (runs.config.core) loses nothing."""
    from convlab.device import generator
    from convlab.interpolants import as_interpolant
    from convlab.models import Net, Optim
    from convlab.pipeline import (
        CharacteristicsSpec,
        EvalSpec,
        PipelineSpec,
        StudentSpec,
        TeacherSpec,
        build_teacher,
        characteristics,
        fit_student,
        measure,
    )
    from convlab.solvers import Reference
    from convlab.targets import make_target

    net, optim = Net(width=32, depth=2), Optim(steps=40, batch_size=64)
    spec = PipelineSpec(
        seed=5,
        teacher=TeacherSpec(n=300, net=net, optim=optim),
        characteristics=CharacteristicsSpec(K=4, m=100),
        student=StudentSpec(net=net, optim=optim),
        eval=EvalSpec(**{k: v for k, v in SMALL_EVAL.items()}),
        reference=Reference(K=128),
    )
    target, device = make_target({"name": "ring8"}), torch.device("cpu")
    teacher = build_teacher(spec, target, as_interpolant(spec.interpolant), device)
    z = target.noise(100, generator=generator(5, "characteristics.noise", device), device=device, dtype=torch.float32)
    chars = characteristics(teacher, spec, z)
    student, _ = fit_student(teacher, chars, spec)
    mine = measure(teacher, student, target, spec, device)

    small = {"net": {"width": 32, "depth": 2}, "optim": {"steps": 40, "batch_size": 64}}
    record = run(
        {
            "target": {"name": "ring8"},
            "seed": 5,
            "teacher": {"n": 300, **small},
            "characteristics": {"K": 4, "m": 100},
            "student": small,
            "eval": SMALL_EVAL,
            "reference": {"K": 128},
        }
    )
    for name in ("teacher_flow_error", "teacher_solver_error", "student_e2e_error", "semigroup_defect"):
        assert mine[name] == record[name], name


def test_config_blocks_take_their_defaults_from_the_core():
    """Each config block that mirrors a core dataclass becomes it field for field, defaults included (written once)."""
    import dataclasses

    from convlab.runs.config import Strict, core

    def blocks(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from blocks(sub)

    mirrored = [b for b in set(blocks(Strict)) if b.CORE is not None]
    assert len(mirrored) >= 10, mirrored
    for block in mirrored:
        if "target" in block.model_fields:  # run configs need a target; their stages are checked one by one
            made = core(block(target={"name": "ring8"}))
        else:
            made = core(block())
        assert type(made) is block.CORE
        names = {f.name for f in dataclasses.fields(block.CORE)}
        assert names <= set(block.model_fields), (block, names - set(block.model_fields))
        if block.__name__ not in (
            "BlockOptim",
            "VelocityError",
            "EvalReference",
            "ModelReference",
        ):  # kinds' own defaults, declared
            assert made == block.CORE(), block
