"""Networks, the net-backed field and student map, and the shared training loop."""

from convlab.models.fields import NetField, Student
from convlab.models.nets import TwoTimeNet, VelocityNet, n_parameters
from convlab.models.training import Divergence, train

__all__ = ["NetField", "Student", "TwoTimeNet", "VelocityNet", "n_parameters", "Divergence", "train"]
