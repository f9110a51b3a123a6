"""From a study file (or a results directory) to a validated plan: every grid point resolved, validated and
hashed, and every column the rates and checks name checked against the run kinds' declarations, before anything
runs."""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from convlab.device import format_bytes
from convlab.files import read_json
from convlab.registry import did_you_mean, shown
from convlab.runs import RUN_KINDS
from convlab.study import renames
from convlab.study.columns import check_columns, flatten
from convlab.study.limits import MAX_RUNS
from convlab.study.schema import StudySpec, figure_script
from convlab.study.store import FORMAT, STUDY
from convlab.study.yamlio import YAMLLimit, describe_error, load_yaml, load_yaml_text
from convlab.targets import check_target_spec

MAX_ERRORS = 25
MAX_MESSAGE = 1000  # characters of one message: a refused value is quoted, never megabytes of it


class StudyError(Exception):
    """Invalid input; each message reads `file: dotted.path: message (got VALUE)`."""

    def __init__(self, messages: list[str]):
        messages = [
            m if len(m) <= MAX_MESSAGE else f"{m[: MAX_MESSAGE - 40]}... ({len(m)} characters)" for m in messages
        ]
        super().__init__("\n".join(messages))
        self.messages = messages


@dataclass(frozen=True)
class PlannedRun:
    run_id: str
    kind: str
    config: BaseModel
    point: dict[str, Any]  # the grid values (dotted keys) and the seed that made this run
    shared: str | None  # '<kind>.<artefact>/<key>' of the on-disk artefact it shares (a trained teacher), or None
    batch_key: str | None = None  # runs of a kind with a batch body and equal keys may run as one batch
    origin: dict[str, str] = field(default_factory=dict, compare=False)  # dotted key -> the study entry that set it


@dataclass
class Plan:
    study: StudySpec
    source: Path  # what was given: a study file or a results directory
    runs: list[PlannedRun]
    origin: Path | None = None  # the study file the figure script is found from (a results directory's source)
    warnings: list[str] = field(default_factory=list)  # what is valid but probably not meant (convlab prints them)

    @property
    def study_file(self) -> Path:
        return self.origin or self.source


# -- dotted keys --------------------------------------------------------------------------------------------------


def set_dotted(tree: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    for part in parts[:-1]:
        if not isinstance(tree.get(part), dict):
            tree[part] = {}
        tree = tree[part]
    tree[parts[-1]] = copy.deepcopy(value)


def get_dotted(tree: Any, key: str, default: Any = None) -> Any:
    for part in key.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return default
        tree = tree[part]
    return tree


def run_id(config: BaseModel) -> str:
    """Hash of the validated config (every default filled in); device, executor and resources are not in it."""
    blob = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# -- loading -----------------------------------------------------------------------------------------------------------


def read_study_source(path: str | Path) -> tuple[dict, Path | None]:
    """The raw study mapping of a study file, or of a results directory's study.json (the study as it was run,
    overrides included), with the study file it came from (None for a YAML file: itself)."""
    path = Path(path)
    snapshot = path / STUDY if path.is_dir() else path if path.name == STUDY else None
    if snapshot is not None:
        if not snapshot.is_file():
            raise StudyError([f"{path}: not a study file, nor a results directory with {STUDY}"])
        data = read_study_json(snapshot)
        if data.get("format", 1) != FORMAT:
            raise StudyError(
                [
                    f"{snapshot}: results written under the names of format {data.get('format', 1)} (this convlab "
                    f"reads format {FORMAT}); run `convlab migrate {snapshot.parent}` first"
                ]
            )
        return data["study"], Path(data["source"])
    if not path.is_file():
        raise StudyError([f"{path}: no such study file"])
    try:
        raw = load_yaml(path)
    except YAMLLimit as err:
        raise StudyError([f"{path}: refused: {err}"]) from None
    except yaml.YAMLError as err:
        raise StudyError([f"{path}: not valid YAML: {describe_error(err)}"]) from None
    except UnicodeDecodeError as err:
        raise StudyError([f"{path}: not valid YAML: not UTF-8 text ({err.reason} at byte {err.start})"]) from None
    if not isinstance(raw, dict):
        raise StudyError([f"{path}: a study is a mapping with name, base, grid, ... (got {type(raw).__name__})"])
    return raw, None


def read_study_json(path: Path) -> dict:
    """A results directory's study.json, checked: StudyError naming the file when it is damaged (not JSON, or not
    the mapping convlab writes)."""
    try:
        data = read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise StudyError([f"{path}: damaged: not readable JSON ({type(err).__name__}: {err})"]) from None
    if not (isinstance(data, dict) and isinstance(data.get("study"), dict) and isinstance(data.get("source"), str)):
        raise StudyError([f"{path}: damaged: not the study record convlab writes (no 'study' and 'source')"])
    return data


def load_study(path: str | Path, overrides: list[str] = ()) -> StudySpec:
    """Read and validate a study (file or results directory), with `--set dotted.key=value` overrides applied first.

    `base.a.b=v` sets a nested base key; `grid.a.b=[...]` sets one grid entry (its key is the rest) in every block
    that has it, else in the study's grid; `seeds=...` sets the seeds of the study and of every block; other
    top-level names (name, ...) replace that field. Values are YAML.
    """
    return _load(path, overrides)[0]


def _load(path: str | Path, overrides: list[str]) -> tuple[StudySpec, Path | None]:
    raw, origin = read_study_source(path)
    raw = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise StudyError([f"--set {item}: expected dotted.key=value"])
        try:
            value = load_yaml_text(text)
        except YAMLLimit as err:
            raise StudyError([f"--set {key}: refused: {err}"]) from None
        except yaml.YAMLError as err:
            raise StudyError([f"--set {key}: not valid YAML: {describe_error(err)}"]) from None
        head, _, rest = key.partition(".")
        if head not in StudySpec.model_fields:
            raise StudyError(
                [f"--set {key}: unknown study field {head!r}{did_you_mean(head, list(StudySpec.model_fields))}"]
            )
        blocks = [b for b in raw.get("blocks", []) if isinstance(b, dict)]
        if head == "grid" and rest:
            # a block's own grid entry wins over the study's, so the override goes where the key is
            holders = [b["grid"] for b in blocks if rest in (b.get("grid") or {})]
            for grid in holders or [raw.setdefault("grid", {})]:
                grid[rest] = value
        elif head == "seeds" and not rest:
            raw["seeds"] = value
            for b in blocks:  # every block's seeds
                b.pop("seeds", None)
        elif rest:
            set_dotted(raw.setdefault(head, {}), rest, value)
        else:
            raw[head] = value
    try:
        return StudySpec.model_validate(raw), origin
    except ValidationError as err:
        raise StudyError(_messages(err, str(path), StudySpec, "")) from None


# -- expansion and validation ------------------------------------------------------------------------------------------


@dataclass
class Point:
    """One grid point: dotted key -> value, dotted key -> where it came from (grid, zip, seeds, a block's base),
    and the base it applies to (the study's, or a block's merged over it)."""

    values: dict[str, Any]
    origin: dict[str, str]
    base: dict[str, Any]

    def config(self) -> dict[str, Any]:
        cfg = copy.deepcopy(self.base)
        for key, value in self.values.items():
            set_dotted(cfg, key, value)
        return cfg


def expand(study: StudySpec) -> list[Point]:
    """The grid points, block by block, seeds last."""
    points = []
    for index, base, grid, zips, seeds in study.parts():
        block, prefix = (None, "") if index is None else (study.blocks[index], f"blocks[{index}].")
        axes: list[list[tuple[dict, dict]]] = []
        for key, values in grid.items():
            at = f"{prefix}grid" if block is not None and key in block.grid else "grid"
            axes.append([({key: v}, {key: f"{at}.{key}[{i}]"}) for i, v in enumerate(values)])
        for g, group in enumerate(zips):
            n = len(next(iter(group.values())))
            at = f"zip[{g}]" if g < len(study.zip) else f"{prefix}zip[{g - len(study.zip)}]"
            axes.append(
                [({k: vs[i] for k, vs in group.items()}, {k: f"{at}.{k}[{i}]" for k in group}) for i in range(n)]
            )
        seeds_at = f"{prefix}seeds" if block is not None and block.seeds is not None else "seeds"
        axes.append([({"seed": s}, {"seed": seeds_at}) for s in seeds])
        # keys a block's base sets (and their parents) are named there in messages; the rest come from base
        own = {}
        for key in flatten(block.base) if block is not None else {}:
            parts = key.split(".")
            own.update({".".join(parts[:i]): f"{prefix}base.{'.'.join(parts[:i])}" for i in range(1, len(parts) + 1)})
        for combo in itertools.product(*axes):
            point, origin = {}, dict(own)
            for p, o in combo:
                point.update(p)
                origin.update(o)
            points.append(Point(point, origin, base))
    return points


def grid_size(study: StudySpec) -> int:
    """The grid points a study expands to, before exclusions (extensions counted as if every point matched): an
    upper bound on its runs, computed without expanding anything."""
    points = sum(
        math.prod(len(v) for v in grid.values())
        * math.prod(len(next(iter(group.values()))) for group in zips if group)
        * len(seeds)
        for _, _, grid, zips, seeds in study.parts()
    )
    return points + sum(points * math.prod(len(v) for v in ext.grid.values()) for ext in study.extend)


def make_plan(
    study: StudySpec, source: str | Path, origin: Path | None = None, *, max_runs: int | None = MAX_RUNS
) -> Plan:
    """Resolve, validate and hash every run, then check the columns of rates and checks; raise StudyError with
    every problem found (nothing runs). A study whose grid holds more than `max_runs` points is refused before it is
    expanded (None: no limit)."""
    source = Path(source)
    size = grid_size(study)
    if max_runs is not None and size > max_runs:
        axes = [f"{k} ({len(v)})" for _, _, grid, _, _ in study.parts() for k, v in grid.items() if len(v) > 1]
        raise StudyError(
            [
                f"{source}: grid: {size} grid points, more than a plan may hold ({max_runs}); it crosses "
                f"{', '.join(dict.fromkeys(axes)) or 'its lists'} and {len(study.seed_list)} seeds. Shorten a list, "
                "or pass --allow-large (Python: allow_large=True) if you mean it"
            ]
        )
    errors: list[str] = []
    runs: dict[str, PlannedRun] = {}
    targets_checked: dict[str, list[tuple[str, str, object]]] = {}
    excluded = _exclusions(study.exclude)
    points = expand(study)
    for pt in _with_extensions(study, points, errors, source):
        if len(set(errors)) >= MAX_ERRORS:
            break
        point, origin_of = pt.values, pt.origin
        cfg = pt.config()
        if excluded(cfg):
            continue
        kind = cfg.get("kind")
        if kind not in RUN_KINDS:
            known = sorted(RUN_KINDS)
            where = origin_of.get("kind", "base.kind")
            errors.append(
                f"{source}: {where}: unknown run kind{did_you_mean(str(kind)[:100], known)}; "
                f"known: {', '.join(known)} (got {shown(kind)})"
            )
            continue
        model = RUN_KINDS[kind].config
        spec = cfg.get("target")
        if isinstance(spec, dict) and "name" in spec:
            blob = json.dumps(spec, sort_keys=True, default=str)
            if blob not in targets_checked:
                renamed = renames.TARGETS.get(spec["name"])
                targets_checked[blob] = check_target_spec(spec, renamed, renames.TARGET_NAMES)
            varied = {k: v for k, v in point.items() if k == "target" or k.startswith("target.")}
            context = f" [grid point {', '.join(f'{k}={shown(v, 60)}' for k, v in varied.items())}]" if varied else ""
            for param, msg, value in targets_checked[blob]:
                path = f"target.{param}" if param and not param.startswith("[") else f"target{param}"
                got = "" if "(got " in msg else f" (got {shown(value)})"
                errors.append(f"{source}: {_where(path, origin_of, 'base')}: {msg}{got}{context}")
        try:
            config = model.model_validate(cfg)
        except ValidationError as err:
            errors += _messages(err, str(source), model, "base", origin_of, renames.of_kind(kind).config)
            continue
        rid = run_id(config)
        runs.setdefault(
            rid,
            PlannedRun(
                rid, kind, config, point, RUN_KINDS[kind].shared_key(config), _batch_key(kind, config), origin_of
            ),
        )
        if len(set(errors)) >= MAX_ERRORS:
            break
    if not errors and not runs:
        errors.append(f"{source}: the grid, seeds and exclude leave no run to do")
    warnings: list[str] = []
    if not errors:
        errors, warnings = check_columns(study, list(runs.values()), str(source))
    # (checked from the study file: a results directory copied elsewhere still opens without its script)
    if study.figure is not None and origin is None and not (script := figure_script(study, source)).is_file():
        errors.append(f"{source}: figure: no such script {script} (got {shown(study.figure)})")
    if errors:
        unique = list(dict.fromkeys(errors))
        raise StudyError(
            unique[:MAX_ERRORS] + ([f"... and more (first {MAX_ERRORS} shown)"] if len(unique) > MAX_ERRORS else [])
        )
    return Plan(study, source, list(runs.values()), origin, warnings)


def _exclusions(exclude: list[dict[str, Any]]):
    """A test of a config against the study's exclude entries, by set lookup: the entries grouped by the keys they
    name, each a set of their values (JSON), so a long exclude list costs one lookup per key set, not a scan."""

    def canon(v: Any) -> str:  # equal values, equal text: 1 and 1.0 alike, as == has them
        def norm(v):
            if isinstance(v, bool) or v is None or isinstance(v, str):
                return v
            if isinstance(v, int | float):
                return float(v)
            if isinstance(v, dict):
                return {str(k): norm(x) for k, x in v.items()}
            return [norm(x) for x in v] if isinstance(v, list | tuple) else str(v)

        return json.dumps(norm(v), sort_keys=True)

    groups: dict[tuple[str, ...], set[str]] = {}
    for ex in exclude:
        keys = tuple(sorted(ex))
        groups.setdefault(keys, set()).add(canon([ex[k] for k in keys]))

    def excluded(cfg: dict) -> bool:
        for keys, values in groups.items():
            got = [get_dotted(cfg, k, _MISSING) for k in keys]
            if not any(g is _MISSING for g in got) and canon(got) in values:
                return True
        return False

    return excluded


def _with_extensions(study: StudySpec, points: list[Point], errors: list[str], source: Path):
    """The grid points, then those of `extend`: each extension's grid values on every grid point whose validated
    config (defaults filled in) has the extension's `where` values."""
    yield from points
    if not study.extend:
        return
    configs = []
    for pt in points:
        cfg = pt.config()
        kind = RUN_KINDS.get(cfg.get("kind"))
        try:  # invalid points are reported by the main loop; they extend nothing
            configs.append((pt, flatten(kind.config.model_validate(cfg).model_dump(mode="json"))))
        except (ValidationError, AttributeError):
            continue
    for e, ext in enumerate(study.extend):
        matching = [pt for pt, flat in configs if all(flat.get(k, _MISSING) == v for k, v in ext.where.items())]
        if not matching:
            errors.append(f"{source}: extend[{e}].where: no grid point has these values (got {ext.where!r})")
        values = [[(k, v, f"extend[{e}].grid.{k}[{i}]") for i, v in enumerate(vs)] for k, vs in ext.grid.items()]
        for pt, combo in itertools.product(matching, itertools.product(*values)):
            yield Point(
                {**pt.values, **{k: v for k, v, _ in combo}},
                {**pt.origin, **{k: w for k, _, w in combo}},
                pt.base,
            )


def memory_problems(plan: Plan, limit: float, where: str) -> list[str]:
    """`source: field: ...` for every distinct way a planned run cannot fit in `limit` bytes (the memory of
    `where`, e.g. "this machine's memory"), estimated from its config by its run kind (runs.memory) and naming the
    field behind the largest part."""
    out: dict[tuple, str] = {}
    for r in plan.runs:
        kind = RUN_KINDS[r.kind]
        if kind.memory is None:
            continue
        try:
            needs = kind.memory(r.config)
        except (ValueError, TypeError, MemoryError):
            continue  # a target that cannot be built was refused when the plan was made
        total = sum(n.bytes for n in needs)
        if total <= limit:
            continue
        worst = max(needs, key=lambda n: n.bytes)
        cfg = r.config.model_dump(mode="json")
        values = ", ".join(f"{k} = {shown(get_dotted(cfg, k), 60)}" for k in worst.keys)
        key = (r.kind, worst.keys, values)
        if key in out:
            continue
        out[key] = (
            f"{plan.source}: {_where(worst.keys[0], r.origin, 'base')}: this run needs about {format_bytes(total)}, "
            f"more than {where} ({format_bytes(limit)}); the largest part is {worst.what} "
            f"({format_bytes(worst.bytes)}, from {values}). Lower it, or pass --allow-large (Python: "
            "allow_large=True) to run it anyway"
        )
    return list(out.values())[:MAX_ERRORS]


def load_plan(path: str | Path, overrides: list[str] = (), *, allow_large: bool = False) -> Plan:
    study, origin = _load(path, list(overrides))
    return make_plan(study, path, origin, max_runs=None if allow_large else MAX_RUNS)


_MISSING = object()
# The names pydantic gives the members of a union in an error's location ('list[constrained-int]', 'int',
# 'function-after[...]'): not fields, so not part of the dotted path a message names.
_PYDANTIC_TAG = re.compile(
    r"^(list|dict|tuple|set|literal|union|int|float|str|bool|none|constrained-\w+|function-\w+)(\[.*\])?$"
)


def _where(path: str, origin: dict[str, str], base: str) -> str:
    """Where a config path came from: the grid/zip/seeds entry that set it (or a prefix of it), else base."""
    for key in sorted(origin, key=len, reverse=True):
        if path == key or path.startswith(key + "."):
            return origin[key] + path[len(key) :]
    return f"{base}.{path}" if base else path


def _messages(
    err: ValidationError,
    source: str,
    model: type[BaseModel],
    base: str,
    origin: dict[str, str] | None = None,
    renamed: dict[str, Any] | None = None,
) -> list[str]:
    out = []
    for e in err.errors():
        loc = [p for p in e["loc"] if not (isinstance(p, str) and _PYDANTIC_TAG.match(p))]
        path = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in loc).replace(".[", "[")
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            if renamed and path in renamed:
                new = renamed[path]
                names = " and ".join(map(repr, new)) if isinstance(new, tuple) else repr(new)
                msg = f"renamed to {names} (convlab migrate updates stored results)"
            else:
                siblings = _field_names(model, [p for p in e["loc"][:-1] if isinstance(p, str)])
                msg = f"unknown key{did_you_mean(str(e['loc'][-1]), siblings)}" + (
                    f"; known: {', '.join(siblings)}" if siblings else ""
                )
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        got = e.get("input")
        head, sep, rest = msg.partition(": ")
        if not path and sep and head.split(".")[0] in model.model_fields:
            # A cross-field check of the whole config names its field first: point at that field.
            path, msg, got = head, rest, None
        where = _where(path, origin or {}, base) if path else (base or "study")
        show_got = got is not None and e["type"] != "missing" and "(got " not in msg
        out.append(f"{source}: {where}: {msg} (got {shown(got)})" if show_got else f"{source}: {where}: {msg}")
    return out


def _field_names(model: type[BaseModel], path: list[str]) -> list[str]:
    """Field names of the (nested) model at path, for did-you-mean suggestions."""
    for part in path:
        info = model.model_fields.get(part)
        if info is None:
            return []
        nested = [
            a
            for a in (info.annotation, *typing.get_args(info.annotation))
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if not nested:
            return []
        model = nested[0]
    return list(model.model_fields)


def _batch_key(kind: str, config: BaseModel) -> str | None:
    """RunKind.batch_id; None for a config whose target is invalid (make_plan reports it, and nothing runs)."""
    try:
        return RUN_KINDS[kind].batch_id(config)
    except ValueError:
        return None
