"""YAML in, safely: PyYAML's safe loader with YAML 1.2 floats (1e-3 is a number, not the string '1e-3'), and limits
that make a hostile file cost nothing.

A study file is small (the largest shipped one is ~5 KB), so a file over MAX_BYTES is refused unread. Aliases are
where YAML hides its size: nine nested anchors of ten aliases each ("billion laughs") are 300 bytes that expand to
10^9 nodes. The document is therefore composed first -- a graph in which an alias is the anchored node itself, as
small as the text -- and its size *as expanded* is counted on that graph (each node once, memoised) before a
single Python object is built: more than MAX_NODES nodes, or nesting deeper than MAX_DEPTH, is refused in
microseconds and bounded memory.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES = 1 << 20  # a study file, or a --set value
MAX_NODES = 200_000  # scalars, lists and mappings after every alias is expanded
MAX_DEPTH = 64  # nesting of lists and mappings


class YAMLLimit(ValueError):
    """A YAML text larger, more nested, or expanding to more nodes than a study can be."""


class _Loader(yaml.SafeLoader):
    pass


_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:float"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def _no_duplicates(loader: _Loader, node: MappingNode, deep: bool = False) -> dict:
    """A mapping whose keys are distinct: YAML forbids repeats, and PyYAML would silently keep the last one (a
    study with two `grid:` keys would run half of what it says)."""
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (YAML keys must differ)", key_node.start_mark
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_Loader.construct_mapping = _no_duplicates  # type: ignore[method-assign]


def describe_error(err: yaml.YAMLError) -> str:
    """A YAML error in one line: where (line, column) and what."""
    mark = getattr(err, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    what = " ".join(str(p) for p in (getattr(err, "context", None), getattr(err, "problem", None)) if p)
    return where + (what or str(err).splitlines()[0])


def expanded_size(root: Node) -> int:
    """The number of nodes of a composed document once its aliases are expanded, counted on the graph (each node
    visited once); YAMLLimit beyond MAX_NODES, nested deeper than MAX_DEPTH once expanded, or for an alias inside
    its own anchor."""
    sizes: dict[int, tuple[int, int]] = {}  # id -> (nodes, height) of the node's expanded subtree
    open_: set[int] = set()  # nodes whose subtrees are being counted: an alias to one of them is a cycle
    # An iterative post-order walk: recursion would itself fail on deep nesting.
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children = _children(node)
        if not children_done:
            open_.add(key)
            stack.append((node, True))
            for child in children:
                if id(child) in open_:
                    raise YAMLLimit("an alias refers to the anchor it is inside of (a recursive structure)")
                if id(child) not in sizes:
                    stack.append((child, False))
            continue
        open_.discard(key)
        parts = [sizes[id(c)] for c in children]
        size = 1 + sum(n for n, _ in parts)
        height = 1 + max((h for _, h in parts), default=0)
        if height > MAX_DEPTH:
            raise YAMLLimit(f"nested more than {MAX_DEPTH} levels deep (a study is a few levels)")
        if size > MAX_NODES:
            raise YAMLLimit(
                f"expands to more than {MAX_NODES} values once its aliases (*name) are expanded; a study is a few "
                "hundred (aliases that repeat aliases multiply: 'billion laughs')"
            )
        sizes[key] = (size, height)
    return sizes[id(root)][0]


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    assert isinstance(node, ScalarNode)
    return []


def load_yaml_text(text: str) -> Any:
    """The document of a YAML text, within the limits above (YAMLLimit otherwise, yaml.YAMLError for bad syntax)."""
    if len(text) > MAX_BYTES:
        raise YAMLLimit(f"{len(text)} characters, more than a study can be ({MAX_BYTES}); nothing was parsed")
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise YAMLLimit(f"nested more than {MAX_DEPTH} levels deep (a study is a few levels)") from None
        if node is None:
            return None
        expanded_size(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_yaml(path: str | Path) -> Any:
    """load_yaml_text of a file, refused unread when it is larger than MAX_BYTES."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise YAMLLimit(f"{size} bytes, more than a study file can be ({MAX_BYTES}); nothing was read")
    return load_yaml_text(path.read_text())
