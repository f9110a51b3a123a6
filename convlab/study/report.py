"""report: the rates a study declares, fitted per group from its table, with CIs, verdicts and comparisons."""

from __future__ import annotations

import ast
import math
import operator
from typing import Any

import pandas as pd

from convlab.metrics.rates import compare_slopes, fit_rate
from convlab.study.schema import CheckSpec, RateSpec, Study

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv, ast.Pow: operator.pow,
        ast.USub: operator.neg, ast.UAdd: operator.pos}
_FUNCS = {"sqrt": math.sqrt, "log": math.log, "exp": math.exp}


def expected_slope(spec: RateSpec, group: dict[str, Any]) -> float | None:
    """The expected slope: a number, or a formula in the group's columns ('-1/(target.d + 3)')."""
    if spec.expected is None or isinstance(spec.expected, int | float):
        return spec.expected
    expr = spec.expected
    names = {}
    for i, col in enumerate(sorted(group, key=len, reverse=True)):
        if col in expr:
            names[f"_v{i}"] = float(group[col])
            expr = expr.replace(col, f"_v{i}")
    return float(_eval(ast.parse(expr, mode="eval").body, names))


def _eval(node, names):
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.left, names), _eval(node.right, names))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.operand, names))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS and len(node.args) == 1:
        return _FUNCS[node.func.id](_eval(node.args[0], names))
    raise ValueError(f"expected: only numbers, group columns, + - * / ** and sqrt/log/exp are allowed (got {ast.unparse(node)!r})")


def _groups(df: pd.DataFrame, cols: list[str]):
    if not cols:
        yield {}, df
        return
    for key, sub in df.groupby(cols, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        yield {c: (v.item() if hasattr(v, "item") else v) for c, v in zip(cols, key)}, sub


def _window(df: pd.DataFrame, spec: RateSpec) -> pd.DataFrame:
    ok = df[df["status"] == "ok"] if "status" in df else df
    for col, value in spec.where.items():
        ok = ok[ok[col] == value]
    if spec.x_min is not None:
        ok = ok[ok[spec.x] >= spec.x_min]
    if spec.x_max is not None:
        ok = ok[ok[spec.x] <= spec.x_max]
    return ok


def rate_report(study: Study, df: pd.DataFrame) -> dict[str, Any]:
    """Every declared rate, fitted per group; comparisons across `compare` levels within the other groups."""
    out = {"study": study.name, "n_runs": int(len(df)), "n_failed": int((df["status"] != "ok").sum()) if len(df) else 0, "rates": []}
    for spec in study.rates:
        needed = [spec.x, spec.y, spec.seed, *spec.group_by, *spec.where, *([spec.resolved] if spec.resolved else [])]
        missing = [c for c in needed if c not in df]
        if missing:
            out["rates"].append({"title": spec.title, "error": f"columns not in the table: {', '.join(missing)}"})
            continue
        data = _window(df, spec)
        groups = []
        for key, sub in _groups(data, spec.group_by):
            exp = expected_slope(spec, key)
            resolved = sub[spec.resolved].astype(bool).to_numpy() if spec.resolved else None
            fit = fit_rate(sub[spec.x].to_numpy(float), sub[spec.y].to_numpy(float), seed=sub[spec.seed].to_numpy(),
                           resolved=resolved, expected=exp, tol=spec.tol if exp is not None else None, log_x=spec.x_scale == "log")
            groups.append({"group": key, **fit.as_dict()})
        entry = {"title": spec.title, "x": spec.x, "y": spec.y, "group_by": spec.group_by, "groups": groups}
        if spec.compare:
            entry["compare"] = spec.compare
            entry["comparisons"] = []
            others = [c for c in spec.group_by if c != spec.compare]
            for key, sub in _groups(data, others):
                resolved = sub[spec.resolved].astype(bool).to_numpy() if spec.resolved else None
                diffs = compare_slopes(sub[spec.x], sub[spec.y], sub[spec.compare], seed=sub[spec.seed], resolved=resolved)
                differs = any(d.excludes_zero for d in diffs)
                entry["comparisons"].append({"group": key, "differences": [d.as_dict() for d in diffs],
                                             "verdict": f"slope depends on {spec.compare}" if differs else f"no detectable dependence on {spec.compare}"})
        out["rates"].append(entry)
    out["checks"] = [check_report(spec, df) for spec in study.checks]
    return out


def check_report(spec: CheckSpec, df: pd.DataFrame) -> dict[str, Any]:
    """How many ok runs satisfy a declared check; 'pass' only when all do (and there is at least one)."""
    if spec.column not in df or any(c not in df for c in spec.where):
        missing = [c for c in [spec.column, *spec.where] if c not in df]
        return {"name": spec.name, "column": spec.column, "error": f"columns not in the table: {', '.join(missing)}"}
    ok = df[df["status"] == "ok"] if "status" in df else df
    for col, value in spec.where.items():
        ok = ok[ok[col] == value]
    holds = ok[spec.column].astype(bool)
    n, k = int(len(holds)), int(holds.sum())
    return {"name": spec.name, "column": spec.column, "n_runs": n, "n_true": k, "verdict": "pass" if n and k == n else "fail"}


def render_text(report: dict[str, Any]) -> str:
    """A plain-text rendering of rate_report's output (also written to report.md)."""
    lines = [f"# {report['study']}: {report['n_runs']} runs ({report['n_failed']} failed)", ""]
    for entry in report["rates"]:
        lines.append(f"## {entry['title']}")
        if "error" in entry:
            lines += [f"cannot fit: {entry['error']}", ""]
            continue
        for g in entry["groups"]:
            name = ", ".join(f"{k}={v}" for k, v in g["group"].items()) or "all runs"
            exp = "" if g["expected"] is None else f" | expected {g['expected']:+.3f} +/- {g['tol']:.3f}: {g['verdict']}"
            const = f", C = {math.exp(g['intercept']):.3g}" if math.isfinite(g["intercept"]) else ""
            lines.append(f"- {name}: slope {g['slope']:+.3f} [{g['ci_low']:+.3f}, {g['ci_high']:+.3f}]{const} "
                         f"({g['n_points']} points, {g['n_dropped']} dropped, {g['n_seeds']} seeds){exp}")
        for c in entry.get("comparisons", []):
            name = ", ".join(f"{k}={v}" for k, v in c["group"].items()) or "all runs"
            lines.append(f"- across {entry['compare']} ({name}): {c['verdict']}")
            for d in c["differences"]:
                lines.append(f"    {d['level_a']} - {d['level_b']}: {d['diff']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] ({d['n_seeds']} seeds)")
        lines.append("")
    if report.get("checks"):
        lines.append("## checks")
        for c in report["checks"]:
            state = f"cannot check: {c['error']}" if "error" in c else f"{c['n_true']}/{c['n_runs']} runs: {c['verdict']}"
            lines.append(f"- {c['name']} ({c['column']}): {state}")
        lines.append("")
    return "\n".join(lines)
