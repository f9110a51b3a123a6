"""The seed-paper run kinds on every device (CPU always, CUDA when present) through the one code path.

Random streams differ between devices (a CUDA generator is not the CPU's), so across devices only the
closed-form metrics must agree; on one device the same config must give the same numbers.
"""

import math

import pytest

from convlab.runs.gif import run_early_stopping, run_lipschitz, run_stability
from convlab.runs.jko import run_jko
from convlab.runs.pf_ode import run_log_concavity, run_pf_ode

GAUSS2 = {"name": "gaussian", "D": 2, "mean": 1.0, "std": 0.5}
GAUSS3 = {"name": "gaussian", "D": 3, "mean": 1.0, "std": 0.5}
SEARCH = {"n_samples": 32, "ascent_steps": 3}

# kind -> (run function, small config, metrics that are closed forms of the config alone)
CASES = {
    "pf_ode": (run_pf_ode, {"target": GAUSS3, "S": 4.0, "K": 16, "method": "exp", "n": 200, "reference": {"steps": 64}},
               ["w2_exact"]),
    "log_concavity": (run_log_concavity, {"target": {"name": "ring8", "radius": 2.0, "std": 0.5}, "t": 0.3, "n": 50},
                      ["t_star", "bound_lower", "bound_upper"]),
    "lipschitz": (run_lipschitz, {"target": {"name": "ring8", "std": 0.0}, "t": 0.9, "search": SEARCH}, ["beta", "support_radius"]),
    "early_stopping": (run_early_stopping, {"target": GAUSS3, "T": 0.99, "n": 200, "n_t": 4, "search": SEARCH}, ["w2_lb", "w2_ub"]),
    "stability": (run_stability, {"target": GAUSS2, "T": 0.99, "n": 100, "n_t": 4, "search": SEARCH,
                                  "perturbation": {"eps": 0.01}, "reference": {"steps": 64}}, []),
    "jko": (run_jko, {"target": GAUSS2, "N": 1, "train": {"steps": 20}, "n_eval": 500, "n_w2": 100}, ["kl_closed_form"]),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_run_kind_on_device_is_reproducible_and_matches_the_closed_forms(kind, device):
    run, cfg, exact = CASES[kind]
    rec = run(cfg, device=device)
    assert rec.status == "ok", rec.reason
    assert rec.info["device"].startswith(device.type)
    assert all(math.isfinite(v) for v in rec.metrics.values() if isinstance(v, float))
    assert run(cfg, device=device).metrics == rec.metrics  # same config, same device, same numbers
    if device.type != "cpu":
        ref = run(cfg, device="cpu").metrics
        assert set(rec.metrics) == set(ref)
        for key in exact:
            assert rec.metrics[key] == pytest.approx(ref[key], rel=1e-9), key
