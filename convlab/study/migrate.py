"""`convlab migrate`: rewrite stored results written under older names into today's vocabulary.

The renames are the history in convlab.study.renames (old config keys, values and metric names per run kind, old
target parameters); the live declarations hold today's names only. A study directory of an older format has every
run's config renamed and revalidated, its directory moved to the run id of the new config (the hash the planner
computes for the same study today), its result.json metrics renamed, and its study.json (base, grid, zip, exclude,
rates, checks) renamed; study.json is written last, so a migration killed half way is finished by running it again.
The derived table and report are rebuilt from the migrated runs; set-aside runs under replaced/ are left as they
were.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convlab.files import atomic_write_bytes, atomic_write_json, json_bytes, read_json, utc_now
from convlab.runs import RUN_KINDS, RunKind
from convlab.study import renames
from convlab.study.plan import get_dotted, run_id, set_dotted
from convlab.study.store import (
    CONFIG,
    DONE,
    FORMAT,
    PROVENANCE,
    RESULT,
    STUDY,
    Damaged,
    StudyStore,
    done_marker,
    read_record,
)

_MISSING = object()
DERIVED = ("results.parquet", "results.csv", "report.json", "report.md")
# Targets whose draws changed for one seed (target -> the format that changed them): their older runs hold numbers
# today's code would not give, so they are set aside (replaced/<id>-draws-changed-<time>) and recomputed, not moved.
# 4: curved_torus's frame ordered by frequency and its noise drawn coordinate by coordinate (paired across D).
DRAWS_CHANGED = {"curved_torus": 4}


def _pop_dotted(tree: dict, key: str) -> Any:
    *parents, last = key.split(".")
    for part in parents:
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree.pop(last, _MISSING) if isinstance(tree, dict) else _MISSING


def _target_renames(name: Any) -> dict[str, str]:
    """The renamed parameters of a target; for a fragment without a name (a grid key target.std), all of them."""
    if name is None:
        return {old: new for table in renames.TARGETS.values() for old, new in table.items()}
    return renames.TARGETS.get(name, {})


def _new_keys(kind: RunKind, key: str) -> tuple[str, ...]:
    """Today's dotted key(s) for an old dotted config key (the key itself when it was not renamed)."""
    for old, new in renames.of_kind(kind.name).config.items():
        if key == old or key.startswith(old + "."):
            return tuple(n + key[len(old) :] for n in (new if isinstance(new, tuple) else (new,)))
    if key.startswith("target."):
        param = key[len("target.") :]
        return (f"target.{_target_renames(None).get(param, param)}",)
    return (key,)


def migrate_target(spec: Any) -> Any:
    """A target spec (a name or a mapping) with today's name and parameters."""
    if isinstance(spec, str):
        return renames.TARGET_NAMES.get(spec, spec)
    if not isinstance(spec, dict):
        return spec
    renamed = _target_renames(spec.get("name"))
    out = {renamed.get(k, k): v for k, v in spec.items()}
    if isinstance(out.get("name"), str):
        out["name"] = renames.TARGET_NAMES.get(out["name"], out["name"])
    return out


def migrate_config(kind: RunKind, config: dict) -> dict:
    """An old config (or a fragment of one: a study's base, a grid entry) in today's names and values."""
    cfg = copy.deepcopy(config)
    if "target" in cfg:
        cfg["target"] = migrate_target(cfg["target"])
    for old, new in renames.of_kind(kind.name).config.items():
        value = _pop_dotted(cfg, old)
        if value is not _MISSING:
            for key in new if isinstance(new, tuple) else (new,):
                set_dotted(cfg, key, value)
    for key, mapping in renames.of_kind(kind.name).values.items():
        value = get_dotted(cfg, key, _MISSING)
        if value is not _MISSING and isinstance(value, str | int | float | bool) and value in mapping:
            set_dotted(cfg, key, mapping[value])
    return cfg


def migrate_metrics(kind: RunKind, record: dict) -> dict:
    """result.json with metrics renamed (and those no longer recorded dropped)."""
    out = {}
    for k, v in record.items():
        new = renames.of_kind(kind.name).metrics.get(k, k)
        if new is not None:
            out[new] = v
    return out


def _migrate_entry(kind: RunKind, key: str, value: Any) -> dict[str, Any]:
    """One dotted config key -> value (a grid, zip or exclude entry, a where condition) as today's key(s) -> value."""
    tree: dict = {}
    set_dotted(tree, key, value)
    migrated = migrate_config(kind, tree)
    return {n: get_dotted(migrated, n) for n in _new_keys(kind, key)}


def migrate_column(kind: RunKind, column: str) -> str:
    """A column a rate or check names: a metric by its new name, a config key by its (first) new key."""
    renamed = renames.of_kind(kind.name).metrics.get(column)
    return renamed if renamed is not None else _new_keys(kind, column)[0]


def _migrate_window(kind: RunKind, where: dict) -> dict:
    out: dict = {}
    for col, value in where.items():
        if col in renames.of_kind(kind.name).metrics:
            out[migrate_column(kind, col)] = value
        else:
            out.update(_migrate_entry(kind, col, value))
    return out


def migrate_study(study: dict, kind: RunKind) -> dict:
    """A study mapping (study.json's 'study') in today's names. A study whose grid varies the run kind is migrated
    with the names of its base kind."""
    s = copy.deepcopy(study)
    s["base"] = migrate_config(kind, s["base"])
    grid, zips = {}, [dict(z) for z in s.get("zip", [])]
    for key, values in s.get("grid", {}).items():
        entries = [_migrate_entry(kind, key, v) for v in values]
        if len(entries[0]) == 1:
            grid.update({n: [e[n] for e in entries] for n in entries[0]})
        else:  # one old key became several: they vary together
            zips.append({n: [e[n] for e in entries] for n in entries[0]})
    s["grid"] = grid
    s["zip"] = []
    for group in zips:
        new_group: dict[str, list] = {}
        for key, values in group.items():
            for v in values:
                for n, nv in _migrate_entry(kind, key, v).items():
                    new_group.setdefault(n, []).append(nv)
        s["zip"].append(new_group)
    s["exclude"] = [_migrate_window(kind, ex) for ex in s.get("exclude", [])]
    for rate in s.get("rates", []):
        if isinstance(rate.get("expected"), str):  # a formula in the group_by columns, by their old names
            for old in sorted(rate.get("group_by", []), key=len, reverse=True):
                pattern = rf"(?<![\w.]){re.escape(old)}(?![\w.])"
                rate["expected"] = re.sub(pattern, migrate_column(kind, old), rate["expected"])
        for col in ("x", "y", "compare", "resolved", "seed"):
            if rate.get(col) is not None:
                rate[col] = migrate_column(kind, rate[col])
        rate["group_by"] = [migrate_column(kind, c) for c in rate.get("group_by", [])]
        rate["where"] = _migrate_window(kind, rate.get("where", {}))
    for check in s.get("checks", []):
        check["column"] = migrate_column(kind, check["column"])
        check["where"] = _migrate_window(kind, check.get("where", {}))
    return s


@dataclass
class Migration:
    study_dir: Path
    moved: dict[str, str] = field(default_factory=dict)  # old run id -> new run id
    already: bool = False
    set_aside: list[str] = field(default_factory=list)  # runs whose numbers changed (DRAWS_CHANGED): recomputed
    damaged: list[str] = field(default_factory=list)  # '<path>: <why>' of runs left as they are (recomputed later)


def migrate_results(study_dir: str | Path) -> Migration:
    """Migrate one study directory in place (see the module docstring); idempotent."""
    study_dir = Path(study_dir)
    store = StudyStore(study_dir.parent, study_dir.name)
    result = Migration(study_dir)
    if store.format() in (None, FORMAT):
        result.already = True
        return result
    plans = []
    from_format = store.format()
    for d in sorted(p for p in store.runs.iterdir() if (p / CONFIG).exists()):
        state = store.inspect(d.name)
        try:
            prov = read_record(d / PROVENANCE) if (d / PROVENANCE).exists() else {}
            old = read_record(d / CONFIG, required=("kind",))
        except Damaged as err:  # left where it is: no plan names it, and its run is recomputed
            result.damaged.append(str(err))
            continue
        if prov.get("format") == FORMAT:
            continue  # moved by an earlier, interrupted migration
        target = migrate_target(old.get("target", {}))
        if from_format < DRAWS_CHANGED.get(target.get("name") if isinstance(target, dict) else None, 0):
            store.set_aside(d.name, "draws-changed")
            result.set_aside.append(d.name)
            continue
        kind = RUN_KINDS[old["kind"]]
        config = kind.config.model_validate(
            migrate_config(kind, old)
        )  # every run is checked before anything is written
        plans.append((d, kind, config, prov, state.state))
    for d, kind, config, prov, state in plans:
        new_id = run_id(config)
        atomic_write_json(d / CONFIG, config.model_dump(mode="json"))
        if (d / RESULT).exists() and state != "damaged":  # a damaged result stays damaged: it is recomputed
            data = json_bytes(migrate_metrics(kind, read_json(d / RESULT)))
            atomic_write_bytes(d / RESULT, data)
            if state == "done":  # the new result, certified again
                atomic_write_bytes(d / DONE, done_marker(data))
        migrated = {"from_run_id": d.name, "from_format": from_format, "at": utc_now()}
        atomic_write_json(d / PROVENANCE, {**prov, "format": FORMAT, "migrated": migrated})
        (store.runs / f"{d.name}.lock").unlink(missing_ok=True)
        if new_id != d.name:
            if store.run_dir(new_id).exists():
                raise FileExistsError(f"{store.run_dir(new_id)}: two runs migrate to one run id")
            os.replace(d, store.run_dir(new_id))
        result.moved[d.name] = new_id
    for name in DERIVED:
        (study_dir / name).unlink(missing_ok=True)
    if (study_dir / STUDY).exists():
        data = read_json(study_dir / STUDY)
        data["study"] = migrate_study(data["study"], RUN_KINDS[data["study"]["base"]["kind"]])
        data.update(format=FORMAT, migrated={"from_format": data.get("format", 1), "at": utc_now()})
        atomic_write_json(study_dir / STUDY, data)
    return result
