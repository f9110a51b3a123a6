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
    # an example is there to show a result: one that ends without a verdict teaches nothing
    assert "insufficient data" not in proc.stdout, proc.stdout[-2000:]


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


# The repository stands alone: its sources are cited by arXiv id and its formulas by docs/concepts/theory.md, never
# by a file or a paper number a reader of the repository does not have.
OUTSIDE = re.compile(r"(?-i:THEORY\.md)|\bseeds?/|\bseed 0\d\d\b|\.\./shared", re.IGNORECASE)


def test_nothing_cites_what_the_repository_does_not_have():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    texts = [REPO / f for f in tracked if f.endswith((".py", ".md", ".yaml", ".yml", ".json", ".toml", ".txt"))]
    cited = [
        f"{p.relative_to(REPO)}:{i}"
        for p in texts
        if p.exists()
        for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert cited == [], f"cites a file or paper number outside the repository: {cited[:10]}"


def test_the_theory_page_names_every_source_by_arxiv_id():
    page = (REPO / "docs" / "concepts" / "theory.md").read_text()
    for arxiv in ("2405.05512", "2404.00551", "2311.11475", "2510.17608", "2310.17582"):
        assert f"arxiv.org/abs/{arxiv}" in page


def test_every_top_level_name_has_a_docstring_and_a_reference_entry():
    """What the README and guides use from `convlab` is documented: a docstring each, and the API reference's
    `convlab` page names each where it is defined (integrate the function, not its module)."""
    import convlab

    undocumented = [
        n for n in convlab.__all__ if callable(getattr(convlab, n)) and not (getattr(convlab, n).__doc__ or "").strip()
    ]
    assert undocumented == []
    generator = (REPO / "docs" / "gen_pages.py").read_text()
    assert 'body = top_level_names() if module == "convlab"' in generator  # the page lists convlab.__all__
    import importlib

    for name in convlab.__all__:  # each where it is defined, as the page names it
        obj = getattr(convlab, name)
        if hasattr(obj, "__qualname__"):
            assert getattr(importlib.import_module(obj.__module__), obj.__qualname__) is obj, name
    assert convlab.integrate.__module__ == "convlab.solvers.integrate" and callable(convlab.integrate)
