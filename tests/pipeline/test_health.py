"""Networks that fail are failures: a collapsed or diverged teacher (or student) fails its run in the stage that
failed, with its loss, and never enters the artefact cache as a network; healthy training passes the same checks."""

import math

import pytest
import torch

from convlab.pipeline.health import COLLAPSE, collapse_problem, loss_problem, variance_ratio
from convlab.runs import RUN_KINDS, ArtefactCache
from convlab.runs.artefacts import _load

SMALL = {
    "target": {"name": "ring8"},
    "interpolant": "follmer",
    "T": 0.99,
    "teacher": {"n": 200, "net": {"width": 16, "depth": 2}, "optim": {"steps": 100, "batch_size": 64}},
    "characteristics": {"K": 4, "m": 64},
    "student": {"net": {"width": 16, "depth": 2}, "optim": {"steps": 20, "batch_size": 64}},
    "eval": {"n_coupled": 64, "n_w2": 32, "n_velocity": 64, "floor_repeats": 1},
    "reference": {"K": 32},
}


def _with_lr(lr: float) -> dict:
    return {**SMALL, "teacher": {**SMALL["teacher"], "optim": {**SMALL["teacher"]["optim"], "lr": lr}}}


def test_loss_checks_fire_on_divergence_only():
    assert loss_problem([5.0, 2.0, 1.0, 0.9], 20.0, "net") is None  # falling, below the zero field
    assert loss_problem([20.5, 20.1, 20.3], 20.0, "net") is None  # no better than nothing, but not diverged
    rose = loss_problem([5.0, 0.01, 2.0], 20.0, "net")
    assert rose is not None and "rose from 0.01 to 2" in rose
    blown = loss_problem([1e35, 1e35], 20.0, "net")
    assert blown is not None and "times the loss of the zero field (20)" in blown
    assert loss_problem([], 20.0, "net") is None


def test_a_network_flat_in_x_is_collapsed_and_a_trained_one_is_not():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.SiLU(), torch.nn.Linear(16, 3))
    flat = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.SiLU(), torch.nn.Linear(16, 3))
    with torch.no_grad():
        flat[2].weight.zero_()  # output = bias: no x-dependence left
    inputs = [(torch.randn(256, 3, generator=torch.Generator().manual_seed(j)),) for j in range(4)]
    assert variance_ratio(net, net, inputs) == pytest.approx(1.0)
    ratio = variance_ratio(flat, net, inputs)
    assert ratio == 0.0 and "collapsed" in collapse_problem(ratio, "the teacher")
    assert collapse_problem(10 * COLLAPSE, "the teacher") is None
    assert math.isinf(variance_ratio(net, flat, inputs))  # a flat initial network: nothing to compare with


def _flattened_teachers(monkeypatch) -> None:
    """Teachers whose trained network ends flat in x: the output layer's weights zeroed after training. (A collapse
    reached by training -- at lr 3 the units saturated on one machine -- depends on the machine's floating point:
    on another the same run kept a 1600 times larger output variance. This one does not.)"""
    import convlab.pipeline.teacher as teacher

    real = teacher.train_checked

    def flattened(members, loss, fresh):
        logs, halves = real(members, loss, fresh)
        with torch.no_grad():
            for member in members:
                member.module.body[-1].weight.zero_()
        return logs, halves

    monkeypatch.setattr(teacher, "train_checked", flattened)


@pytest.mark.parametrize("lr, word", [(2e-3, "collapsed"), (1e3, "diverged")])
def test_a_teacher_that_collapses_or_diverges_fails_in_its_stage_and_is_cached_as_a_failure(
    tmp_path, monkeypatch, lr, word
):
    """A teacher flat in x (collapsed) and one trained at lr 1e3 (a loss ~1e26, but finite) used to be 'ok' runs
    fitted into rates; now both fail in the teacher stage."""
    if word == "collapsed":
        _flattened_teachers(monkeypatch)
    kind, cache = RUN_KINDS["characteristic"], ArtefactCache(tmp_path)
    record = kind.run(_with_lr(lr), device="cpu", cache=cache)
    assert record.status == "failed" and record.stage == "teacher", record
    assert record.reason.startswith(f"the teacher {word}")
    assert {"teacher_final_loss", "teacher_zero_field_loss", "teacher_variance_ratio"} <= set(record.metrics)
    (stored,) = list((tmp_path / ".artefacts" / "characteristic.teacher").glob("*-cpu"))
    payload = _load(stored)
    assert "failed" in payload and "state_dict" not in payload  # a failure marker, never a network
    # a run sharing the teacher (another K) fails with it, without training it again
    again = kind.run({**_with_lr(lr), "characteristics": {"K": 8, "m": 64}}, device="cpu", cache=cache)
    assert again.status == "failed" and again.stage == "teacher" and again.reason == record.reason


def test_a_healthy_teacher_and_student_pass_and_record_their_checks(tmp_path):
    record = RUN_KINDS["characteristic"].run(_with_lr(2e-3), device="cpu", cache=ArtefactCache(tmp_path))
    assert record.status == "ok", record.reason
    m = record.metrics
    assert m["teacher_variance_ratio"] > 10 and m["teacher_final_loss"] < m["teacher_zero_field_loss"]
    assert m["student_variance_ratio"] > 0.1


def test_forget_failures_sets_a_failure_marker_aside_for_a_retry(tmp_path):
    kind, cache = RUN_KINDS["characteristic"], ArtefactCache(tmp_path)
    kind.run(_with_lr(1e3), device="cpu", cache=cache)  # diverges: a failure marker
    shared = kind.shared_key(kind.validate(_with_lr(1e3)))
    assert cache.has(shared)
    moved = cache.forget_failures(shared)
    assert len(moved) == 1 and ".failed-" in moved[0].name and not cache.has(shared)


def test_a_network_right_to_be_flat_is_not_collapsed(tmp_path):
    """The oracle teacher of a standard Gaussian under follmer has V = 0 (p_t = N(0, I) for every t): the student
    fitted to its characteristics should be flat in x, so flat is right, not a collapse (and its identity-map loss is
    0: no division by it)."""
    assert collapse_problem(0.0, "the student", truth_ratio=1.0) is None
    assert "collapsed" in collapse_problem(0.0, "the student", truth_ratio=0.0)
    assert loss_problem([1.0, 0.5], 0.0, "the student", "the identity map") is None
    cfg = {
        "target": {"name": "gaussian", "D": 2},
        "interpolant": "follmer",
        "T": 0.99,
        "teacher": {"kind": "oracle"},
        "characteristics": {"K": 4, "m": 64},
        "student": {"init": "random", "net": {"width": 16, "depth": 2}, "optim": {"steps": 100, "batch_size": 64}},
        "eval": {"n_coupled": 64, "n_w2": 32, "n_velocity": 64, "floor_repeats": 1},
        "reference": {"K": 32},
    }
    record = RUN_KINDS["characteristic"].run(cfg, device="cpu", cache=ArtefactCache(tmp_path))
    assert record.status == "ok", record.reason
