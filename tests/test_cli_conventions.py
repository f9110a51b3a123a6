"""Command-line conventions: `--version`, `-h` as `--help`, flags without metavars, and a start-up that imports
nothing numerical for help and version (the speed follows from that; speed itself is not asserted here)."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from convlab import __version__
from convlab.cli import app

NAMES = [
    "sweep",
    "refine",
    "status",
    "collect",
    "report",
    "figures",
    "publish",
    "targets",
    "kinds",
    "schema",
    "migrate",
]


def test_version_and_short_help():
    runner = CliRunner()
    assert runner.invoke(app, ["--version"]).output.strip() == f"convlab {__version__}"
    assert runner.invoke(app, ["-h"]).output == runner.invoke(app, ["--help"]).output
    assert runner.invoke(app, ["sweep", "-h"]).output == runner.invoke(app, ["sweep", "--help"]).output


@pytest.mark.parametrize("name", NAMES)
def test_help_shows_no_metavar_on_flags(name):
    out = CliRunner().invoke(app, [name, "--help"]).output
    assert "<bool>" not in out and "BOOLEAN" not in out and "Usage:" in out


def test_help_and_version_import_nothing_numerical():  # (typer itself imports pydantic for a command's help)
    probe = (
        "import sys\nfrom typer.testing import CliRunner\nfrom convlab.cli import app\n"
        f"for args in [['--version'], ['-h'], *[[n, '--help'] for n in {NAMES!r}]]:\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0, args\n"
        "print(sorted(m for m in ('torch', 'numpy', 'pandas', 'scipy', 'ot', 'convlab.api') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_import_convlab_is_lazy():
    probe = "import sys, convlab\nassert 'torch' not in sys.modules\nconvlab.integrate\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"
