"""The JSON Schema of a study file (`convlab schema`), built from the same declarations that validate it: the
pydantic model of the study file, each run kind's config model, and the target registry's signatures.

pydantic's schema of StudySpec types `base` as a free mapping, because which keys it holds depends on the run
kind. Here `base` (of the study and of each block) is any one run kind's config with nothing required (a block's
base is merged over the study's, so each holds part of a config), `target` is any registered target with its
parameters, and grid and zip keys are the dotted keys some run kind has. Editors that read the schema (the
`# yaml-language-server: $schema=...` line of the shipped studies) then complete and check those keys; convlab's
own validation stays the one that runs, with messages that name the file and the dotted path.

Where JSON Schema can say it, the schema is as strict as the validator: names are enums of the registries
(solvers, interpolants, targets, run kinds), numbers carry their bounds, each grid key's values are checked
against that key's own schema, and `base` is dispatched on its `kind` (if/then), so that a misspelled key is
reported as that key, not as "valid under none of the schemas". What it cannot say: a target parameter without a
default is not required in `base`, because a grid or zip key (`target.d`) may set it.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

from pydantic import BaseModel, TypeAdapter

from convlab.registry import parameters
from convlab.runs import RUN_KINDS
from convlab.study.schema import StudySpec
from convlab.targets import TARGETS


def study_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a study file."""

    schema = StudySpec.model_json_schema()
    defs = schema.setdefault("$defs", {})
    defs["Target"] = _target_schema()
    for name, kind in RUN_KINDS.items():
        sub = kind.config.model_json_schema(ref_template="#/$defs/{model}")
        for def_name, def_schema in sub.pop("$defs", {}).items():
            if defs.setdefault(def_name, def_schema) != def_schema:
                raise ValueError(f"two config models named {def_name} with different schemas (run kind {name})")
        defs[f"{name}_config"] = _partial(sub)
    keys = _dotted_keys(RUN_KINDS, defs)
    # `base` by its kind: the matching config's schema reports a misspelled key as that key. A block's base may
    # leave `kind` to the study's base: then any key some kind has is accepted.
    base = {
        "description": "a run config: `kind` (a run kind, `convlab kinds`) and its keys; a block's base is merged "
        "over the study's, so neither needs every key",
        "type": "object",
        "properties": {"kind": {"enum": sorted(RUN_KINDS)}},
        "allOf": [
            {
                "if": {"properties": {"kind": {"const": name}}, "required": ["kind"]},
                "then": {"$ref": f"#/$defs/{name}_config"},
            }
            for name in RUN_KINDS
        ]
        + [
            {
                "if": {"not": {"required": ["kind"]}},
                "then": {
                    "properties": {key: _one_of(keys[key]) for key in sorted(keys) if "." not in key},
                    "additionalProperties": False,
                },
            }
        ],
    }
    grid = {
        "type": "object",
        "description": "dotted config keys (`teacher.n`, `target.d`) to lists of values, crossed",
        "properties": {
            key: {"type": "array", "minItems": 1, "items": _one_of(schemas)} for key, schemas in sorted(keys.items())
        },
        "additionalProperties": False,
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

    return {
        "description": "a registered target (`convlab targets`): its name and parameters",
        "oneOf": [_one_target(name, make) for name, make in TARGETS.items()],
    }


def _one_target_properties(make: Any) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for p in parameters(make):
        prop = TypeAdapter(p.annotation).json_schema() if p.annotation is not inspect.Parameter.empty else {}
        if p.default is not inspect.Parameter.empty:
            prop["default"] = p.default
        props[p.name] = prop
    return props


def _one_target(name: str, make: Any) -> dict[str, Any]:
    props: dict[str, Any] = {"name": {"const": name}, **_one_target_properties(make)}
    doc = (make.__doc__ or "").strip().splitlines()
    return {
        "type": "object",
        "title": name,
        "description": doc[0] if doc else name,
        "properties": props,
        "required": ["name"],
        "additionalProperties": False,
    }


def _dotted_keys(kinds: dict[str, Any], defs: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every dotted key a grid may set, with the schemas its values may have: each config field and its nested
    fields (as the field's own schema says, bounds and enums included), `target` (a whole target) and
    `target.<parameter>` of every target."""

    keys: dict[str, list[dict[str, Any]]] = {}

    def add(key: str, schema: dict[str, Any]) -> None:
        schema = {k: v for k, v in schema.items() if k not in ("title", "description", "default")}
        if schema not in keys.setdefault(key, []):
            keys[key].append(schema)

    def walk(model: type[BaseModel], prefix: str) -> None:
        properties = model.model_json_schema(ref_template="#/$defs/{model}")["properties"]
        for field, info in model.model_fields.items():
            if prefix + field == "target":
                continue
            add(prefix + field, properties.get(field, {}))
            for a in (info.annotation, *typing.get_args(info.annotation)):
                if isinstance(a, type) and issubclass(a, BaseModel):
                    walk(a, f"{prefix}{field}.")

    for kind in kinds.values():
        walk(kind.config, "")
    add("target", {"$ref": "#/$defs/Target"})
    add("target.name", {"enum": sorted(TARGETS)})
    for make in TARGETS.values():
        for prop, schema in _one_target_properties(make).items():
            add(f"target.{prop}", schema)
    return keys


def _one_of(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    """One schema from the ways a key is declared (a key several kinds have, with different bounds, say)."""
    schemas = [s for s in schemas if s]
    if not schemas:
        return {}
    return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
