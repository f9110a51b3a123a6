"""The package's layers, lowest first, and its import graph read from the source (every import: at module level,
inside functions and under TYPE_CHECKING alike). A module may import its own layer and the layers below it, never
one above; and the graph has no cycle, so no import has to hide inside a function to break one. Imports inside
functions remain only where start-up time asks for them (the CLI, the API's study commands, matplotlib), and they
point down like the rest. tests/test_architecture.py holds the package to this; the docs' architecture page is
drawn from it.
"""

from __future__ import annotations

import ast
from pathlib import Path

# (layer, its modules or packages, what it is): the numerical core first, then what turns configs into runs,
# studies into plans and stores, and people's commands into studies.
LAYERS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("base", ("registry", "device", "files", "record", "layers"), "registries, devices, atomic files, run records"),
    ("interpolants", ("interpolants",), "X_t = a(t) Z + b(t) X1 and its coefficients"),
    ("targets", ("targets",), "exact targets: mixtures and manifolds with their velocity, score and denoiser"),
    ("fields and solvers", ("fields", "solvers"), "velocity fields (exact, network, perturbed) and ODE solvers"),
    ("metrics", ("metrics",), "coupled errors, W2 and its noise floor, fitted rates"),
    ("models", ("models",), "networks and their training"),
    ("theory", ("theory",), "the seed papers' formulas: bounds, perturbations, JKO"),
    ("pipeline", ("pipeline",), "the characteristic generator: teacher, characteristics, student, error budget"),
    ("evaluate", ("evaluate",), "any model (velocity or one-step) measured against the exact truth"),
    ("runs", ("runs",), "run kinds: validated configs translated into core calls, metrics declared"),
    ("study", ("study", "plotting"), "plans, stores, execution, reports and figures of studies"),
    ("api", ("api", "demo"), "the Python entry points"),
    ("cli", ("cli", "__main__", ""), "the command line and the package's lazy top level"),
)


def layer_of(module: str) -> int:
    """The index in LAYERS of a module ('convlab.x.y'), by its first component under convlab."""
    parts = module.split(".")
    head = parts[1] if len(parts) > 1 else ""
    for i, (_, members, _) in enumerate(LAYERS):
        if head in members:
            return i
    raise KeyError(f"{module}: in no layer of convlab.layers.LAYERS")


def modules(root: Path | None = None) -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    root = root or Path(__file__).parent
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = ("convlab", *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph(root: Path | None = None) -> dict[str, set[str]]:
    """module -> the convlab modules it imports, anywhere in its source (a name imported from a package counts as
    its submodule when it is one, else as the package)."""
    mods = modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name.split(".")[0] == "convlab")
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if source.split(".")[0] != "convlab":
                    continue
                for alias in node.names:
                    edges.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in mods else source)
        graph[name] = {m for m in edges if m != name}
    return graph


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) pairs where a module imports a layer above its own."""
    return sorted((a, b) for a, bs in graph.items() for b in bs if layer_of(b) > layer_of(a))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The graph's strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def layer_edges(graph: dict[str, set[str]]) -> dict[tuple[int, int], int]:
    """(importing layer, imported layer) -> how many module imports go that way (within a layer included)."""
    out: dict[tuple[int, int], int] = {}
    for a, bs in graph.items():
        for b in bs:
            key = (layer_of(a), layer_of(b))
            out[key] = out.get(key, 0) + 1
    return out
