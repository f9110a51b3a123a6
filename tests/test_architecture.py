"""The package's layers (convlab.layers): no module imports a layer above its own, and the import graph -- every
import, inside functions and under TYPE_CHECKING too -- has no cycle."""

from convlab.layers import LAYERS, cycles, import_graph, layer_of, upward_imports


def test_every_module_has_a_layer():
    for module in import_graph():
        layer_of(module)  # raises KeyError naming a module no layer holds


def test_no_module_imports_a_higher_layer():
    assert upward_imports(import_graph()) == []


def test_the_import_graph_has_no_cycle():
    assert cycles(import_graph()) == []


def test_the_checks_see_what_they_look_for():
    """On a planted graph: an upward import and a three-module cycle are found (so an empty answer means none)."""
    low, high = f"convlab.{LAYERS[0][1][0]}", f"convlab.{LAYERS[-2][1][0]}"
    graph = {low: {high}, high: set(), "convlab.runs.a": {"convlab.runs.b"}, "convlab.runs.b": {"convlab.runs.c"}}
    graph["convlab.runs.c"] = {"convlab.runs.a"}
    assert upward_imports(graph) == [(low, high)]
    assert cycles(graph) == [["convlab.runs.a", "convlab.runs.b", "convlab.runs.c"]]


def test_the_core_does_not_know_study_configs():
    """The numerical core (up to the pipeline) imports neither pydantic configs nor the run layer: it is called
    with plain arguments and its own dataclasses (convlab.runs.config translates)."""
    core = {i for i, (name, _, _) in enumerate(LAYERS) if name != "runs" and i < layer_of("convlab.runs")}
    graph = import_graph()
    offenders = [(a, b) for a, bs in graph.items() for b in bs if layer_of(a) in core and b.startswith("convlab.runs")]
    assert offenders == []
