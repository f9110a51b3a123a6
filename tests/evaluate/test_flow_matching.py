"""A model trained with facebookresearch's flow_matching (its AffineProbPath + CondOTScheduler recipe, its ODESolver
for sampling) measured by convlab.evaluate, and convlab's own teacher on the same data and budget measured the same
way: the client's scheduler object maps onto convlab's interpolant, convlab's Euler solve of the client's model is
the client's own Euler solve, and both models are measured against the exact ring8 field."""

from dataclasses import replace

import pytest
import torch
from flow_matching.path import AffineProbPath
from flow_matching.path.scheduler import CondOTScheduler
from flow_matching.solver import ODESolver
from flow_matching.utils import ModelWrapper
from torch import nn

from convlab.evaluate import ModelField, check_convention, evaluate_velocity, model_interpolant
from convlab.interpolants import as_interpolant
from convlab.models import Optim
from convlab.pipeline import PipelineSpec, build_teacher
from convlab.pipeline.teacher import training_sample
from convlab.solvers import Reference, integrate, time_grid
from convlab.targets import make_target

TARGET = make_target("ring8")


class MLP(nn.Module):
    """The network of flow_matching's 2-D examples: [x, t] -> velocity, called as model(x, t)."""

    def __init__(self, dim: int = 2, width: int = 128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim + 1, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(), nn.Linear(width, dim)
        )

    def forward(self, x, t):
        return self.net(torch.cat([x, t.reshape(-1, 1).expand(x.shape[0], 1)], 1))


def train_with_flow_matching(x1_train: torch.Tensor, steps: int, *, lr: float = 2e-3, batch: int = 256) -> MLP:
    """flow_matching's recipe: X_t = t X1 + (1 - t) X0 from AffineProbPath(CondOTScheduler()), regress dX_t."""
    torch.manual_seed(0)
    model, path = MLP(), AffineProbPath(scheduler=CondOTScheduler())
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x1 = x1_train[torch.randint(x1_train.shape[0], (batch,), generator=g)]
        x0 = torch.randn(x1.shape, generator=g)
        sample = path.sample(t=torch.rand(batch, generator=g), x_0=x0, x_1=x1)
        loss = (model(sample.x_t, sample.t) - sample.dx_t).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def test_flow_matching_scheduler_and_solver_agree_with_convlab():
    scheduler = CondOTScheduler()
    assert check_convention(TARGET, scheduler) < 1e-10
    ip = model_interpolant(scheduler)
    t = torch.linspace(0, 1, 9, dtype=torch.float64)
    torch.testing.assert_close(ip.a(t), as_interpolant("linear").a(t), rtol=0, atol=1e-15)
    model = train_with_flow_matching(TARGET.sample(2000, generator=0), steps=200)
    z = torch.randn(500, 2, generator=torch.Generator().manual_seed(2))
    K = 16
    with torch.no_grad():
        theirs = ODESolver(velocity_model=ModelWrapper(model)).sample(
            x_init=z, step_size=1 / K, method="euler", time_grid=torch.tensor([0.0, 1.0])
        )
        ours = integrate(ModelField(lambda s, x: model(x, s), ip), z, time_grid(K), "euler").x
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_a_flow_matching_model_and_convlabs_teacher_side_by_side():
    """Same data (2000 ring8 points), same budget (2000 Adam steps at 2e-3, batch 256), same interpolant: both learn
    the field (velocity error well under the field's size), both show Euler's first order, and flow_matching's
    samples (its ODESolver, midpoint, 64 steps) are convlab's flow of its model to the solver's error."""
    spec = PipelineSpec(interpolant="linear", T=1.0)
    spec = replace(spec, teacher=replace(spec.teacher, optim=Optim(steps=2000, lr=2e-3, batch_size=256)))
    x1 = training_sample(spec, TARGET, torch.device("cpu"), torch.float32)
    client = train_with_flow_matching(x1, steps=2000)
    teacher = build_teacher(spec, TARGET, as_interpolant("linear"), torch.device("cpu"))
    budget = dict(n=2000, Ks=(8, 16, 32, 64, 128, 256), reference=Reference(K=512), device="cpu")
    theirs = evaluate_velocity(lambda s, x: client(x, s), TARGET, schedule=CondOTScheduler(), **budget)
    ours = evaluate_velocity(teacher.field.net, TARGET, schedule="linear", **budget)
    for r in (theirs, ours):
        print(r.summary())
        assert r.velocity_l2_error < 0.3 * float(r.velocity.velocity_l2_norm.mean())
        assert r.rates["euler"].verdict == "consistent", r.rates["euler"]
        assert not r.warnings
    z = torch.randn(1000, 2, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        sampled = ODESolver(velocity_model=ModelWrapper(client)).sample(x_init=z, step_size=1 / 64, method="midpoint")
        ip = model_interpolant(CondOTScheduler())
        exactish = integrate(ModelField(lambda s, x: client(x, s), ip), z, time_grid(512), "rk4").x
    assert (sampled - exactish).norm(dim=1).mean() < 1e-2  # midpoint at 64 steps: second order, small


def train_with_torchcfm(matcher, x1_train: torch.Tensor, steps: int, *, lr: float = 2e-3, batch: int = 256) -> MLP:
    """TorchCFM's recipe: t, X_t, u_t from the matcher on a (noise, data) minibatch, regress u_t."""
    torch.manual_seed(0)
    model = MLP()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x1 = x1_train[torch.randint(x1_train.shape[0], (batch,), generator=g)]
        t, xt, ut = matcher.sample_location_and_conditional_flow(torch.randn(x1.shape, generator=g), x1)
        loss = (model(xt, t) - ut).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.mark.slow
def test_torchcfm_models_are_measured_and_the_ot_coupling_is_not_the_independent_field():
    """TorchCFM's ConditionalFlowMatcher (sigma = 0) learns the linear interpolant's field under the independent
    coupling: the field convlab's exact velocity is. Its ExactOptimalTransportConditionalFlowMatcher couples each
    minibatch by optimal transport, so it learns another field (another transport of the same two measures): its
    velocity error against the independent coupling's field is larger at the same budget, while its own solver
    errors and samples are measured all the same."""
    torchcfm = pytest.importorskip("torchcfm", reason="make setup installs torchcfm (without its dependencies)")
    x1 = TARGET.sample(2000, generator=0)
    budget = dict(n=1000, Ks=(8, 16, 32, 64, 128), reference=Reference(K=256), device="cpu")
    results = {}
    for name, matcher in (
        ("cfm", torchcfm.ConditionalFlowMatcher(sigma=0.0)),
        ("ot-cfm", torchcfm.ExactOptimalTransportConditionalFlowMatcher(sigma=0.0)),
    ):
        model = train_with_torchcfm(matcher, x1, steps=600)
        results[name] = evaluate_velocity(lambda s, x, model=model: model(x, s), TARGET, schedule="linear", **budget)
    cfm, ot = results["cfm"], results["ot-cfm"]
    assert cfm.velocity_l2_error < 0.5 * float(cfm.velocity.velocity_l2_norm.mean())
    assert ot.velocity_l2_error > cfm.velocity_l2_error
    for r in results.values():
        assert r.rates["euler"].verdict == "consistent", r.rates["euler"]
