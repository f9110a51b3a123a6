"""The integration loop, the grids and the reference solve; the exact flow transports N(0, I) to nu."""

import pytest
import torch

from convlab.fields import exact_field
from convlab.metrics import coupled_rms
from convlab.solvers import Reference, as_solver, integrate, quadratic_grid, reference_flow, time_grid, uniform_grid
from convlab.targets import make_target, ring8
from tests.strategies import make_mixture

F64 = torch.float64


def test_grids():
    torch.testing.assert_close(uniform_grid(4, T=0.8), torch.tensor([0, 0.2, 0.4, 0.6, 0.8], dtype=F64))
    q = quadratic_grid(8, T=0.9)
    assert q[0] == 0 and q[-1] == 0.9 and (torch.diff(q) > 0).all()
    assert torch.diff(q)[-1] < torch.diff(q)[0]  # finer towards T
    with pytest.raises(ValueError, match=r"K: the number of steps must be an integer >= 1 \(got 0\)"):
        uniform_grid(0)
    with pytest.raises(ValueError, match=r"T: need 0 <= t0 < T <= 1 \(got t0=0.0, T=1.5\)"):
        uniform_grid(4, T=1.5)
    with pytest.raises(ValueError, match="unknown grid 'cosine'"):
        time_grid(4, kind="cosine")


@pytest.mark.parametrize("solver", ["euler", "heun", "rk4", "exp_euler"])
def test_nfe_trajectory_and_end_point(solver, device):
    target = ring8()
    field = exact_field(target, "follmer")
    x0 = torch.randn(10, 2, dtype=F64, generator=torch.Generator().manual_seed(0)).to(device)
    grid = time_grid(6, T=0.99, kind="quadratic")
    sol = integrate(field, x0, grid, solver, keep_trajectory=True)
    assert sol.nfe == 6 * as_solver(solver).stages
    assert sol.trajectory.shape == (7, 10, 2) and sol.trajectory.device.type == device.type
    torch.testing.assert_close(sol.trajectory[0], x0)
    torch.testing.assert_close(sol.trajectory[-1], sol.x)
    torch.testing.assert_close(sol.grid, grid)
    assert integrate(field, x0, grid, solver).trajectory is None


def test_bad_grid_is_rejected():
    field = exact_field(ring8(), "linear")
    with pytest.raises(ValueError, match="strictly increasing"):
        integrate(field, torch.zeros(1, 2), [0.0, 0.5, 0.5, 1.0])


def test_rk4_reference_agrees_with_adaptive_dop853():
    field = exact_field(make_mixture(5, 3, 3, "full"), "trig")
    x0 = torch.randn(20, 3, dtype=F64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(
        reference_flow(field, x0, reference=Reference(solver="rk4")),
        reference_flow(field, x0, reference=Reference(solver="dop853")),
        rtol=1e-9,
        atol=1e-9,
    )


def test_exact_flow_transports_noise_to_the_target():
    """Pushforward of N(0, I) by the exact flow has the mixture's mean and covariance (to Monte Carlo error),
    and RK4 agrees with the reference flow pathwise."""
    target = make_target({"name": "random_mixture", "D": 3, "K": 3, "seed": 2, "spread": 1.5})
    field = exact_field(target, "linear")
    n = 20_000
    z = torch.randn(n, 3, dtype=F64, generator=torch.Generator().manual_seed(3))
    x = integrate(field, z, time_grid(64), "rk4").x
    m, C = target.mean(), target.covariance()
    assert ((x.mean(0) - m).abs() <= 4.5 * torch.sqrt(torch.diag(C) / n)).all()
    xc = x - x.mean(0)
    prods = xc[:, :, None] * xc[:, None, :]
    assert ((prods.mean(0) - C).abs() <= 4.5 * prods.std(0) / n**0.5).all()
    ref = reference_flow(field, z[:2000], reference=Reference(solver="dop853"), rtol=1e-10, atol=1e-10)
    assert coupled_rms(x[:2000], ref).rms < 1e-6


def test_same_config_same_numbers(device):
    field = exact_field(ring8(), "follmer")
    g = lambda: torch.Generator(device).manual_seed(9)  # noqa: E731
    runs = [
        integrate(field, torch.randn(50, 2, generator=g(), device=device, dtype=F64), time_grid(8, T=0.999), "heun").x
        for _ in range(2)
    ]
    assert torch.equal(runs[0], runs[1])
