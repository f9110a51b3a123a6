"""The seed-paper run kinds on every device (CPU always, CUDA when present) through the one code path.

Random streams differ between devices (a CUDA generator is not the CPU's), so across devices only the
closed-form metrics must agree; on one device the same config must give the same numbers.
"""

import math

import pytest

from convlab.runs import RUN_KINDS
from convlab.runs.artefacts import clear_memo

GAUSS2 = {"name": "gaussian", "D": 2, "mean": 1.0, "s": 0.5}
GAUSS3 = {"name": "gaussian", "D": 3, "mean": 1.0, "s": 0.5}
SEARCH = {"n_samples": 32, "ascent_steps": 3}

# kind -> (small config, metrics that are closed forms of the config alone)
CASES = {
    "pf_ode": (
        {"target": GAUSS3, "S": 4.0, "K": 16, "solver": "exp_score", "n_coupled": 200, "reference": {"K": 64}},
        ["sampler_w2"],
    ),
    "log_concavity": (
        {"target": {"name": "ring8", "radius": 2.0, "s": 0.5}, "t": 0.3, "n_points": 50},
        ["t_star", "hess_bound_lower", "hess_bound_upper"],
    ),
    "lipschitz": ({"target": {"name": "ring8", "s": 0.0}, "t": 0.9, "search": SEARCH}, ["beta", "support_radius"]),
    "early_stopping": (
        {"target": GAUSS3, "T": 0.99, "n_mc": 200, "n_t": 4, "search": SEARCH},
        ["early_stop_w2_lb", "early_stop_w2_ub"],
    ),
    "stability": (
        {
            "target": GAUSS2,
            "T": 0.99,
            "n_coupled": 100,
            "n_mc": 100,
            "n_t": 4,
            "search": SEARCH,
            "perturbation": {"eps": 0.01},
            "reference": {"K": 64},
        },
        [],
    ),
    "jko": ({"target": GAUSS2, "K": 1, "optim": {"steps": 20}, "n_mc": 500, "n_w2": 100}, ["kl_closed_form"]),
}


def _numbers(rec):
    return {k: v for k, v in rec.metrics.items() if not k.startswith("time_")}


@pytest.mark.parametrize("kind", list(CASES))
def test_run_kind_on_device_is_reproducible_and_matches_the_closed_forms(kind, device):
    run = RUN_KINDS[kind].run
    cfg, exact = CASES[kind]
    rec = run(cfg, device=device)
    assert rec.status == "ok", rec.reason
    assert rec.info["device"].startswith(device.type)
    assert all(math.isfinite(v) for v in rec.metrics.values() if isinstance(v, float))
    clear_memo()  # computed again from scratch, not from the shared artefacts
    assert _numbers(run(cfg, device=device)) == _numbers(rec)  # same config, same device, same numbers
    if device.type != "cpu":
        ref = run(cfg, device="cpu").metrics
        assert set(rec.metrics) == set(ref)
        for key in exact:
            assert rec.metrics[key] == pytest.approx(ref[key], rel=1e-9), key
