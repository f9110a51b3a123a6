"""Networks (velocity, two-time, student map, JKO residual block), the dataclasses that describe them (Net, Block)
and their training (Optim), one loop for all of them: `train` for one network, `models.stack.train_stack` for a
stack of same-shaped networks trained as one computation."""

from convlab.models.nets import Net, Student, TwoTimeNet, VelocityNet, n_parameters
from convlab.models.residual import Block, ResidualBlock
from convlab.models.stack import train
from convlab.models.training import Divergence, Optim

__all__ = [
    "Block",
    "Divergence",
    "Net",
    "Optim",
    "ResidualBlock",
    "Student",
    "TwoTimeNet",
    "VelocityNet",
    "n_parameters",
    "train",
]
