"""Networks: a velocity (or denoiser) network v(t, x), a two-time network f(s, t, x), and the student map g(s, t, x)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from convlab.interpolants import Interpolant, column

ACTIVATIONS = {"silu": nn.SiLU, "gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh, "softplus": nn.Softplus}


@dataclass(frozen=True)
class Net:
    """An MLP on [x, Fourier features of the time(s)]: `depth` hidden layers of `width` units with `activation`
    (a key of ACTIVATIONS), `time_features` frequencies per time, and (`skip`) a term c(t) x added to the output,
    c linear in the time features and zero at initialisation: the exact field along the normal space of a
    manifold is such a multiple of x, which the MLP must otherwise build in every direction."""

    width: int = 128
    depth: int = 3
    activation: str = "silu"
    time_features: int = 8
    skip: bool = False


class FourierTime(nn.Module):
    """t (n,) -> [t, sin(pi 2^j t), cos(pi 2^j t)]_{j < F}, (n, 2F + 1): fixed, deterministic features."""

    def __init__(self, features: int):
        super().__init__()
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(features, dtype=torch.float32))
        self.dim = 2 * features + 1

    def forward(self, t: Tensor) -> Tensor:
        arg = t[:, None] * self.freqs
        return torch.cat([t[:, None], torch.sin(arg), torch.cos(arg)], 1)


def mlp(d_in: int, d_out: int, cfg: Net) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = d_in
    for _ in range(cfg.depth):
        layers += [nn.Linear(width, cfg.width), ACTIVATIONS[cfg.activation]()]
        width = cfg.width
    return nn.Sequential(*layers, nn.Linear(width, d_out))


def _skip(features: int) -> nn.Linear:
    """c(t): a linear map of the time features to one coefficient, zero at initialisation (the MLP starts alone)."""
    layer = nn.Linear(features, 1)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def _times(t, x: Tensor) -> Tensor:
    """A float or (n,) tensor of times as an (n,) tensor on x's device and dtype."""
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    return t.expand(x.shape[0]) if t.ndim == 0 else t.reshape(-1)


class VelocityNet(nn.Module):
    """v(t, x): an MLP on [x, phi(t)], (n, D) -> (n, D). Outputs a velocity or a denoiser (see NetField)."""

    def __init__(self, dim: int, cfg: Net):
        super().__init__()
        self.dim, self.cfg = dim, cfg
        self.time = FourierTime(cfg.time_features)
        self.body = mlp(dim + self.time.dim, dim, cfg)
        self.skip = _skip(self.time.dim) if cfg.skip else None

    def forward(self, t, x: Tensor) -> Tensor:
        phi = self.time(_times(t, x))
        out = self.body(torch.cat([x, phi], 1))
        return out if self.skip is None else out + self.skip(phi) * x


class TwoTimeNet(nn.Module):
    """f(s, t, x): an MLP on [x, phi(s), phi(t)], (n, D) -> (n, D)."""

    def __init__(self, dim: int, cfg: Net):
        super().__init__()
        self.dim, self.cfg = dim, cfg
        self.time = FourierTime(cfg.time_features)
        self.body = mlp(dim + 2 * self.time.dim, dim, cfg)
        self.skip = _skip(2 * self.time.dim) if cfg.skip else None

    def forward(self, s, t, x: Tensor) -> Tensor:
        phi = torch.cat([self.time(_times(s, x)), self.time(_times(t, x))], 1)
        out = self.body(torch.cat([x, phi], 1))
        return out if self.skip is None else out + self.skip(phi) * x

    @classmethod
    def from_teacher(cls, teacher: VelocityNet) -> TwoTimeNet:
        """A copy of the teacher that ignores its second time: f(s, t, x) = v(s, x) at initialisation."""
        ref = next(teacher.parameters())
        net = cls(teacher.dim, teacher.cfg).to(ref.device, ref.dtype)
        state = {k: v.clone() for k, v in teacher.state_dict().items()}
        w = state["body.0.weight"]  # columns [x | phi(t)] of the first layer
        state["body.0.weight"] = torch.cat(
            [w, torch.zeros(w.shape[0], teacher.time.dim, dtype=w.dtype, device=w.device)], 1
        )
        if teacher.skip is not None:  # c(s, t) = c(s) of the teacher: zero weight on phi(t)
            ws = state["skip.weight"]
            state["skip.weight"] = torch.cat([ws, torch.zeros_like(ws)], 1)
        net.load_state_dict(state)
        return net


class Student(nn.Module):
    """g(s, t, x) with g(s, s, x) = x by construction (docs/concepts/theory.md §4, step 3).

    form 'euler': x + (t - s) f(s, t, x); form 'exp_euler': (a_t / a_s) x + (b_t - a_t b_s / a_s) f(s, t, x), the
    exponential integrator's step with f in place of the denoiser. One-step sampling is g(0, T, z).
    """

    def __init__(self, net: TwoTimeNet, interpolant: Interpolant, form: str):
        super().__init__()
        self.net, self.interpolant, self.form = net, interpolant, form

    def forward(self, s, t, x: Tensor) -> Tensor:
        f = self.net(s, t, x)
        s, t = (torch.as_tensor(v, dtype=x.dtype, device=x.device) for v in (s, t))
        if self.form == "euler":
            return x + column(t - s, x) * f
        ip = self.interpolant
        ratio = column(ip.a(t) / ip.a(s), x)
        return ratio * x + (column(ip.b(t), x) - ratio * column(ip.b(s), x)) * f


def n_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
