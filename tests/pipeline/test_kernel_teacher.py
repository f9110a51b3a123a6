"""The kernel teacher: the exact velocity of the smoothed training sample, a teacher without optimisation error."""

import pytest
import torch
from pydantic import ValidationError

from convlab.interpolants import as_interpolant
from convlab.pipeline.teacher import build_teacher, velocity_matching_loss
from convlab.runs import RUN_KINDS
from convlab.runs.characteristic import CharacteristicRun
from convlab.runs.config import core
from convlab.targets import make_target

EVAL = {"n_coupled": 300, "n_w2": 100, "n_velocity": 2000, "floor_repeats": 1}


def kernel_cfg(n, **teacher):
    return CharacteristicRun.model_validate(
        {
            "target": {"name": "sphere_atoms", "d": 1, "D": 3, "s": 0.05, "n_atoms": 512},
            "interpolant": "linear",
            "T": 1.0,
            "dtype": "float64",
            "teacher": {"kind": "kernel", "n": n, **teacher},
            "characteristics": {"K": 8, "m": 100},
            "student": {"init": "random", "optim": {"steps": 0}},
            "eval": EVAL,
            "reference": {"K": 128},
        }
    )


def test_kernel_field_minimises_the_velocity_matching_loss_of_its_measure():
    """For X1 drawn from the smoothed sample, loss(V_h + delta) - loss(V_h) = |delta|^2 for a constant delta:
    the cross term vanishes because V_h is the conditional expectation of the regression target."""
    cfg = kernel_cfg(200, bandwidth=0.2)
    target, ip = make_target(cfg.target), as_interpolant("linear")
    teacher = build_teacher(core(cfg), target, ip, torch.device("cpu"))
    smoothed = teacher.field.target
    g = torch.Generator().manual_seed(1)
    x1 = smoothed.sample(200_000, generator=g, dtype=torch.float64)
    z = torch.randn(x1.shape, generator=g, dtype=torch.float64)
    t = torch.rand(x1.shape[0], generator=g, dtype=torch.float64)
    delta = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)

    class Shifted:
        interpolant = ip

        def velocity(self, t, x):
            return teacher.field.velocity(t, x) + delta

    gap = velocity_matching_loss(Shifted(), x1, z, t, "velocity") - velocity_matching_loss(
        teacher.field, x1, z, t, "velocity"
    )
    assert gap.item() == pytest.approx(delta.pow(2).sum().item(), rel=0.05)


def test_cross_validated_bandwidth_is_interior_and_shrinks_with_n():
    infos = {
        n: build_teacher(
            core(kernel_cfg(n)), make_target(kernel_cfg(n).target), as_interpolant("linear"), torch.device("cpu")
        ).info
        for n in (100, 3000)
    }
    assert all(info["teacher_cv_interior"] for info in infos.values()), infos
    assert infos[3000]["teacher_bandwidth"] < infos[100]["teacher_bandwidth"]


def test_kernel_teacher_error_falls_with_n_and_gives_a_complete_record():
    records = {n: RUN_KINDS["characteristic"].run(kernel_cfg(n), device="cpu") for n in (100, 3000)}
    assert all(r.status == "ok" for r in records.values())
    small, large = (records[n].metrics for n in (100, 3000))
    assert large["velocity_l2_error"] < 0.8 * small["velocity_l2_error"]
    assert large["teacher_flow_error"] < 0.8 * small["teacher_flow_error"]
    assert large["teacher_params"] == 0 and large["teacher_val_loss"] > 0 and large["teacher_cv_interior"]


@pytest.mark.parametrize(
    "override, message",
    [
        ({"teacher": {"kind": "trained", "bandwidth": 0.1}}, "only a kernel teacher has a bandwidth"),
        ({"teacher": {"kind": "kernel"}, "student": {"init": "teacher"}}, "needs a trained teacher"),
        ({"teacher": {"kind": "kernel", "bandwidth": -1.0}}, "greater than 0"),
    ],
)
def test_bad_kernel_configs_are_rejected(override, message):
    with pytest.raises(ValidationError, match=message):
        CharacteristicRun.model_validate({"target": {"name": "ring8"}, **override})


def control_cfg(D, **teacher):
    return CharacteristicRun.model_validate(
        {
            "target": {"name": "uniform_sphere", "d": 2, "D": D, "s": 0.1, "seed": 3},
            "interpolant": "linear",
            "T": 1.0,
            "dtype": "float64",
            "seed": 4,
            "teacher": {"kind": "kernel", "n": 150, "clean": True, "bandwidth": 0.1, **teacher},
            "characteristics": {"K": 8, "m": 50},
            "student": {"init": "random", "optim": {"steps": 0}},
            "eval": {"n_coupled": 100, "n_w2": 50, "n_velocity": 300, "floor_repeats": 1},
            "reference": {"K": 64},
        }
    )


def test_control_estimator_is_independent_of_the_ambient_dimension():
    """A pipeline identity, not evidence for the manifold hypothesis: the kernel estimate of clean manifold points
    with bandwidth = the target's smoothing s has the target's own normal part, so (paired draws) its errors live in
    M's span and are the same in every D, to rounding."""
    names = ("velocity_l2_error", "teacher_flow_error")  # the statistical errors (Euler's is not: the normal part
    # of the field is a D-dimensional linear flow, and K Euler steps err on it by an amount that grows with D)
    records = {D: RUN_KINDS["characteristic"].run(control_cfg(D), device="cpu") for D in (3, 16, 128)}
    assert all(r.status == "ok" for r in records.values()), records
    ref = records[3].metrics
    assert ref["teacher_flow_error"] > 1e-3  # a real statistical error, not zero
    for D in (16, 128):
        for name in names:
            assert records[D].metrics[name] == pytest.approx(ref[name], rel=1e-9), (D, name)


def test_the_control_is_not_d_independent_with_the_held_out_bandwidth():
    """The same estimator with its bandwidth chosen on held-out data is not covered by the identity."""
    flows = [
        RUN_KINDS["characteristic"]
        .run(control_cfg(D, bandwidth=None, clean=False), device="cpu")
        .metrics["teacher_flow_error"]
        for D in (3, 64)
    ]
    assert abs(flows[1] / flows[0] - 1) > 1e-3, flows


def test_clean_needs_a_manifold_target():
    with pytest.raises(ValidationError, match=r"teacher.clean: only a manifold target .* \(target is 'ring8'\)"):
        CharacteristicRun.model_validate({"target": {"name": "ring8"}, "teacher": {"kind": "kernel", "clean": True}})


def test_a_coarse_reference_solve_is_exact_enough_for_kernel_teachers():
    """sample_size solves its reference flows with 256 rk4 steps (reference.K): on a kernel teacher of the ring with a
    small bandwidth (the stiffest the study selects is ~0.2; 0.02 is ten times stiffer), 256 steps agree with 2048
    to far below the flow errors measured (~0.1)."""
    from convlab.fields import ExactField
    from convlab.pipeline.teacher import _smoothed_sample
    from convlab.solvers import Reference, reference_flow

    target = make_target("ring8")
    x = target.sample(1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    field = ExactField(_smoothed_sample(x, 0.02), as_interpolant("follmer"))
    z = torch.randn(100, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    fine, coarse = (reference_flow(field, z, T=0.999, reference=Reference(K=K)) for K in (2048, 256))
    assert (fine - coarse).pow(2).sum(1).mean().sqrt().item() < 1e-6
