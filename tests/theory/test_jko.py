"""The JKO scheme's Gaussian closed form (arXiv 2310.17582) against an independent numerical route: the proximal
objective minimised over affine maps."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from convlab.theory.jko import affine_jko_step, contraction, gaussian_jko_path, gaussian_jko_step, gaussian_kl

F64 = torch.float64


@settings(max_examples=10)
@given(st.integers(1, 3), st.floats(0.1, 3.0), st.integers(0, 2**31 - 1))
def test_affine_minimiser_is_the_closed_form_step(D, gamma, seed):
    """In the eigenbasis of a random covariance the numerical proximal step equals the per-eigenvalue recursion."""
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.standard_normal((D, D)))[0]
    s = rng.uniform(0.3, 2.5, D)
    m = rng.standard_normal(D)
    S = torch.from_numpy(Q @ np.diag(s**2) @ Q.T)
    mean, cov = affine_jko_step(torch.from_numpy(Q @ m), S, gamma)
    m_next, s_next = gaussian_jko_step(torch.from_numpy(m), torch.from_numpy(s), gamma)
    assert torch.allclose(mean, torch.from_numpy(Q) @ m_next, atol=1e-7)
    assert torch.allclose(cov, torch.from_numpy(Q @ np.diag(s_next.numpy() ** 2) @ Q.T), atol=1e-7)


def test_standard_normal_is_the_fixed_point_and_kl_decreases():
    m, s = gaussian_jko_step(torch.zeros(2, dtype=F64), torch.ones(2, dtype=F64), 0.7)
    assert torch.allclose(m, torch.zeros(2, dtype=F64)) and torch.allclose(s, torch.ones(2, dtype=F64))
    kl = gaussian_jko_path(torch.tensor([2.0, -1.0], dtype=F64), torch.tensor([0.2, 3.0], dtype=F64), 0.5, 30)
    assert all(b < a for a, b in zip(kl, kl[1:])) and kl[-1] < 1e-8


@pytest.mark.parametrize("gamma", [0.25, 1.0, 4.0])
def test_contraction_factors(gamma):
    """Mean alone: KL_k = m_k^2 / 2 falls by (1 + gamma)^-2 per step; spread alone: s - 1 by (1 + 2 gamma)^-1 near 1."""
    mean_rate, spread_rate = contraction(gamma)
    kl = gaussian_jko_path(torch.tensor([1.0], dtype=F64), torch.tensor([1.0], dtype=F64), gamma, 5)
    assert np.allclose(np.array(kl[1:]) / np.array(kl[:-1]), mean_rate**2)
    s, s_next = torch.tensor([1 + 1e-6], dtype=F64), None
    _, s_next = gaussian_jko_step(torch.zeros(1, dtype=F64), s, gamma)
    assert float((s_next - 1) / (s - 1)) == pytest.approx(spread_rate, rel=1e-5)
    assert float(gaussian_kl(torch.zeros(1, dtype=F64), torch.tensor([math.e], dtype=F64))) == pytest.approx(
        (math.e**2 - 1) / 2 - 1
    )


# -- the neural JKO flow ------------------------------------------------------------------------------------------

from convlab.models import ResidualBlock, train  # noqa: E402
from convlab.models.residual import Block  # noqa: E402
from convlab.models.training import Optim  # noqa: E402
from convlab.runs import RUN_KINDS  # noqa: E402
from convlab.targets import make_target  # noqa: E402
from convlab.theory.jko import ProximalObjective, generate, kl_to_standard_normal, push  # noqa: E402

run_jko = RUN_KINDS["jko"].run


def _block(seed=0, D=2, lip=0.9, width=16):
    torch.manual_seed(seed)
    block = ResidualBlock(D, Block(width=width, depth=2, lip=lip)).double()
    with torch.no_grad():  # a few power iterations so that the stored spectral norms are converged
        for _ in range(20):
            block(torch.randn(8, D, dtype=F64))
    return block.eval()


def test_block_log_det_is_the_log_det_of_the_autograd_jacobian():
    block, x = _block(), torch.randn(5, 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    _, log_det = block.forward_and_log_det(x)
    J = torch.stack([torch.autograd.functional.jacobian(block, row[None])[0, :, 0, :] for row in x])
    assert torch.allclose(log_det, torch.linalg.slogdet(J).logabsdet, atol=1e-12)


def test_block_is_lipschitz_perturbation_of_identity_and_inverts():
    block = _block(lip=0.8)
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(500, 2, dtype=F64, generator=g), torch.randn(500, 2, dtype=F64, generator=g)
    with torch.no_grad():
        ratio = (block.residual(x) - block.residual(y)).norm(dim=1) / (x - y).norm(dim=1)
    assert float(ratio.max()) <= 0.8 + 1e-6
    z = 3 * torch.randn(200, 2, dtype=F64, generator=g)
    x_inv, residual = block.inverse(z)
    assert residual < 1e-9 and torch.allclose(block(x_inv), z, atol=1e-9)
    # generate undoes push, shifts included
    shifts = [torch.tensor([0.3, -0.1], dtype=F64), torch.tensor([0.0, 0.2], dtype=F64)]
    pushed, _ = push([block, _block(seed=3)], x, torch.zeros(500, dtype=F64), shifts)
    back, worst = generate([block, _block(seed=3)], pushed, shifts)
    assert worst < 1e-9 and torch.allclose(back, x, atol=1e-8)


def test_kl_by_density_tracking_matches_the_closed_form():
    """Identity flow: the Monte Carlo KL with exact log-densities is unbiased for KL(N(m, s^2 I) || N(0, I))."""
    target = make_target({"name": "gaussian", "D": 2, "mean": 0.7, "s": 0.6})
    x = target.sample(20000, generator=torch.Generator().manual_seed(0), dtype=F64)
    kl, se = kl_to_standard_normal(x, target.log_prob(x))
    exact = float(gaussian_kl(torch.full((2,), 0.7, dtype=F64), torch.full((2,), 0.6, dtype=F64)))
    assert abs(kl - exact) < 4 * se


def test_one_trained_block_is_the_jko_step():
    """A block trained on the proximal objective lands near the closed-form JKO step of a Gaussian."""
    target, gamma = make_target({"name": "gaussian", "D": 2, "mean": 1.0, "s": 0.5}), 1.0
    g = torch.Generator().manual_seed(0)
    x = target.sample(2000, generator=g, dtype=F64)
    block = _block(width=32).train()
    train(
        ProximalObjective(block, gamma),
        Optim(steps=250, lr=3e-3, grad_clip=None),
        lambda objective, batch: objective(*batch),
        lambda step: (x[torch.randint(2000, (256,), generator=g)],),
    )
    x_eval = target.sample(8000, generator=g, dtype=F64)
    y, log_p = push([block], x_eval, target.log_prob(x_eval))
    kl, se = kl_to_standard_normal(y, log_p)
    m, s = gaussian_jko_step(torch.full((2,), 1.0, dtype=F64), torch.full((2,), 0.5, dtype=F64), gamma)
    assert abs(kl - float(gaussian_kl(m, s))) < 0.03 + 3 * se
    assert torch.allclose(y.mean(0), m, atol=0.05) and torch.allclose(y.std(0), s, atol=0.05)


def test_jko_run_without_blocks_is_the_target_and_degenerate_targets_fail():
    rec = run_jko(
        {"target": {"name": "gaussian", "D": 2, "mean": 1.0, "s": 0.5}, "K": 0, "n_w2": 100, "n_mc": 4000}, device="cpu"
    )
    m = rec.metrics
    assert rec.status == "ok" and abs(m["kl"] - m["kl_closed_form"]) < 4 * m["kl_se"] and "block_final_loss" not in m
    rec = run_jko({"target": {"name": "ring8", "s": 0.0}, "K": 1}, device="cpu")
    assert rec.status == "failed" and "singular" in rec.reason


def test_a_diverging_block_fails_its_run_with_the_reason():
    """Blocks train through the one training loop: a non-finite loss is a failed run (stage train), not a crash."""
    rec = run_jko(
        {
            "target": {"name": "gaussian", "D": 2, "mean": 1.0, "s": 0.5},
            "K": 1,
            "n_w2": 0,
            "optim": {"lr": 1e30, "steps": 100},
        },
        device="cpu",
    )
    assert rec.status == "failed" and rec.stage == "train" and "non-finite loss" in rec.reason


def test_a_sweep_over_K_reuses_the_chain_without_changing_a_number():
    """K = 2 after K = 1 trains one more block on the chain; the same K = 2 run alone gives the same numbers."""
    from convlab.runs.artefacts import clear_memo

    base = {
        "target": {"name": "gaussian", "D": 2, "mean": 1.0, "s": 0.5},
        "n": 300,
        "n_mc": 500,
        "n_w2": 0,
        "optim": {"steps": 30},
    }
    run_jko({**base, "K": 1}, device="cpu")
    shared = run_jko({**base, "K": 2}, device="cpu").metrics
    clear_memo()
    alone = run_jko({**base, "K": 2}, device="cpu").metrics
    assert {k: v for k, v in shared.items() if k != "time_total_s"} == {
        k: v for k, v in alone.items() if k != "time_total_s"
    }


def test_closed_form_plateau_is_quadratic_in_the_step_error():
    """With a shift of length eps after every exact step, KL settles at O(eps^2)."""
    base = {
        "target": {"name": "gaussian", "D": 2, "mean": 1.0, "s": 0.5},
        "K": 12,
        "n_w2": 0,
        "optim": {"steps": 0},
        "n_mc": 10,
    }
    kl = [run_jko({**base, "step_error": e}, device="cpu").metrics["kl_closed_form"] for e in (0.05, 0.1)]
    assert math.log(kl[1] / kl[0]) / math.log(2) == pytest.approx(2.0, abs=0.15)
