"""Networks (velocity, two-time, student map, JKO residual block) and the one training loop."""

from convlab.models.nets import Student, TwoTimeNet, VelocityNet, n_parameters
from convlab.models.residual import ResidualBlock
from convlab.models.training import Divergence, train

__all__ = ["Divergence", "ResidualBlock", "Student", "TwoTimeNet", "VelocityNet", "n_parameters", "train"]
