import pytest

from convlab.registry import build, did_you_mean


def make(x=1, *, y=2):
    return (x, y)


REG = {"make": make}


def test_build_from_name_and_mapping():
    assert build(REG, "make", kind="thing") == (1, 2)
    assert build(REG, {"name": "make", "y": 5}, kind="thing") == (1, 5)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"unknown thing 'mkae' \(did you mean 'make'\?\); known: make"):
        build(REG, "mkae", kind="thing")
    with pytest.raises(ValueError, match="needs a 'name'"):
        build(REG, {"y": 1}, kind="thing")
    with pytest.raises(TypeError):
        build(REG, {"name": "make", "z": 1}, kind="thing")
    assert did_you_mean("zzz", ["make"]) == ""
    # a name that grew a qualifier is found by its part
    assert did_you_mean("cube", ["cube_atoms", "uniform_cube"]) == " (did you mean 'cube_atoms'?)"
