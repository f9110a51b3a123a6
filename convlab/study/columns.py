"""The columns a plan's results table will have, and the plan-time check of every column a study's rates and
checks name: a misspelt metric stops the study before it runs, not after (exit 2, nothing written).

A table has one row per run: the run's validated config flattened to dotted keys (`teacher.n`, `target.d`),
the metrics its run kind declares, and run_id, status, stage, reason and `prov.*` (provenance).
"""

from __future__ import annotations

import json
from typing import Any

from convlab.registry import did_you_mean
from convlab.runs import RUN_KINDS
from convlab.study.report import evaluate_formula
from convlab.study.schema import StudySpec

STANDARD = ("run_id", "status", "stage", "reason")


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; the column names of the results table."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_columns(runs) -> dict[str, list[Any]]:
    """Dotted config column -> the distinct values the planned runs give it."""
    values: dict[str, dict[str, Any]] = {}
    for r in runs:
        for col, v in flatten(r.config.model_dump(mode="json")).items():
            values.setdefault(col, {}).setdefault(json.dumps(v, sort_keys=True), v)
    return {col: list(vs.values()) for col, vs in values.items()}


def check_columns(study: StudySpec, runs, source: str) -> tuple[list[str], list[str]]:
    """(errors, warnings): `source: rates[i].field: problem (got VALUE)` for every column of rates and checks that
    the planned runs' table will not have, or that is the wrong sort of column; warnings for a `where` value no
    planned run has (a grid narrowed by --set leaves such a rate with nothing to fit: allowed, but said)."""
    kinds = sorted({r.kind for r in runs})
    metrics = {m.name: m for k in kinds for m in RUN_KINDS[k].metrics}
    config = config_columns(runs)
    columns = [*STANDARD, *config, *metrics]
    of_kinds = f"run kind{'s' if len(kinds) > 1 else ''} {', '.join(kinds)}"
    errors: list[str] = []
    warnings: list[str] = []

    def column(where: str, name: Any) -> bool:
        if isinstance(name, str) and (
            name in config or name in metrics or name in STANDARD or name.startswith("prov.")
        ):
            return True
        errors.append(
            f"{source}: {where}: unknown column{did_you_mean(str(name), columns)}: neither a config key nor a "
            f"metric of {of_kinds} (got {name!r})"
        )
        return False

    def metric(where: str, name: Any, *, flag: bool = False) -> None:
        if name in metrics:
            if flag and metrics[name].estimate != "flag":
                errors.append(
                    f"{source}: {where}: {name} is not a flag (a boolean metric) of {of_kinds} (got {name!r})"
                )
            return
        hint = " (a config key, not a metric)" if name in config else did_you_mean(str(name), list(metrics))
        errors.append(f"{source}: {where}: unknown metric of {of_kinds}{hint} (got {name!r})")

    def setting(where: str, name: Any) -> None:
        """A column that groups runs: a config key, or a flag (a yes/no property of the run such as `degenerate`);
        a measured metric takes a new value in every run, so each run would be a group of its own."""
        if column(where, name) and name not in config and name in metrics and metrics[name].estimate != "flag":
            errors.append(
                f"{source}: {where}: {name} is a measured metric of {of_kinds}, not a setting: runs are grouped by "
                f"config keys (or flags) (got {name!r})"
            )

    def window(where: str, conditions: dict[str, Any]) -> None:
        for col, value in conditions.items():
            if column(f"{where}.{col}", col) and col in config and not any(_same(value, v) for v in config[col]):
                planned = ", ".join(map(str, config[col][:8]))
                warnings.append(
                    f"{source}: {where}.{col}: no planned run has {col} = {value!r} (planned: {planned}): "
                    "nothing to fit"
                )

    for i, rate in enumerate(study.rates):
        at = f"rates[{i}]"
        column(f"{at}.x", rate.x)
        metric(f"{at}.y", rate.y)
        column(f"{at}.seed", rate.seed)
        for j, col in enumerate(rate.group_by):
            setting(f"{at}.group_by[{j}]", col)
        if rate.compare is not None:
            setting(f"{at}.compare", rate.compare)
            if rate.reference is not None and rate.compare in config:
                if not any(_same(rate.reference, v) for v in config[rate.compare]):
                    planned = ", ".join(map(str, config[rate.compare][:8]))
                    errors.append(
                        f"{source}: {at}.reference: no planned run has {rate.compare} = {rate.reference!r} "
                        f"(planned: {planned})"
                    )
        if rate.resolved is not None:
            metric(f"{at}.resolved", rate.resolved, flag=True)
        window(f"{at}.where", rate.where)
        if isinstance(rate.expected, str):
            problem = _formula_problem(rate.expected, rate.group_by)
            if problem:
                errors.append(f"{source}: {at}.expected: {problem} (got {rate.expected!r})")
    for i, check in enumerate(study.checks):
        metric(f"checks[{i}].column", check.column, flag=True)
        window(f"checks[{i}].where", check.where)
    return errors, warnings


def _same(a: Any, b: Any) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _formula_problem(expr: str, group_by: list[str]) -> str | None:
    """Why `expected` cannot be evaluated for the groups (None when it can): only numbers, group_by columns,
    + - * / **, sqrt/log/exp and max/min."""
    try:
        evaluate_formula(expr, {col: 1.5 for col in group_by})
    except (ZeroDivisionError, OverflowError, ValueError) as err:
        if isinstance(err, ValueError) and str(err).startswith("expected:"):
            return str(err)[len("expected: ") :]
    except SyntaxError as err:
        return f"not a formula: {err.msg}"
    return None
