"""The docs' code is code: every Python block of the hand-written pages (and the README) runs, and every `convlab`
command line they show names a real command and real options. A block that must not run here (it runs a whole
study, say) is preceded by `<!-- skip: why -->`."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer.main

from convlab.cli import app

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted(
    p
    for p in [REPO / "README.md", *(REPO / "docs").rglob("*.md")]
    if "studies" not in p.relative_to(REPO).parts[1:2]  # published reports, not prose
)
FENCE = re.compile(r"(?:<!-- skip: (?P<skip>[^>]*?) -->\n)?```(?P<lang>\w*)[^\n]*\n(?P<body>.*?)\n```", re.S)


def blocks(page: Path, langs: tuple[str, ...]) -> list[tuple[str, str | None]]:
    return [(m["body"], m["skip"]) for m in FENCE.finditer(page.read_text()) if m["lang"] in langs]


PYTHON_PAGES = [p for p in PAGES if blocks(p, ("python",))]


def test_the_pages_with_code_are_found():
    names = {p.relative_to(REPO).as_posix() for p in PYTHON_PAGES}
    assert {"README.md", "docs/getting-started.md", "docs/guides/adding-a-run-kind.md"} <= names


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_python_blocks_run(page, tmp_path):
    """A page's blocks run in order in one fresh interpreter (later blocks may use earlier names), in a directory
    that has the repository's studies/ and figures/, so results stay out of the repository."""
    code = [body for body, skip in blocks(page, ("python",)) if skip is None]
    assert all(skip.strip() for _, skip in blocks(page, ("python",)) if skip is not None), "say why a block is skipped"
    for name in ("studies", "figures"):
        (tmp_path / name).symlink_to(REPO / name)
    script = tmp_path / "page.py"
    script.write_text("\n\n".join(code))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, script], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _commands() -> dict[str, click.Command]:
    group = typer.main.get_command(app)
    return group.commands


def command_lines() -> list[tuple[str, str]]:
    lines = []
    for page in PAGES:
        for body, _ in blocks(page, ("bash", "console", "")):
            for line in body.splitlines():
                line = line.strip().removeprefix("$ ")
                if line.startswith("convlab ") or line.startswith("python -m convlab "):
                    lines.append((page.relative_to(REPO).as_posix(), line.split(" #")[0].rstrip(" \\")))
    return lines


@pytest.mark.parametrize("where, line", command_lines())
def test_command_lines_name_real_commands_and_options(where, line):
    words = shlex.split(line.replace("[", "").replace("]", ""))
    words = words[2:] if words[0] == "python" else words
    commands = _commands()
    assert words[1] in commands, f"{where}: `{line}`: no command {words[1]!r}"
    options = {o for p in commands[words[1]].params for o in (*p.opts, *p.secondary_opts)}
    for w in words[2:]:
        if w.startswith("--"):
            assert w.split("=")[0] in options, f"{where}: `{line}`: {words[1]} has no option {w}"
