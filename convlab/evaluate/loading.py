"""Models from outside convlab, loaded by name: a factory `module:attribute` (a module importable from the working
directory or installed, or a file `path/to/models.py:attribute`, relative to the working directory), called with
the checkpoint's path if there is one. A checkpoint is pinned by its SHA-256: a file that changed since the study
was written is refused, so the results of one run id always come from one model."""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from convlab.evaluate.convention import ModelError


def _takes_device(make: Callable) -> bool:
    try:
        return "device" in inspect.signature(make).parameters
    except (TypeError, ValueError):  # a builtin or a C callable: no signature to read
        return False


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve(reference: str) -> Any:
    """The object a `module:attribute` or `path/to/file.py:attribute` reference names; ModelError naming what is
    missing otherwise."""
    module_name, sep, attribute = reference.rpartition(":")
    if not sep or not module_name or not attribute.isidentifier():
        raise ModelError(f"{reference!r}: expected 'module:attribute' or 'path/to/file.py:attribute'")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise ModelError(f"{reference!r}: no file {path} (paths are relative to the working directory)")
            name = f"convlab_external_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]}"
            if name not in sys.modules:
                spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[name]
                    raise
            module = sys.modules[name]
        else:
            if os.getcwd() not in sys.path:  # as `python -m` does: the working directory's modules come first
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_name)
    except ModelError:
        raise
    except Exception as err:  # the user's module: any failure to import it is a refusal with its message
        raise ModelError(f"{reference!r}: importing {module_name} raised {type(err).__name__}: {err}") from err
    if not hasattr(module, attribute):
        raise ModelError(f"{reference!r}: {module_name} has no attribute {attribute!r}")
    return getattr(module, attribute)


@functools.lru_cache(maxsize=32)
def load_model(
    factory: str, checkpoint: str | None = None, sha256: str | None = None, device: str | None = None
) -> Callable:
    """The model the factory returns (called with the checkpoint's path when there is one, and with `device=` when
    it takes that argument and a device is asked for), after the checkpoint's SHA-256 is checked against `sha256`.
    Loaded once per process and arguments."""
    if checkpoint is not None:
        if not Path(checkpoint).is_file():
            raise ModelError(f"checkpoint: no file {checkpoint} (paths are relative to the working directory)")
        actual = file_sha256(checkpoint)
        if sha256 is None:
            raise ModelError(f"checkpoint: pin it by its SHA-256 (sha256: {actual})")
        if actual != sha256.lower():
            raise ModelError(f"checkpoint: {checkpoint} has SHA-256 {actual}, not the {sha256} the study names")
    make = resolve(factory)
    if not callable(make):
        raise ModelError(f"{factory!r}: is a {type(make).__name__}, not a factory (a callable)")
    args = (checkpoint,) if checkpoint is not None else ()
    kwargs = {"device": device} if device is not None and _takes_device(make) else {}
    try:
        model = make(*args, **kwargs)
    except Exception as err:  # the user's factory: any failure is a refusal with its own message
        shown = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
        raise ModelError(f"{factory}({shown}): raised {type(err).__name__}: {err}") from err
    if not callable(model):
        raise ModelError(f"{factory!r}: returned a {type(model).__name__}, not a model u(s, x)")
    return model
