"""Networks, the net-backed field, the student map and the training loop."""

import math

import pytest
import torch

from convlab.fields import NetField
from convlab.interpolants import as_interpolant
from convlab.models import Divergence, Student, TwoTimeNet, VelocityNet, train
from convlab.models.nets import Net
from convlab.models.training import Optim, lr_factor

CFG = Net(width=16, depth=2)


def _x(n=7, D=3, seed=0):
    return torch.randn(n, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("ip", ["linear", "trig", "follmer", "vp"])
def test_velocity_and_denoiser_views_are_the_same_field(ip):
    """A network read as a denoiser gives V by the identity; reading that V back as a velocity network and
    converting gives the denoiser back (both directions of the identity in docs/concepts/theory.md §2)."""
    ip = as_interpolant(ip)
    net = VelocityNet(3, CFG).double()
    as_den = NetField(net, ip, "denoiser")
    x, t = _x(), torch.linspace(0.1, 0.9, 7, dtype=torch.float64)
    v = as_den.velocity(t, x)

    class Frozen(torch.nn.Module):
        def forward(self, tt, xx):
            return v

    as_vel = NetField(Frozen(), ip, "velocity")
    torch.testing.assert_close(as_vel.denoiser(t, x), net(t, x))
    # and the score view is Tweedie's identity score = (b D - x) / a^2
    a, b = ip.a(t)[:, None], ip.b(t)[:, None]
    torch.testing.assert_close(as_den.score(t, x), (b * net(t, x) - x) / a**2)


@pytest.mark.parametrize("form", ["euler", "exp_euler"])
def test_student_is_the_identity_at_equal_times(form):
    student = Student(TwoTimeNet(3, CFG).double(), as_interpolant("follmer"), form)
    x = _x()
    s = torch.rand(7, dtype=torch.float64)
    torch.testing.assert_close(student(s, s, x), x)


def test_student_initialised_from_teacher_is_one_teacher_step():
    ip = as_interpolant("follmer")
    teacher = VelocityNet(3, CFG).double()
    x = _x()
    euler = Student(TwoTimeNet.from_teacher(teacher), ip, "euler")
    torch.testing.assert_close(euler(0.2, 0.5, x), x + 0.3 * teacher(0.2, x))
    exp = Student(TwoTimeNet.from_teacher(teacher), ip, "exp_euler")
    ratio = ip.a(0.5) / ip.a(0.2)
    torch.testing.assert_close(exp(0.2, 0.5, x), ratio * x + (ip.b(0.5) - ratio * ip.b(0.2)) * teacher(0.2, x))


def test_train_minimises_and_detects_divergence():
    torch.manual_seed(0)
    w = torch.nn.Linear(2, 1)
    x = torch.randn(64, 2)
    y = x @ torch.tensor([[2.0], [-1.0]]) + 0.5
    log = train(
        w, Optim(steps=400, lr=0.05, grad_clip=None), lambda f, b: (f(b[0]) - b[1]).pow(2).mean(), lambda step: (x, y)
    )
    assert log.final_loss < 1e-4 and len(log.history) == 8  # a window mean every check_every = 50 steps
    with pytest.raises(Divergence, match="non-finite loss"):
        train(w, Optim(steps=100, grad_clip=None), lambda f, b: f(b[0]).sum() * math.inf, lambda step: (x,))


def test_lr_schedule():
    f = lr_factor(Optim(steps=110, warmup_steps=10, schedule="cosine"))
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(60) == pytest.approx(0.5) and f(110) == pytest.approx(0.0)
    assert lr_factor(Optim(schedule="constant"))(1000) == 1.0
