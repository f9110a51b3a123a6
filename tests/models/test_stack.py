"""A network trained in a stack is the network trained alone: against torch.optim's Adam/RAdam and
clip_grad_norm_ (an independent implementation), member by member, with a diverging member in the stack, and for
a stateful spectral-normalised JKO block trained alone (the one loop trains every network)."""

import dataclasses
import math

import pytest
import torch

from convlab.models.nets import Net, VelocityNet
from convlab.models.residual import Block, ResidualBlock
from convlab.models.stack import Member, train, train_stack
from convlab.models.training import Divergence, Optim, lr_factor
from convlab.theory.jko import ProximalObjective, proximal_loss

NET = Net(width=16, depth=2, time_features=2)


def _net(seed: int, dtype) -> VelocityNet:
    torch.manual_seed(seed)
    return VelocityNet(2, NET).to(dtype)


def _draw(seed: int, dtype, poison_at: int | None = None):
    """Batches of a smooth regression problem from the member's own generator; inf inputs from `poison_at` on."""
    g = torch.Generator().manual_seed(seed)

    def draw(step: int):
        x = torch.randn(32, 2, generator=g, dtype=dtype)
        t = torch.rand(32, generator=g, dtype=dtype)
        if poison_at is not None and step >= poison_at:
            x = x * math.inf
        return x, t, torch.sin(3 * x) * t[:, None]

    return draw


def _loss(model, inputs):
    x, t, y = inputs
    return (model(t, x) - y).pow(2).sum(1).mean()


CFGS = [
    Optim(steps=120, lr=3e-3, batch_size=32),
    Optim(steps=120, lr=1e-2, batch_size=32, grad_clip=0.05, warmup_steps=10, schedule="constant"),
    Optim(steps=120, lr=5e-3, batch_size=32, grad_clip=None, ema=0.9, weight_decay=1e-3),
    Optim(steps=120, lr=2e-3, batch_size=32, grad_clip=0.5, ema=0.99),
]


def _torch_optim(net, loss_fn, cfg: Optim, check_every: int) -> list[float]:
    """The independent route: torch.optim's Adam/RAdam with LambdaLR, clip_grad_norm_, the nn.Module's own forward
    and an EMA of the weights (theta_ema <- decay theta_ema + (1 - decay) theta from the initial weights); returns
    the window means of the loss and leaves the (EMA) weights in `net`. Raises Divergence as the loop does."""
    params = list(net.parameters())
    cls = {"adam": torch.optim.Adam, "radam": torch.optim.RAdam}[cfg.optimizer]
    opt = cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(cfg))
    shadow = [p.detach().clone() for p in params]
    history, window = [], []
    for step in range(cfg.steps):
        loss = loss_fn(step)
        opt.zero_grad()
        loss.backward()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        sched.step()
        with torch.no_grad():
            for e, p in zip(shadow, params):
                e.lerp_(p, 1 - (cfg.ema or 0.0))
        window.append(float(loss.detach()))
        if len(window) == check_every or step == cfg.steps - 1:
            mean = sum(window) / len(window)
            window.clear()
            if not math.isfinite(mean):
                raise Divergence(step, mean)
            history.append(mean)
    if cfg.ema is not None:
        with torch.no_grad():
            for e, p in zip(shadow, params):
                p.copy_(e)
    return history


def _alone_torch(i: int, cfg: Optim, dtype):
    net = _net(i, dtype)
    draw = _draw(100 + i, dtype)
    history = _torch_optim(net, lambda step: _loss(net, draw(step)), cfg, check_every=10)
    return net, history


@pytest.mark.parametrize("optimizer", ["adam", "radam"])
def test_stack_equals_torch_optim_member_by_member(optimizer):
    """float64: every window mean and every final weight of every member as torch's optimiser gives alone."""
    dtype = torch.float64
    cfgs = [dataclasses.replace(c, optimizer=optimizer) for c in CFGS]
    nets = [_net(i, dtype) for i in range(len(cfgs))]
    logs = train_stack(
        [Member(n, c, _draw(100 + i, dtype)) for i, (n, c) in enumerate(zip(nets, cfgs))], _loss, check_every=10
    )
    for i, (net, log, cfg) in enumerate(zip(nets, logs, cfgs)):
        ref_net, ref_history = _alone_torch(i, cfg, dtype)
        assert len(log.history) == len(ref_history) == 12
        assert log.history == pytest.approx(ref_history, rel=1e-9, abs=0)
        for p, q in zip(net.parameters(), ref_net.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-8, atol=1e-10)


def test_float32_batch_equals_alone_to_rounding():
    """float32, the dtype of the studies: a member's history in a stack of 4 is its history in a stack of 1 to
    float rounding (batched matmuls sum in another order): measured <= 1e-7 relative over the first windows and
    <= 2e-7 over all 120 steps; asserted at 1e-6 and 1e-5 (Adam's normalisation can amplify rounding)."""
    dtype = torch.float32
    together = train_stack(
        [Member(_net(i, dtype), c, _draw(100 + i, dtype)) for i, c in enumerate(CFGS)], _loss, check_every=10
    )
    for i, cfg in enumerate(CFGS):
        (alone,) = train_stack([Member(_net(i, dtype), cfg, _draw(100 + i, dtype))], _loss, check_every=10)
        assert together[i].history[:3] == pytest.approx(alone.history[:3], rel=1e-6)
        assert together[i].history == pytest.approx(alone.history, rel=1e-5)


def test_a_diverging_member_fails_alone_and_the_others_finish_as_if_alone():
    dtype = torch.float64
    nets = [_net(i, dtype) for i in range(3)]
    before = [p.detach().clone() for p in nets[1].parameters()]
    members = [Member(nets[i], CFGS[i], _draw(100 + i, dtype, poison_at=25 if i == 1 else None)) for i in range(3)]
    logs = train_stack(members, _loss, check_every=10)
    assert isinstance(logs[1], Divergence) and logs[1].step == 29  # the end of the window where it turned inf
    assert all(torch.equal(p, q) for p, q in zip(nets[1].parameters(), before))  # left as it was
    for i in (0, 2):
        _, ref = _alone_torch(i, CFGS[i], dtype)
        assert logs[i].history == pytest.approx(ref, rel=1e-9, abs=0)
    with pytest.raises(Divergence) as alone:  # the same failure as alone, and as torch.optim's loop sees it
        train(_net(1, dtype), CFGS[1], _loss, _draw(101, dtype, poison_at=25), check_every=10)
    assert alone.value.step == logs[1].step
    with pytest.raises(Divergence) as reference:
        net, draw = _net(1, dtype), _draw(101, dtype, poison_at=25)
        _torch_optim(net, lambda step: _loss(net, draw(step)), CFGS[1], check_every=10)
    assert reference.value.step == logs[1].step


def test_members_must_share_steps_and_optimiser():
    with pytest.raises(ValueError, match="differ in optimiser, steps or batch size"):
        train_stack(
            [
                Member(_net(0, torch.float32), CFGS[0], _draw(0, torch.float32)),
                Member(_net(1, torch.float32), dataclasses.replace(CFGS[0], steps=7), _draw(1, torch.float32)),
            ],
            _loss,
        )


@pytest.mark.parametrize("ema", [None, 0.9])
def test_snapshot_is_the_network_trained_for_that_many_steps(ema):
    """With a constant schedule the weights after k of N steps do not depend on N: the snapshot at k equals a
    member trained for k steps (EMA weights when EMA is on), and the final weights are unchanged by taking it."""
    dtype = torch.float64
    cfg = Optim(steps=60, lr=3e-3, batch_size=32, schedule="constant", ema=ema)
    short = dataclasses.replace(cfg, steps=30)
    nets = [_net(0, dtype), _net(0, dtype), _net(0, dtype)]
    (full,) = train_stack([Member(nets[0], cfg, _draw(5, dtype))], _loss, snapshot_at=30)
    (alone,) = train_stack([Member(nets[1], short, _draw(5, dtype))], _loss)
    (plain,) = train_stack([Member(nets[2], cfg, _draw(5, dtype))], _loss)
    assert alone.snapshot is None and set(full.snapshot) == {n for n, _ in nets[1].named_parameters()}
    for name, p in nets[1].named_parameters():
        torch.testing.assert_close(full.snapshot[name], p.detach(), rtol=0, atol=1e-13)
    for p, q in zip(nets[0].parameters(), nets[2].parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_linear_skip_starts_at_zero_and_adds_a_multiple_of_x():
    torch.manual_seed(0)
    plain = VelocityNet(3, Net(width=8, depth=2))
    torch.manual_seed(0)
    skip = VelocityNet(3, Net(width=8, depth=2, skip=True))
    x, t = torch.randn(5, 3), torch.rand(5)
    torch.testing.assert_close(skip(t, x), plain(t, x), rtol=0, atol=0)  # zero at initialisation
    with torch.no_grad():
        skip.skip.bias.fill_(0.7)
    torch.testing.assert_close(skip(t, x), plain(t, x) + 0.7 * x)


def _heldout(seed: int, dtype, n: int = 256):
    """Noisy data of a simple regression (y = 2 t x + 0.3 noise), drawn once."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g, dtype=dtype)
    t = torch.rand(n, generator=g, dtype=dtype)
    return x, t, 2 * x * t[:, None] + 0.3 * torch.randn(n, 2, generator=g, dtype=dtype)


def _few_points(seed: int, dtype, n: int = 16):
    """Batches resampled from only n noisy training points: the held-out loss falls, then rises (overfitting)."""
    x, t, y = _heldout(seed, dtype, n)
    g = torch.Generator().manual_seed(seed + 1)

    def draw(step: int):
        i = torch.randint(n, (32,), generator=g)
        return x[i], t[i], y[i]

    return draw


@pytest.mark.parametrize("ema", [None, 0.9])
def test_heldout_selection_keeps_the_checkpoint_an_independent_loop_finds(ema):
    """train_stack with held-out data keeps the weights of its lowest held-out loss: the step and the weights are
    those a plain torch.optim loop finds by evaluating the same held-out loss at the same steps (an independent
    implementation: nn.Module forward, torch's Adam, clip_grad_norm_, its own copy of the best weights)."""
    dtype, every = torch.float64, 10
    cfg = Optim(steps=300, lr=1e-2, batch_size=32, schedule="constant", ema=ema)
    nets = [_net(7 + i, dtype) for i in range(2)]
    members = [Member(nets[i], cfg, _few_points(20 + i, dtype), heldout=_heldout(40 + i, dtype)) for i in range(2)]
    logs = train_stack(members, _loss, check_every=every)
    for i in range(2):
        net = _net(7 + i, dtype)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        shadow = [p.detach().clone() for p in net.parameters()]
        draw, val = _few_points(20 + i, dtype), _heldout(40 + i, dtype)

        def loaded():  # the weights a check evaluates: EMA ones when EMA is on
            return shadow if ema is not None else [p.detach() for p in net.parameters()]

        def heldout_loss(params):
            probe = _net(7 + i, dtype)
            with torch.no_grad():
                for q, p in zip(probe.parameters(), params):
                    q.copy_(p)
                return _loss(probe, val).item()

        checks = [(0, heldout_loss(loaded()))]
        best = (0, checks[0][1], [p.clone() for p in loaded()])
        for step in range(cfg.steps):
            loss = _loss(net, draw(step))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            opt.step()
            if ema is not None:
                with torch.no_grad():
                    for s, p in zip(shadow, net.parameters()):
                        s.lerp_(p, 1 - ema)
            if (step + 1) % every == 0:
                value = heldout_loss(loaded())
                checks.append((step + 1, value))
                if value < best[1]:
                    best = (step + 1, value, [p.clone() for p in loaded()])
        log = logs[i]
        assert 0 < best[0] < cfg.steps, "the minimum must be interior for the test to test anything"
        assert [s for s, _ in log.heldout_history] == [s for s, _ in checks]
        assert [v for _, v in log.heldout_history] == pytest.approx([v for _, v in checks], rel=1e-9)
        assert log.best_step == best[0] and log.best_heldout_loss == pytest.approx(best[1], rel=1e-9)
        for p, q in zip(nets[i].parameters(), best[2]):
            torch.testing.assert_close(p, q, rtol=1e-8, atol=1e-10)


def test_without_heldout_data_a_member_keeps_its_last_weights():
    dtype = torch.float64
    cfg = Optim(steps=40, lr=1e-2, batch_size=32, schedule="constant")
    a, b = _net(3, dtype), _net(3, dtype)
    (plain,) = train_stack([Member(a, cfg, _few_points(1, dtype))], _loss)
    (chosen,) = train_stack([Member(b, cfg, _few_points(1, dtype), heldout=_heldout(2, dtype))], _loss)
    assert plain.best_step is None and chosen.best_step is not None
    assert plain.history == chosen.history  # the checks change no training step


def test_a_spectral_normalised_jko_block_trains_as_torch_optim_trains_it():
    """The JKO blocks go through the same loop: spectral norm keeps state (its power iteration's u and v, updated in
    place in training mode only) and the loss needs the block's log-determinant, not only its forward. Trained
    through ProximalObjective, the block ends with torch.optim's weights, buffers and outputs (float64)."""
    dtype, gamma, cfg = torch.float64, 0.5, Optim(steps=60, lr=3e-3, batch_size=64, grad_clip=None)
    x = 1.0 + 0.5 * torch.randn(300, 2, generator=torch.Generator().manual_seed(1), dtype=dtype)

    def block_and_draw():
        torch.manual_seed(0)
        g = torch.Generator().manual_seed(2)
        return ResidualBlock(2, Block(width=16)).to(dtype), lambda step: (x[torch.randint(300, (64,), generator=g)],)

    ours, draw = block_and_draw()
    log = train(ProximalObjective(ours, gamma), cfg, lambda objective, batch: objective(*batch), draw, check_every=10)
    ref, ref_draw = block_and_draw()
    history = _torch_optim(ref, lambda step: proximal_loss(ref, *ref_draw(step), gamma), cfg, check_every=10)
    assert log.history == pytest.approx(history, rel=1e-9, abs=0)
    for p, q in [*zip(ours.parameters(), ref.parameters()), *zip(ours.buffers(), ref.buffers())]:
        torch.testing.assert_close(p, q, rtol=1e-8, atol=1e-10)
    assert not ours.training  # trained networks are left in eval mode, as the measurements use them
    y = torch.randn(50, 2, dtype=dtype)
    torch.testing.assert_close(ours(y), ref.eval()(y), rtol=1e-8, atol=1e-10)
