"""One generic `build(registry, spec)` for every registry of convlab (targets, interpolants, solvers, grids)."""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

# Constructor arguments that are not parameters a spec sets: a class's own registry name and its record of how
# it was made (GaussianMixture's `name` and `params`).
BOOKKEEPING = ("name", "params")


def did_you_mean(name: str, known: list[str]) -> str:
    """' (did you mean 'x'?)' when `name` is close to one of `known`, or to a '_'-separated part of one of them
    (cube -> cube_atoms, sphre -> sphere_atoms: a name that grew a qualifier), else ''."""
    close = difflib.get_close_matches(name, known, n=1)
    if not close:
        by_part = {part: k for k in reversed(known) for part in k.split("_")}  # the first name of a shared part
        close = [by_part[p] for p in difflib.get_close_matches(name, list(by_part), n=1)]
    return f" (did you mean {close[0]!r}?)" if close else ""


def shown(value: Any, limit: int = 200) -> str:
    """repr(value), cut to `limit` characters: a message quotes what it refuses, never megabytes of it."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 30]}... ({len(text)} characters)"


def parameters(make: Callable[..., Any]) -> list[inspect.Parameter]:
    """The parameters a spec may give a registry entry (a function or a class), annotations resolved to types (a
    parameter without one keeps inspect.Parameter.empty), in signature order: what `convlab targets`, the JSON
    Schema of study files and the targets reference list."""
    hints = typing.get_type_hints(make.__init__ if isinstance(make, type) else make)
    return [
        p.replace(annotation=hints.get(p.name, inspect.Parameter.empty))
        for p in inspect.signature(make).parameters.values()
        if p.name not in ("self", *BOOKKEEPING)
    ]


def lookup(registry: Mapping[str, Callable[..., Any]], name: str, *, kind: str) -> Callable[..., Any]:
    """registry[name], or a ValueError listing the known names."""
    if name not in registry:
        known = sorted(registry)
        raise ValueError(f"unknown {kind} {name!r}{did_you_mean(name, known)}; known: {', '.join(known)}")
    return registry[name]


def build(registry: Mapping[str, Callable[..., Any]], spec: str | Mapping[str, Any], *, kind: str) -> Any:
    """Instantiate `registry[spec['name']](**rest)`; a bare string is a name with default parameters.

    Parameters left out take the defaults of the constructor's signature, which is the only place
    defaults live.
    """
    if isinstance(spec, str):
        name, params = spec, {}
    elif isinstance(spec, Mapping):
        params = dict(spec)
        if "name" not in params:
            raise ValueError(f"{kind} spec needs a 'name' (got {dict(spec)!r})")
        name = params.pop("name")
    else:
        raise ValueError(f"{kind} spec must be a name or a mapping with 'name' (got {spec!r})")
    return lookup(registry, name, kind=kind)(**params)
