"""A network as a field the solvers integrate, and the student map g(s, t, x) built on a two-time network."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from convlab.interpolants import Interpolant
from convlab.models.nets import TwoTimeNet, VelocityNet


def _col(v, x: Tensor) -> Tensor:
    """A float or (n,) schedule value as a scalar or an (n, 1) column against x."""
    return v.reshape(-1, 1) if isinstance(v, Tensor) and v.ndim else v


class NetField:
    """dx/dt = V_theta(t, x) from a network that outputs the velocity or the denoiser D_theta.

    With the denoiser, V = (a'/a) x + (b' - a' b / a) D (THEORY.md section 2); conversely
    D = (a V - a' x) / (a b' - a' b). Both directions are exact identities, so either parametrisation
    serves euler, heun, rk4 and exp_euler alike.
    """

    def __init__(self, net: VelocityNet, interpolant: Interpolant, parametrization: str):
        self.net, self.interpolant, self.parametrization = net, interpolant, parametrization

    def _t(self, t, x):
        return torch.as_tensor(t, dtype=x.dtype, device=x.device) if isinstance(t, Tensor) else t

    def velocity(self, t, x: Tensor) -> Tensor:
        out = self.net(t, x)
        if self.parametrization == "velocity":
            return out
        ip, t = self.interpolant, self._t(t, x)
        a, b, da, db = (_col(f(t), x) for f in (ip.a, ip.b, ip.da, ip.db))
        return (da / a) * x + (db - da * b / a) * out

    def denoiser(self, t, x: Tensor) -> Tensor:
        out = self.net(t, x)
        if self.parametrization == "denoiser":
            return out
        ip, t = self.interpolant, self._t(t, x)
        a, b, da, db = (_col(f(t), x) for f in (ip.a, ip.b, ip.da, ip.db))
        return (a * out - da * x) / (a * db - da * b)


class Student(nn.Module):
    """g(s, t, x) with g(s, s, x) = x by construction (THEORY.md section 4, step 3).

    form 'euler': x + (t - s) f(s, t, x);  form 'exp': (a_t / a_s) x + (b_t - a_t b_s / a_s) f(s, t, x).
    One-step sampling is g(0, T, z).
    """

    def __init__(self, net: TwoTimeNet, interpolant: Interpolant, form: str):
        super().__init__()
        self.net, self.interpolant, self.form = net, interpolant, form

    def forward(self, s, t, x: Tensor) -> Tensor:
        f = self.net(s, t, x)
        s, t = (torch.as_tensor(v, dtype=x.dtype, device=x.device) for v in (s, t))
        if self.form == "euler":
            return x + _col(t - s, x) * f
        ip = self.interpolant
        ratio = _col(ip.a(t) / ip.a(s), x)
        return ratio * x + (_col(ip.b(t), x) - ratio * _col(ip.b(s), x)) * f
