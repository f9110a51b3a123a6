import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from convlab.interpolants import INTERPOLANTS, VP, Interpolant, as_interpolant
from tests.strategies import interpolants

ENDPOINT = [as_interpolant(n) for n in ("linear", "trig", "follmer")]


@pytest.mark.parametrize("ip", ENDPOINT, ids=lambda i: i.name)
def test_boundary_values(ip):
    assert (ip.a(0.0), ip.b(0.0)) == pytest.approx((1.0, 0.0), abs=1e-15)
    assert (ip.a(1.0), ip.b(1.0)) == pytest.approx((0.0, 1.0), abs=1e-15)


@given(S=st.floats(0.5, 20.0))
def test_vp_boundary_values_and_initialisation_gap(S):
    ip = VP(S)
    assert (ip.a(1.0), ip.b(1.0)) == pytest.approx((0.0, 1.0), abs=1e-15)
    # X_0 is not exactly N(0, I): the gap is e^{-S} (docs/concepts/theory.md §1)
    assert ip.b(0.0) == pytest.approx(math.exp(-S), rel=1e-12)
    assert ip.a(0.0) == pytest.approx(math.sqrt(1 - math.exp(-2 * S)), rel=1e-12)


@given(ip=interpolants, t=st.floats(0.01, 0.99))
def test_derivatives_match_central_differences(ip, t):
    h = 1e-6
    for f, df in ((ip.a, ip.da), (ip.b, ip.db)):
        fd = (f(t + h) - f(t - h)) / (2 * h)
        assert df(t) == pytest.approx(fd, rel=1e-6, abs=1e-7)
    assert ip.a_da(t) == pytest.approx(ip.a(t) * ip.da(t), rel=1e-12, abs=1e-14)


@given(ip=interpolants, t=st.floats(0.0, 0.999))
def test_float_and_tensor_agree(ip, t):
    tt = torch.tensor([t], dtype=torch.float64)
    for name in ("a", "b", "da", "db", "a_da"):
        assert getattr(ip, name)(tt).item() == pytest.approx(getattr(ip, name)(t), rel=1e-12, abs=1e-15)


def test_a_da_is_finite_at_one_where_da_is_not():
    assert as_interpolant("follmer").a_da(1.0) == -1.0
    assert VP(3.0).a_da(1.0) == -3.0


def test_registry_and_specs():
    assert set(INTERPOLANTS) == {"linear", "trig", "follmer", "vp"}
    assert as_interpolant({"name": "vp", "S": 4}) == VP(4.0)
    assert as_interpolant("vp").spec() == {"name": "vp", "S": 10.0}
    with pytest.raises(ValueError, match="did you mean 'linear'"):
        as_interpolant("lineer")
    with pytest.raises(ValueError, match=r"S must be a positive number \(got -1\)"):
        VP(-1)


def test_user_schedule_in_a_few_lines():
    class Cubic(Interpolant):
        name = "cubic"

        def a(self, t):
            return (1 - t) ** 3

        def b(self, t):
            return 1 - (1 - t) ** 3

        def da(self, t):
            return -3 * (1 - t) ** 2

        def db(self, t):
            return 3 * (1 - t) ** 2

    ip = Cubic()
    from convlab.targets import ring8

    x = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    target = ring8()
    v = target.velocity(0.4, x, ip)
    d = target.denoiser(0.4, x, ip)
    a, b, da, db = ip.a(0.4), ip.b(0.4), ip.da(0.4), ip.db(0.4)
    torch.testing.assert_close(v, (da / a) * x + (db - da * b / a) * d)
