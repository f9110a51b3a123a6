"""Networks (velocity, two-time, student map, JKO residual block), the dataclasses that describe them (Net, Block)
and their training (Optim): `train` for one network (the JKO blocks), `models.stack.train_stack` for teachers and
students, alone or stacked."""

from convlab.models.nets import Net, Student, TwoTimeNet, VelocityNet, n_parameters
from convlab.models.residual import Block, ResidualBlock
from convlab.models.training import Divergence, Optim, train

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
