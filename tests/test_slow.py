"""Longer statistical checks, run by .ci/run after the default suite (`pytest -m slow`)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from convlab.demo import main
from convlab.fields import exact_field
from convlab.solvers import as_solver, reference_flow
from convlab.targets import make_target
from tests.solvers.test_order import TOLERANCE, errors_over_K, measured_order

pytestmark = pytest.mark.slow


def test_full_demo_recovers_every_declared_order(capsys):
    assert main([]) == 0
    fits = [line for line in capsys.readouterr().out.splitlines() if " slope " in line and "expected" in line]
    assert len(fits) == 4 and all(line.endswith(": consistent") for line in fits)


@settings(max_examples=16)
@given(
    spec=st.sampled_from(
        [
            {"name": "swiss_roll", "s": 0.3, "n_atoms": 256},
            {"name": "sphere", "d": 2, "D": 6, "s": 0.3, "n_atoms": 256},
            {"name": "torus", "d": 1, "D": 3, "s": 0.3, "n_atoms": 256},
            {"name": "subspaces", "d": 1, "D": 3, "s": 0.3},
            {"name": "random_mixture", "D": 3, "K": 5, "cov": "diag", "var_min": 0.3},
        ]
    ),
    solver=st.sampled_from(["euler", "heun", "rk4", "exp_euler"]),
    ip=st.sampled_from(["linear", "trig"]),
    seed=st.integers(0, 10**6),
)
def test_orders_on_named_targets(spec, solver, ip, seed):
    target = make_target(spec)
    field = exact_field(target, ip)
    x0 = torch.randn(6, target.ambient_dim, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    exact = reference_flow(field, x0, T=1.0, reference={"solver": "dop853"}, rtol=1e-13, atol=1e-13)
    errors = errors_over_K(field, x0, exact, 1.0, solver, "uniform", [2**j for j in range(3, 13)])
    assert abs(measured_order(errors) - as_solver(solver).order) <= TOLERANCE, errors
