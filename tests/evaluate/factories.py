"""Model factories for the 'external' run kind's tests, named as a study names them ('tests.evaluate.factories:...')."""

import torch
from torch import nn

from convlab.interpolants import as_interpolant
from convlab.targets import make_target

_RING8, _LINEAR = make_target("ring8"), as_interpolant("linear")


def exact_linear():
    """The exact ring8 velocity under the linear interpolant (noise at 0), in the dtype it is given."""
    return lambda s, x: _RING8.velocity(s.double(), x.double(), _LINEAR).to(x.dtype)


def wrong_shape():
    return lambda s, x: x[:, :1]


def raises():
    raise RuntimeError("no GPU here")


def not_a_factory():
    return 42


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Linear(3, 2)

    def forward(self, x, t):
        return self.net(torch.cat([x, t.reshape(-1, 1)], 1))


def tiny(checkpoint: str):
    """A model saved as a state dict, loaded from its checkpoint, called as u(s, x)."""
    model = Tiny()
    model.load_state_dict(torch.load(checkpoint, weights_only=True))
    return lambda s, x: model(x, s)
