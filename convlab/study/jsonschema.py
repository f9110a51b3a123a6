"""The JSON Schema of a study file (`convlab schema`), built from the same declarations that validate it: the
pydantic model of the study file, each run kind's config model, and the target registry's signatures.

pydantic's schema of StudySpec types `base` as a free mapping, because which keys it holds depends on the run
kind. Here `base` (of the study and of each block) is any one run kind's config with nothing required (a block's
base is merged over the study's, so each holds part of a config), `target` is any registered target with its
parameters, and grid and zip keys are the dotted keys some run kind has. Editors that read the schema (the
`# yaml-language-server: $schema=...` line of the shipped studies) then complete and check those keys; convlab's
own validation stays the one that runs, with messages that name the file and the dotted path.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

from pydantic import BaseModel, TypeAdapter

from convlab.registry import parameters


def study_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a study file."""
    from convlab.runs import RUN_KINDS
    from convlab.study.schema import StudySpec

    schema = StudySpec.model_json_schema()
    defs = schema.setdefault("$defs", {})
    defs["Target"] = _target_schema()
    for name, kind in RUN_KINDS.items():
        sub = kind.config.model_json_schema(ref_template="#/$defs/{model}")
        for def_name, def_schema in sub.pop("$defs", {}).items():
            if defs.setdefault(def_name, def_schema) != def_schema:
                raise ValueError(f"two config models named {def_name} with different schemas (run kind {name})")
        defs[f"{name}_config"] = _partial(sub)
    base = {
        "description": "a run config: `kind` (a run kind, `convlab kinds`) and its keys; a block's base is merged "
        "over the study's, so neither needs every key",
        "anyOf": [{"$ref": f"#/$defs/{name}_config"} for name in RUN_KINDS],
    }
    keys = sorted(_dotted_keys(RUN_KINDS))
    grid = {
        "type": "object",
        "description": "dotted config keys (`teacher.n`, `target.d`) to lists of values, crossed",
        "propertyNames": {"enum": keys},
        "additionalProperties": {"type": "array", "minItems": 1},
    }
    for owner in (schema, defs["Block"]):
        props = owner["properties"]
        props["base"] = base
        props["grid"] = grid
        props["zip"] = {"type": "array", "items": grid, "description": "lists that vary together (equal lengths)"}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def _partial(schema: dict[str, Any]) -> dict[str, Any]:
    """A config model's schema with nothing required, and its `target` any registered target."""
    schema = {k: v for k, v in schema.items() if k != "required"}
    schema["properties"] = dict(schema["properties"])
    schema["properties"]["target"] = {"$ref": "#/$defs/Target"}
    return schema


def _target_schema() -> dict[str, Any]:
    from convlab.targets import TARGETS

    return {
        "description": "a registered target (`convlab targets`): its name and parameters",
        "oneOf": [_one_target(name, make) for name, make in TARGETS.items()],
    }


def _one_target(name: str, make: Any) -> dict[str, Any]:
    props: dict[str, Any] = {"name": {"const": name}}
    for p in parameters(make):
        prop = TypeAdapter(p.annotation).json_schema() if p.annotation is not inspect.Parameter.empty else {}
        if p.default is not inspect.Parameter.empty:
            prop["default"] = p.default
        props[p.name] = prop
    doc = (make.__doc__ or "").strip().splitlines()
    return {
        "type": "object",
        "title": name,
        "description": doc[0] if doc else name,
        "properties": props,
        "required": ["name"],
        "additionalProperties": False,
    }


def _dotted_keys(kinds: dict[str, Any]) -> set[str]:
    """Every dotted key a grid may set: each config field and its nested fields, and `target.<parameter>`."""
    from convlab.targets import TARGETS

    keys: set[str] = set()

    def walk(model: type[BaseModel], prefix: str) -> None:
        for field, info in model.model_fields.items():
            keys.add(prefix + field)
            for a in (info.annotation, *typing.get_args(info.annotation)):
                if isinstance(a, type) and issubclass(a, BaseModel):
                    walk(a, f"{prefix}{field}.")

    for kind in kinds.values():
        walk(kind.config, "")
    for make in TARGETS.values():
        keys |= {"target.name", *(f"target.{p.name}" for p in parameters(make))}
    return keys
