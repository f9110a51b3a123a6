"""The reference of a run kind, from its declaration: config keys with their types, defaults and descriptions,
and the metrics it writes (`convlab kinds`)."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from convlab.runs.kind import RunKind


def config_keys(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, Any, str]]:
    """(dotted key, type, default, description) of every leaf field of a config model, nested models expanded."""
    rows = []
    for name, info in model.model_fields.items():
        nested = _nested_model(info)
        if nested is not None:
            rows += config_keys(nested, f"{prefix}{name}.")
        else:
            rows.append(
                (
                    f"{prefix}{name}",
                    type_name(info.annotation),
                    "required" if info.is_required() else info.default,
                    info.description or "",
                )
            )
    return rows


def _nested_model(info: FieldInfo) -> type[BaseModel] | None:
    candidates = [
        a
        for a in (info.annotation, *typing.get_args(info.annotation))
        if isinstance(a, type) and issubclass(a, BaseModel)
    ]
    return candidates[0] if candidates else None


def type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    if origin is typing.Annotated:
        return type_name(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(annotation))
    if origin is not None:  # list[...], dict[...]: the arguments named the same way
        name = getattr(origin, "__name__", str(origin).replace("typing.", ""))
        return f"{name}[{', '.join(type_name(a) for a in typing.get_args(annotation))}]"
    if annotation is typing.Any:
        return "Any"
    return getattr(annotation, "__name__", str(annotation)).replace("NoneType", "null")


def describe_kind(kind: RunKind) -> str:
    """Plain-text reference of one run kind."""
    lines = [
        f"{kind.name}: {kind.doc.splitlines()[0] if kind.doc else ''}",
        "  keys (YAML, and columns of the results table):",
    ]
    for key, typ, default, doc in config_keys(kind.config):
        if key == "kind":
            continue
        shown = default if isinstance(default, str) and default == "required" else repr(default)
        lines.append(f"    {key:<34} {typ:<28} {shown:<12} {doc}".rstrip())
    lines.append("  metrics (columns):")
    for m in kind.metrics:
        flags = ", ".join(
            x
            for x in (
                m.estimate,
                "squared" if m.squared else "",
                f"unit {m.unit}" if m.unit else "",
                f"when {m.when}" if m.when else "",
            )
            if x
        )
        lines.append(f"    {m.name:<34} {m.doc} [{flags}]")
    if kind.artefacts:
        shared = "; ".join(
            f"{a.name} ({'on disk' if a.on_disk else 'per process'}) by {', '.join(a.depends_on)}"
            for a in kind.artefacts
        )
        lines.append(f"  shared between runs: {shared}")
    return "\n".join(lines) + "\n"
