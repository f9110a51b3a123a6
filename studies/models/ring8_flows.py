"""Velocity models of the 8-Gaussian ring trained outside a study, for studies/external_models.yaml: the same 2000
points, the same budget (2000 Adam steps at 2e-3, batches of 256) and the same interpolant (linear: X_t = t X1 +
(1 - t) Z), three ways --

- `cfm`: TorchCFM's ConditionalFlowMatcher(sigma=0), pairs of noise and data drawn independently: it learns the
  linear interpolant's marginal velocity, the field convlab's exact velocity is;
- `ot_cfm`: TorchCFM's ExactOptimalTransportConditionalFlowMatcher(sigma=0), each minibatch's pairs coupled by
  exact optimal transport: it learns another transport of the same two measures, with straighter paths;
- `teacher`: convlab's own velocity teacher (convlab.pipeline.build_teacher, its default network and schedule);

and `exact`, the exact velocity itself (no checkpoint): the control whose only error is the solver's.

    python studies/models/ring8_flows.py      # writes ring8_{cfm,ot_cfm,teacher}.pt here, prints their SHA-256

The two TorchCFM models share the network of flow_matching's and TorchCFM's 2-D examples ([x, t] -> velocity,
two hidden layers of 128 SiLU units, called as model(x, t)).
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from convlab.interpolants import as_interpolant
from convlab.models import Optim, VelocityNet
from convlab.pipeline import PipelineSpec, build_teacher
from convlab.pipeline.teacher import training_sample
from convlab.targets import make_target

HERE = Path(__file__).resolve().parent
TARGET, LINEAR = make_target("ring8"), as_interpolant("linear")
SPEC = PipelineSpec(interpolant="linear", T=1.0)
SPEC = replace(SPEC, teacher=replace(SPEC.teacher, optim=Optim(steps=2000, lr=2e-3, batch_size=256)))


class MLP(nn.Module):
    def __init__(self, dim: int = 2, width: int = 128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim + 1, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(), nn.Linear(width, dim)
        )

    def forward(self, x, t):
        return self.net(torch.cat([x, t.reshape(-1, 1).expand(x.shape[0], 1)], 1))


def _mlp(checkpoint: str, device: str):
    model = MLP()
    model.load_state_dict(torch.load(checkpoint, weights_only=True))
    model.to(device).eval()
    return lambda s, x: model(x, s)


def cfm(checkpoint: str, device: str = "cpu"):
    return _mlp(checkpoint, device)


def ot_cfm(checkpoint: str, device: str = "cpu"):
    return _mlp(checkpoint, device)


def teacher(checkpoint: str, device: str = "cpu"):
    net = VelocityNet(TARGET.ambient_dim, SPEC.teacher.net)
    net.load_state_dict(torch.load(checkpoint, weights_only=True))
    net.to(device).eval()
    return lambda s, x: net(s, x)


def exact(device: str = "cpu"):
    """The exact velocity, computed in float64 wherever x lives and returned in x's dtype."""
    return lambda s, x: TARGET.velocity(s.double(), x.double(), LINEAR).to(x.dtype)


def train_torchcfm(matcher, x1_train: torch.Tensor) -> MLP:
    """TorchCFM's recipe on the training points: t, X_t, u_t from the matcher on a (noise, data) minibatch."""
    torch.manual_seed(0)
    np.random.seed(0)  # TorchCFM draws the OT plan's pairs from numpy's global generator
    model, optim = MLP(), SPEC.teacher.optim
    opt = torch.optim.Adam(model.parameters(), lr=optim.lr)
    g = torch.Generator().manual_seed(1)
    for _ in range(optim.steps):
        x1 = x1_train[torch.randint(x1_train.shape[0], (optim.batch_size,), generator=g)]
        t, xt, ut = matcher.sample_location_and_conditional_flow(torch.randn(x1.shape, generator=g), x1)
        loss = (model(xt, t) - ut).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def main() -> None:
    import torchcfm  # make setup installs it (without its dependencies)

    torch.set_num_threads(1)
    cpu = torch.device("cpu")
    x1 = training_sample(SPEC, TARGET, cpu, torch.float32)  # the teacher's own 2000 points, for all three
    nets = {
        "cfm": train_torchcfm(torchcfm.ConditionalFlowMatcher(sigma=0.0), x1),
        "ot_cfm": train_torchcfm(torchcfm.ExactOptimalTransportConditionalFlowMatcher(sigma=0.0), x1),
        "teacher": build_teacher(SPEC, TARGET, LINEAR, cpu).field.net,
    }
    for name, net in nets.items():
        path = HERE / f"ring8_{name}.pt"
        torch.save(net.state_dict(), path)
        print(f"{path.relative_to(HERE.parents[1])}: sha256 {hashlib.sha256(path.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    sys.exit(main())
