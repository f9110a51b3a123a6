"""Generates the site's reference pages, study pages and performance page at build time (mkdocs-gen-files).

Nothing here is written by hand into the docs tree: every table comes from a declaration in the code (the pydantic
models of the study file and the run kinds, the target registry's signatures, the solvers' declared orders, the
typer app), from a study's published results (docs/studies/<name>/, written by `convlab publish`), or from the
benchmark commands' recorded output (benchmarks/results/*.txt, written by `make bench`).
"""

from __future__ import annotations

import importlib.metadata
import inspect
import json
from collections import Counter
from pathlib import Path

import click
import mkdocs_gen_files
import typer.main
from pydantic import BaseModel
from typer.cli import get_docs_for_click

from convlab.cli import app
from convlab.interpolants import INTERPOLANTS
from convlab.registry import parameters
from convlab.runs import RUN_KINDS
from convlab.runs.describe import config_keys, type_name
from convlab.solvers import GRIDS, SOLVERS
from convlab.study import schema as study_schema
from convlab.study.report import render_text
from convlab.targets import TARGETS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def cell(value) -> str:
    """A markdown table cell: pipes escaped, newlines flattened."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def prose(value) -> str:
    """Text from a docstring or a declaration, where `f[v](z)` is mathematics, not a markdown link."""
    out = str(value)
    for c in "[]{}":  # `{...}` would be read as an attribute list
        out = out.replace(c, "\\" + c)
    return out.replace("<", "&lt;")


def code(value) -> str:
    return f"`{value}`" if value not in ("", None) else ""


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write(path: str, text: str) -> None:
    with mkdocs_gen_files.open(path, "w") as f:
        f.write(text)


def doc_of(obj) -> str:
    return inspect.cleandoc(obj.__doc__ or "")


# --- the study file ---------------------------------------------------------------------------------------------


def model_section(model, title: str) -> str:
    rows = []
    for name, info in model.model_fields.items():
        value = None if info.is_required() else info.get_default(call_default_factory=True)
        default = (
            "required" if info.is_required() else "see below" if isinstance(value, BaseModel) else code(repr(value))
        )
        rows.append([code(name), code(type_name(info.annotation)), default, prose(info.description or "")])
    return f"## {title}\n\n{doc_of(model)}\n\n" + table(["key", "type", "default", "description"], rows)


def study_file_page() -> str:
    parts = [
        "# Study file\n",
        "Generated from the pydantic models in `convlab/study/schema.py`, which validate every study before anything "
        "runs. Run configs (`base`, and the dotted keys of `grid` and `zip`) are per run kind: see "
        "[Run kinds](run-kinds.md). The same declarations give the JSON Schema that editors use "
        "([`study.schema.json`](../schema/study.schema.json), printed by `convlab schema`); every shipped study "
        "starts with `# yaml-language-server: $schema=../docs/schema/study.schema.json`.\n",
        model_section(study_schema.StudySpec, "Top level"),
        model_section(study_schema.Block, "blocks[]"),
        model_section(study_schema.RateSpec, "rates[]"),
        model_section(study_schema.CheckSpec, "checks[]"),
        model_section(study_schema.Extension, "extend[]"),
        model_section(study_schema.Resources, "resources"),
    ]
    return "\n".join(parts)


# --- run kinds --------------------------------------------------------------------------------------------------


def run_kinds_page() -> str:
    parts = [
        "# Run kinds\n",
        "Generated from each run kind's declaration (`convlab/runs/`): its config model (keys, types, defaults, "
        "descriptions) and the metrics it writes. The same list is printed by `convlab kinds [NAME]`. Config keys are "
        "dotted paths: YAML keys in a study's `base`, `grid` and `zip`, and columns of `results.parquet`.\n",
    ]
    for name, kind in RUN_KINDS.items():
        keys = [
            [code(k), code(t), "required" if d == "required" else code(repr(d)), prose(doc)]
            for k, t, d, doc in config_keys(kind.config)
            if k != "kind"
        ]
        metrics = [
            [code(m.name), prose(m.doc), m.estimate, m.unit or "", "yes" if m.squared else "", m.when or ""]
            for m in kind.metrics
        ]
        extras = []
        if kind.batch is not None:
            extras.append("runs with equal batch keys can train as one batch (`resources.batch`)")
        if kind.artefacts:
            shared = ", ".join(f"`{a.name}`" + (" (on disk)" if a.on_disk else "") for a in kind.artefacts)
            extras.append(f"shared artefacts: {shared}")
        parts.append(
            f"## `{name}`\n\n{prose(kind.doc)}\n\n"
            + ("".join(f"- {e}\n" for e in extras) + "\n" if extras else "")
            + "### Keys\n\n"
            + table(["key", "type", "default", "description"], keys)
            + "\n### Metrics\n\n"
            + table(["metric", "what", "estimate", "unit", "squared", "when"], metrics)
        )
    return "\n".join(parts)


# --- targets ----------------------------------------------------------------------------------------------------


def targets_page() -> str:
    parts = [
        "# Targets\n",
        "Generated from the target registry (`convlab.targets.TARGETS`): each entry's parameters with their types "
        "and defaults (the constructor's signature, the only place defaults live) and its docstring. A study names "
        "one as `target: {name: ..., <parameter>: ...}`; `convlab targets` prints the same list.\n",
    ]
    for name, make in TARGETS.items():
        rows = [
            [
                code(p.name),
                code(type_name(p.annotation)) if p.annotation is not inspect.Parameter.empty else "",
                "required" if p.default is inspect.Parameter.empty else code(repr(p.default)),
            ]
            for p in parameters(make)
        ]
        parts.append(f"## `{name}`\n\n{prose(doc_of(make))}\n\n" + table(["parameter", "type", "default"], rows))
    return "\n".join(parts)


# --- interpolants, solvers, grids -------------------------------------------------------------------------------


def solvers_page() -> str:
    solver_rows = [[code(n), s.order, s.stages, prose(doc_of(s).split("\n\n")[0])] for n, s in SOLVERS.items()]
    interp_rows = [[code(n), prose(doc_of(cls).split("\n\n")[0])] for n, cls in INTERPOLANTS.items()]
    grid_rows = [[code(n), prose(doc_of(f).split("\n\n")[0])] for n, f in GRIDS.items()]
    return (
        "# Interpolants and solvers\n\n"
        "Generated from the registries `convlab.interpolants.INTERPOLANTS`, `convlab.solvers.SOLVERS` and "
        "`convlab.solvers.GRIDS`. Every declared order is measured by a property-based test "
        "(`tests/solvers/test_order.py`).\n\n"
        "## Interpolants: X_t = a(t) Z + b(t) X1\n\n"
        + table(["name", "schedule"], interp_rows)
        + "\n## Solvers\n\n"
        + table(["name", "declared order", "stages (NFE per step)", "update"], solver_rows)
        + "\n"
        + "\n".join(f"### `{n}`\n\n{prose(doc_of(s))}\n" for n, s in SOLVERS.items())
        + "\n## Time grids\n\n"
        + table(["name", "grid"], grid_rows)
    )


# --- the command line and the Python API ------------------------------------------------------------------------


def cli_page() -> str:
    command = typer.main.get_command(app)
    text = get_docs_for_click(
        obj=command, ctx=click.Context(command, info_name="convlab"), name="convlab", title="Command line"
    )
    note = (
        "Generated from the typer app (`convlab/cli.py`). Exit status: 0 success, 1 some runs (or the "
        "post-processing) failed, 2 invalid input (nothing runs, nothing is written).\n\n"
    )
    head, _, rest = text.partition("\n\n")
    return f"{head}\n\n{note}{rest}"


API_MODULES = {
    "convlab": "The top-level names: targets, fields, interpolants, solvers, metrics and studies.",
    "convlab.api": "Studies from Python: open, run, report, draw.",
    "convlab.targets": "Analytic targets with exact fields.",
    "convlab.interpolants": "Interpolant schedules a(t), b(t).",
    "convlab.fields": "Velocity fields: exact, or any function of (t, x).",
    "convlab.solvers": "Fixed-grid solvers, the integration loop, the reference solve.",
    "convlab.metrics": "W2, coupled errors, noise floors, rate fits.",
    "convlab.pipeline": "The characteristic generator's stages: teacher, characteristics, student, measurement.",
    "convlab.models": "Networks and their training, with the dataclasses that describe them (Net, Optim, Block).",
    "convlab.evaluate": "Bring your own model: any velocity model or one-step generator against the exact truth.",
    "convlab.runs": "Run kinds: the declaration (RunKind, Metric, Artefact) and the shipped kinds.",
    "convlab.plotting": "Figures: the standard figure of a rate, rate and local-slope panels, fits by what they fit.",
    "convlab.theory.pf_ode": "arXiv 2510.17608: the OU probability-flow ODE and the log-concavity of its marginals.",
    "convlab.theory.regularity": "arXiv 2311.11475: Lipschitz profiles, early stopping and stability of flows.",
    "convlab.theory.jko": "arXiv 2310.17582: the JKO scheme's Gaussian closed form and the neural JKO flow.",
    "convlab.theory.perturbation": "Known, seeded perturbation fields (injected score and velocity errors).",
}


def top_level_names() -> str:
    """The `convlab` page: each top-level name documented where it is defined (the package imports them on first
    use, which a static reader of the package cannot see; and `integrate` the function, not its module)."""
    import convlab

    out = []
    for name in convlab.__all__:
        obj = getattr(convlab, name)
        if hasattr(obj, "__qualname__") and hasattr(obj, "__module__"):
            out.append(f"::: {obj.__module__}.{obj.__qualname__}\n    options:\n      show_root_heading: true\n")
        else:  # a registry
            kinds = sorted(obj) if isinstance(obj, dict) else []
            out.append(f"## `{name}`\n\nThe registry `{convlab._HOME[name]}.{name}`: {', '.join(map(code, kinds))}.\n")
    return "\n".join(out)


def _without_top_level(module: str) -> str:
    """mkdocstrings options that leave out of a module's page the names the `convlab` page documents (one
    anchor per object)."""
    import convlab

    here = [n for n in convlab.__all__ if getattr(getattr(convlab, n), "__module__", None) == module]
    if not here:
        return ""
    filters = ", ".join(['"!^_"', *(f'"!^{n}$"' for n in here)])  # the site's own filter, then these names
    return f"    options:\n      filters: [{filters}]\n"


def api_pages() -> list[tuple[str, str]]:
    nav = []
    for module, summary in API_MODULES.items():
        path = f"reference/python/{module}.md"
        body = top_level_names() if module == "convlab" else f"::: {module}\n{_without_top_level(module)}"
        write(path, f"# `{module}`\n\n{summary}\n\n{body}")
        nav.append((module, path))
    write(
        "reference/python/index.md",
        "# Python API\n\nGenerated by mkdocstrings from the docstrings.\n\n"
        + "".join(f"- [`{m}`]({m}.md): {API_MODULES[m]}\n" for m, _ in nav),
    )
    return nav


# --- study pages ------------------------------------------------------------------------------------------------


def fmt(v, digits: int = 3) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:+.{digits}f}" if abs(v) >= 10 ** (-digits) or v == 0 else f"{v:+.1e}"
    return str(v)


def group_text(group: dict) -> str:
    return ", ".join(f"{k} = {v}" for k, v in group.items()) or "all runs"


def rate_section(rate: dict) -> str:
    lines = [f"### {rate['title']}\n", f"`{rate['y']}` against `{rate['x']}`, test: `{rate['test']}`"]
    if rate.get("where"):
        lines[-1] += f"; runs with {group_text(rate['where'])}"
    if rate.get("resolved"):
        lines[-1] += f"; points fitted only where `{rate['resolved']}`"
    lines[-1] += ".\n"
    rows = []
    for g in rate.get("groups", []):
        ci = f"[{fmt(g.get('ci_low'))}, {fmt(g.get('ci_high'))}]" if g.get("ci_low") is not None else ""
        expected = "" if g.get("expected") is None else f"{g['expected']:+.3f} ± {g.get('tol')}"
        verdict = g.get("verdict") or ""
        if g.get("median_path"):
            mp = g["median_path"]
            verdict += f"; median path {fmt(mp.get('slope'))}: {mp.get('verdict')}"
        if verdict == "inconclusive" or str(verdict).startswith("too few seeds"):
            verdict += f" (about {g.get('seeds_needed') or '?'} seeds needed)"
        points = f"{g.get('n_points')} ({g.get('n_dropped', 0)} dropped), {g.get('n_seeds')} seeds"
        if g.get("n_failed"):
            points += f", {g['n_failed']} runs failed"
        rows.append([group_text(g.get("group", {})), fmt(g.get("slope")), ci, expected, verdict, points])
    if rows and rate["test"] != "equivalence":
        lines.append(table(["group", "slope", "95% CI", "expected", "verdict", "points"], rows))
    for eq in rate.get("equivalence", []):
        eq_rows = [
            [
                f"{rate['compare']} = {lv['level']} vs {lv['reference']}",
                fmt(lv.get("slope")),
                f"[{fmt(lv.get('ci_low'))}, {fmt(lv.get('ci_high'))}]" if lv.get("ci_low") is not None else "",
                f"± {lv.get('delta')}",
                lv.get("one_sided") or "",
                lv.get("verdict") or "",
                f"{lv.get('n_seeds')} (needs {lv.get('seeds_needed_one_sided') or '?'} / "
                f"{lv.get('seeds_needed') or '?'})",
            ]
            for lv in eq.get("levels", [])
        ]
        lines.append(f"\n{group_text(eq.get('group', {}))}: slope of the paired log-ratio in `{rate['x']}`\n")
        lines.append(
            table(
                ["levels", "slope", "95% CI", "margin", "no slower (one-sided)", "equivalent (two-sided)", "seeds"],
                eq_rows,
            )
        )
    for t in rate.get("trends", []):
        t_rows = [
            [f"{t['column']} = {lv}", fmt(sl["slope"]), f"[{fmt(sl['ci_low'])}, {fmt(sl['ci_high'])}]", sl["n_seeds"]]
            for lv, sl in zip(t["levels"], t["slopes"])
        ]
        diffs = "; ".join(
            f"{d['level_a']} − {d['level_b']}: {fmt(d['diff'])} [{fmt(d['ci_low'])}, {fmt(d['ci_high'])}]"
            for d in t["differences"]
        )
        lines.append(f"\nTrend of the slope across `{t['column']}` ({group_text(t['group'])}): **{t['verdict']}**\n")
        lines.append(table(["level", "slope", "95% CI", "seeds"], t_rows))
        if diffs:
            lines.append(f"\nDifferences of consecutive levels (Welch, Bonferroni): {diffs}\n")
    if rate["test"] == "equivalence" and rows:
        lines.append(f"\nThe rate of each group, all levels of `{rate['compare']}` pooled:\n")
        lines.append(table(["group", "slope", "95% CI", "expected", "verdict", "points"], rows))
    return "\n".join(lines) + "\n"


def study_page(name: str, folder: Path) -> tuple[str, dict]:
    report = json.loads((folder / "report.json").read_text())
    study = json.loads((folder / "study.json").read_text())["study"]
    meta = json.loads((folder / "published.json").read_text())
    findings = folder / "findings.md"
    parts = [f"# {name}\n", f"{study.get('description', '')}\n"]
    parts.append(
        f"**{report['n_runs']} runs** ({report['n_failed']} failed), run by convlab "
        f"{', '.join(f'`{c[:10]}`' for c in meta['commits']) or '(commit not recorded)'} on "
        f"{', '.join(meta['devices'])}; published {meta['published'][:10]} with `convlab publish`. "
        f"Reproduce: `convlab sweep studies/{name}.yaml`.\n"
    )
    if findings.exists():
        parts.append("## Findings\n\n" + findings.read_text().strip() + "\n")
    for png in sorted((folder / "figures").glob("*.png")):
        parts.append(f"![{png.stem}]({name}/figures/{png.name})\n")
    if report["rates"]:
        parts.append("## Rates\n")
        parts += [rate_section(r) for r in report["rates"]]
    if report["checks"]:
        rows = [
            [c["name"], code(c["column"]), f"{c['n_true']} / {c['n_runs']}", c.get("verdict")] for c in report["checks"]
        ]
        parts.append("## Checks\n\n" + table(["check", "column", "runs where it holds", "verdict"], rows))
    parts.append('## The report\n\n??? note "report.md (as `convlab report` prints it)"\n\n')
    parts.append("\n".join("    " + line for line in ("```text\n" + render_text(report) + "\n```").splitlines()))
    source = ROOT / "studies" / f"{name}.yaml"
    if source.exists():
        body = "\n".join("    " + line for line in source.read_text().splitlines())
        parts.append(f'\n\n??? note "studies/{name}.yaml"\n\n    ```yaml\n{body}\n    ```\n')
    verdicts = Counter()
    for r in report["rates"]:
        if r["test"] != "equivalence":  # an equivalence rate's verdicts are those of its levels, below
            verdicts.update(g.get("verdict") or "no verdict" for g in r.get("groups", []))
        for eq in r.get("equivalence", []):
            verdicts.update(lv.get("verdict") or "no verdict" for lv in eq.get("levels", []))
    verdicts.update(f"check {c.get('verdict')}" for c in report["checks"])
    return "\n".join(parts), {"runs": report["n_runs"], "verdicts": verdicts, "description": study.get("description")}


def study_pages() -> list[tuple[str, str]]:
    nav, rows = [], []
    shipped = sorted(p.stem for p in (ROOT / "studies").glob("*.yaml"))
    for name in shipped:
        folder = DOCS / "studies" / name
        if not (folder / "report.json").exists():
            rows.append([name, "", "not published (no stored results in docs/studies)", ""])
            continue
        text, summary = study_page(name, folder)
        write(f"studies/{name}.md", text)
        nav.append((name, f"studies/{name}.md"))
        verdicts = ", ".join(f"{v} {k}" for k, v in summary["verdicts"].most_common())
        rows.append([f"[{name}]({name}.md)", summary["runs"], summary["description"] or "", verdicts])
    write(
        "studies/index.md",
        "# Studies\n\nOne page per shipped study, built from its published results (`docs/studies/<name>/`: the "
        "report.json, study.json and figures that `convlab publish results/<name>` copies there). The numbers are "
        "those of the stored report; the findings beside them say what was measured.\n\n"
        + table(["study", "runs", "what", "verdicts"], rows),
    )
    return nav


# --- performance ------------------------------------------------------------------------------------------------


def performance_page() -> str:
    intro = (ROOT / "benchmarks" / "README.md").read_text().strip()
    parts = [intro, "\n## Recorded output\n"]
    outputs = sorted((ROOT / "benchmarks" / "results").glob("*.txt"))
    for txt in outputs:
        parts.append(f"### `{txt.stem}`\n\n```text\n{txt.read_text().rstrip()}\n```\n")
    if not outputs:
        parts.append("No recorded output: run `make bench`.\n")
    return "\n".join(parts)


NAV = """\
- [Home](index.md)
- [Getting started](getting-started.md)
- Concepts
    - [Exact targets](concepts/targets.md)
    - [Errors, W2 and noise floors](concepts/errors.md)
    - [Rates, intervals and verdicts](concepts/rates.md)
    - [The mathematics, with sources](concepts/theory.md)
    - [The characteristic generator](concepts/characteristic.md)
    - [The seed papers' checks](concepts/seed-papers.md)
    - [Vocabulary](concepts/vocabulary.md)
    - [What the store guarantees](concepts/reliability.md)
    - [Architecture](concepts/architecture.md)
- Guides
    - [Your own study, start to finish](guides/your-own-study.md)
    - [Measuring your own model](guides/your-own-model.md)
    - [Writing a study](guides/writing-a-study.md)
    - [Adding a target](guides/adding-a-target.md)
    - [Adding a run kind](guides/adding-a-run-kind.md)
    - [Running on SLURM](guides/slurm.md)
    - [Running on a GPU](guides/gpu.md)
- Reference
    - [Study file](reference/study-file.md)
    - [Run kinds](reference/run-kinds.md)
    - [Targets](reference/targets.md)
    - [Interpolants and solvers](reference/solvers.md)
    - [Command line](reference/cli.md)
    - [Python API](reference/python/index.md)
{api}
- [Studies](studies/index.md)
{studies}
- [Performance](performance.md)
"""


# MathJax renders the formulas (pymdownx.arithmatex) from the site itself: no request leaves it. Its single-file
# build with every TeX extension comes from PyPI's sphinx-mathjax-offline (the Makefile installs it without
# Sphinx); the site serves it as assets/mathjax/tex-svg-full.js, configured by docs/javascripts/mathjax.js.
MATHJAX = "tex-svg-full.js"


def architecture_page() -> str:
    """The layers of convlab.layers with their modules and the layers each imports, counted from the source."""
    from convlab import layers

    graph = layers.import_graph()
    edges = layers.layer_edges(graph)
    per_layer: dict[int, list[str]] = {}
    for module in graph:
        per_layer.setdefault(layers.layer_of(module), []).append(module)
    rows = []
    for i, (name, _, what) in enumerate(layers.LAYERS):
        below = [f"{layers.LAYERS[j][0]} ({n})" for (a, j), n in sorted(edges.items()) if a == i and j != i]
        rows.append([f"{i}. {name}", what, ", ".join(code(m) for m in sorted(per_layer.get(i, []))), ", ".join(below)])
    n_imports = sum(len(v) for v in graph.values())
    return (
        "# Architecture\n\n"
        + prose(layers.__doc__)
        + "\n\nThe layers, lowest first, with the layers each imports (how many module imports go there). "
        f"Generated from the source: {len(graph)} modules, {n_imports} imports between them, "
        f"{len(layers.upward_imports(graph))} upward, {len(layers.cycles(graph))} cycles.\n\n"
        + table(["layer", "what it is", "modules", "imports from (module imports)"], rows)
        + "\n\n## The core is called with plain values\n\n"
        "Everything up to the pipeline takes plain arguments or small frozen dataclasses of its own: "
        "`Net`, `Optim` (convlab.models), `Block` (convlab.models.residual), `Reference` (convlab.solvers), "
        "`PerturbationSpec` and `LipschitzSearch` (convlab.theory), `PipelineSpec` with `TeacherSpec`, "
        "`CharacteristicsSpec`, `StudentSpec` and `EvalSpec` (convlab.pipeline). A study's validated run config "
        "becomes them in one place, `convlab.runs.config.core`; the config blocks take their defaults from "
        "them, so each default is written once. Trained teachers are found, claimed and kept through the "
        "pipeline's own `ArtefactStore` protocol, which a sweep's run context satisfies; a run alone uses "
        "`Unshared`.\n"
    )


def mathjax_asset() -> None:
    found = [f for f in importlib.metadata.files("sphinx-mathjax-offline") or [] if f.name == MATHJAX]
    if not found:
        raise SystemExit(f"{MATHJAX} not found: `pip install --no-deps sphinx-mathjax-offline` (make setup does)")
    with mkdocs_gen_files.open(f"assets/mathjax/{MATHJAX}", "wb") as f:
        f.write(Path(found[0].locate()).read_bytes())


def main() -> None:
    mathjax_asset()
    write("reference/study-file.md", study_file_page())
    write("reference/run-kinds.md", run_kinds_page())
    write("reference/targets.md", targets_page())
    write("reference/solvers.md", solvers_page())
    write("reference/cli.md", cli_page())
    write("performance.md", performance_page())
    write("concepts/architecture.md", architecture_page())
    api = "\n".join(f"        - [{title}]({path})" for title, path in api_pages())
    studies = "\n".join(f"    - [{title}]({path})" for title, path in study_pages())
    write("SUMMARY.md", NAV.format(api=api, studies=studies))  # the site's navigation (mkdocs-literate-nav)


main()
