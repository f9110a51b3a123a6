"""report: the rates a study declares, fitted per group from its table, with CIs, verdicts and comparisons, and
the checks it declares, counted; as objects (Report) with a JSON form (report.json) and a text form (report.md)."""

from __future__ import annotations

import ast
import math
import operator
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from convlab.metrics.rates import (
    Equivalence,
    RateFit,
    SlopeDifference,
    Trend,
    auto_window,
    compare_slopes,
    equivalence,
    fit_rate,
    slope_trend,
)
from convlab.study.schema import CheckSpec, RateSpec, StudySpec

_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_FUNCS = {"sqrt": math.sqrt, "log": math.log, "exp": math.exp, "max": max, "min": min}


def evaluate_formula(expr: str, values: dict[str, Any]) -> float:
    """A formula in column names ('-1/(target.d + 3)') evaluated at the columns' values; ValueError('expected: ...')
    for anything but numbers, the given columns, + - * / **, sqrt/log/exp and max/min."""
    names = {}
    for i, col in enumerate(sorted(values, key=len, reverse=True)):
        if col in expr:
            names[f"_v{i}"] = float(values[col])
            expr = expr.replace(col, f"_v{i}")
    return float(_eval(ast.parse(expr, mode="eval").body, names, values))


def _eval(node, names, values):
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.left, names, values), _eval(node.right, names, values))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.operand, names, values))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCS
        and (len(node.args) == 1 or (node.func.id in ("max", "min") and len(node.args) >= 2))
        and not node.keywords
    ):
        return _FUNCS[node.func.id](*(_eval(a, names, values) for a in node.args))
    allowed = ", ".join(sorted(values)) or "none (no group_by)"
    raise ValueError(
        f"expected: only numbers, group_by columns ({allowed}), + - * / **, sqrt/log/exp and max/min are allowed "
        f"(not {ast.unparse(node)!r})"
    )


def expected_slope(spec: RateSpec, group: dict[str, Any]) -> float | None:
    """The expected slope: a number, or a formula in the group's columns ('-1/(target.d + 3)')."""
    if spec.expected is None or isinstance(spec.expected, int | float):
        return spec.expected
    return evaluate_formula(spec.expected, group)


# A pathwise error whose top 1% of paths carry more than this share of its mean square is dominated by a few paths
# (a sharp boundary between components): its rms rate is not the typical path's, so the median path's is fitted too.
HEAVY_TAIL_SHARE = 0.2


@dataclass
class GroupFit:
    """The fit of one group; `window` says which x were fitted and why; for a pathwise error, the largest share of
    its mean square carried by the top 1% of paths, whether that is a heavy tail, and the median path's fit."""

    group: dict[str, Any]
    fit: RateFit
    window: str | None = None
    top1_share: float | None = None
    median_path: RateFit | None = None
    failures: dict[str, int] = field(default_factory=dict)  # '[stage] reason' -> failed runs of the group's window

    @property
    def heavy_tail(self) -> bool:
        return self.top1_share is not None and self.top1_share > HEAVY_TAIL_SHARE

    @property
    def n_failed(self) -> int:
        return sum(self.failures.values())

    def to_dict(self) -> dict[str, Any]:
        out = {
            "group": self.group,
            **self.fit.as_dict(),
            "window": self.window,
            "n_failed": self.n_failed,
            "failures": self.failures,
        }
        if self.top1_share is not None:
            out.update(
                top1_share=self.top1_share,
                heavy_tail=self.heavy_tail,
                median_path=self.median_path.as_dict() if self.median_path else None,
            )
        return out


@dataclass
class EquivalenceResult:
    """The equivalence verdicts of the levels of `compare` against its reference, within one group of the others."""

    group: dict[str, Any]
    levels: list[Equivalence]

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "levels": [e.as_dict() for e in self.levels]}


@dataclass
class TrendResult:
    """The trend of the slope across the levels of `trend` within one group of the other group_by columns."""

    group: dict[str, Any]
    trend: Trend

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, **self.trend.as_dict()}


@dataclass
class Comparison:
    """Slope differences across the levels of `compare` within one group of the other group_by columns."""

    group: dict[str, Any]
    differences: list[SlopeDifference]
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "differences": [d.as_dict() for d in self.differences], "verdict": self.verdict}


@dataclass
class RateResult:
    spec: RateSpec
    groups: list[GroupFit] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    equivalence: list[EquivalenceResult] = field(default_factory=list)
    trends: list[TrendResult] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        s = self.spec
        out = {"title": s.title, **s.model_dump(mode="json", exclude={"compare"})}
        if self.error is not None:
            return {**out, "error": self.error}
        out["groups"] = [g.to_dict() for g in self.groups]
        if s.compare:  # (written only where there is a comparison: figure scripts look entries up by their fields)
            out.update(compare=s.compare, comparisons=[c.to_dict() for c in self.comparisons])
        if s.test == "equivalence":
            out["equivalence"] = [e.to_dict() for e in self.equivalence]
        if s.trend:
            out["trends"] = [t.to_dict() for t in self.trends]
        return out


@dataclass
class CheckResult:
    spec: CheckSpec
    n_runs: int = 0
    n_true: int = 0
    error: str | None = None

    @property
    def verdict(self) -> str | None:
        """'pass' only when every run of the window satisfies it (and there is at least one)."""
        return None if self.error else "pass" if self.n_runs and self.n_true == self.n_runs else "fail"

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.spec.name, "column": self.spec.column}
        return (
            {**out, "error": self.error}
            if self.error
            else {**out, "n_runs": self.n_runs, "n_true": self.n_true, "verdict": self.verdict}
        )


@dataclass
class Report:
    study: str
    n_runs: int
    n_failed: int
    rates: list[RateResult]
    checks: list[CheckResult]
    definition: dict[str, Any] | None = None  # which study definition and directory the report read (Study.definition)

    def to_dict(self) -> dict[str, Any]:
        """The form of report.json (figure scripts read it; non-finite numbers are written as null)."""
        out = {
            "study": self.study,
            "n_runs": self.n_runs,
            "n_failed": self.n_failed,
            "rates": [r.to_dict() for r in self.rates],
            "checks": [c.to_dict() for c in self.checks],
        }
        if self.definition is not None:
            out["definition"] = self.definition
        return out

    def fit(
        self, *, y: str, where: dict[str, Any] | None = None, group: dict[str, Any] | None = None, **spec: Any
    ) -> RateFit | None:
        """The fit of the rate of `y` restricted by `where` (and other RateSpec fields, e.g. x_min) in `group`."""
        entries = [
            r
            for r in self.rates
            if r.spec.y == y and r.spec.where == (where or {}) and all(getattr(r.spec, k) == v for k, v in spec.items())
        ]
        if len(entries) != 1:
            raise LookupError(
                f"{len(entries)} rates of y={y!r} where={where or {}} {spec or ''} in the report of {self.study}"
            )
        return next(
            (g.fit for g in entries[0].groups if all(_same(g.group.get(k), v) for k, v in (group or {}).items())), None
        )

    def render(self) -> str:
        """Plain text (report.md)."""
        return render_text(self.to_dict())


def _same(a, b) -> bool:
    """Equal, where a missing value (NaN/None: a column some targets do not have) equals a missing value."""
    missing = lambda v: v is None or (isinstance(v, float) and v != v)  # noqa: E731
    return (missing(a) and missing(b)) or a == b


def _groups(df: pd.DataFrame, cols: list[str]):
    if not cols:
        yield {}, df
        return
    for key, sub in df.groupby(cols, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        yield {c: (v.item() if hasattr(v, "item") else v) for c, v in zip(cols, key, strict=True)}, sub


def _ok_rows(df: pd.DataFrame, where: dict[str, Any], *, failed_too: bool = False) -> pd.DataFrame:
    ok = df[df["status"] == "ok"] if "status" in df and not failed_too else df
    for col, value in where.items():
        ok = ok[ok[col] == value]
    return ok


def _window(df: pd.DataFrame, spec: RateSpec, *, failed_too: bool = False) -> pd.DataFrame:
    """The ok rows of `where` (and the failed ones, with failed_too), cut to the fixed bounds of x (an automatic
    bound is chosen per group later)."""
    ok = _ok_rows(df, spec.where, failed_too=failed_too)
    if isinstance(spec.x_min, int | float):
        ok = ok[ok[spec.x] >= spec.x_min]
    if isinstance(spec.x_max, int | float):
        ok = ok[ok[spec.x] <= spec.x_max]
    return ok


def _auto(spec: RateSpec, sub: pd.DataFrame, y: str) -> tuple[pd.DataFrame, str | None]:
    """The group's rows cut to the automatic window of column y (x_min / x_max: auto), and why."""
    if "auto" not in (spec.x_min, spec.x_max):
        return sub, None
    resolved = sub[spec.resolved].astype(bool).to_numpy() if spec.resolved else None
    lo, hi, why = auto_window(
        sub[spec.x].to_numpy(float),
        sub[y].to_numpy(float),
        seed=sub[spec.seed].to_numpy(),
        resolved=resolved,
        tol=spec.tol,
        log_x=spec.x_scale == "log",
    )
    keep = pd.Series(True, index=sub.index)
    if spec.x_min == "auto":
        keep &= sub[spec.x] >= lo
    if spec.x_max == "auto":
        keep &= sub[spec.x] <= hi
    return sub[keep], why


def _missing(df: pd.DataFrame, cols: list[str]) -> str | None:
    missing = [c for c in cols if c not in df]
    return f"columns not in the table (no finished run has them): {', '.join(missing)}" if missing else None


def rate_result(spec: RateSpec, df: pd.DataFrame) -> RateResult:
    """One declared rate, fitted per group; comparisons across `compare` levels within the other groups."""
    error = _missing(
        df, [spec.x, spec.y, spec.seed, *spec.group_by, *spec.where, *([spec.resolved] if spec.resolved else [])]
    )
    if error:
        return RateResult(spec, error=error)
    data = _window(df, spec)
    result = RateResult(spec)
    prefix = spec.y[: -len("_error")] if spec.y.endswith("_error") else None
    tail = prefix is not None and f"{prefix}_top1_share" in df and f"{prefix}_median" in df
    # every group of the window, one whose runs all failed too: a failure is said where its points are missing
    for key, rows in _groups(_window(df, spec, failed_too=True), spec.group_by):
        whole = rows[rows["status"] == "ok"] if "status" in rows else rows
        exp = expected_slope(spec, key)

        def fit(column: str, sub: pd.DataFrame, exp=exp) -> RateFit:
            resolved = sub[spec.resolved].astype(bool).to_numpy() if spec.resolved else None
            return fit_rate(
                sub[spec.x].to_numpy(float),
                sub[column].to_numpy(float),
                seed=sub[spec.seed].to_numpy(),
                resolved=resolved,
                expected=exp,
                tol=spec.tol if exp is not None else None,
                test="upper_bound" if spec.test == "upper_bound" else "two_sided",
                log_x=spec.x_scale == "log",
            )

        sub, why = _auto(spec, whole, spec.y)
        group = GroupFit(key, fit(spec.y, sub), why, failures=_failures(rows))
        if tail and len(whole):
            group.top1_share = float(whole.groupby(spec.x)[f"{prefix}_top1_share"].mean().max())
            if group.heavy_tail:  # the typical path's rate, in its own window
                group.median_path = fit(f"{prefix}_median", _auto(spec, whole, f"{prefix}_median")[0])
        result.groups.append(group)
    if spec.compare:
        others = [c for c in spec.group_by if c != spec.compare]
        for key, sub in _groups(data, others):
            resolved = sub[spec.resolved].astype(bool).to_numpy() if spec.resolved else None
            diffs = compare_slopes(sub[spec.x], sub[spec.y], sub[spec.compare], seed=sub[spec.seed], resolved=resolved)
            differs = any(d.excludes_zero for d in diffs)
            verdict = f"slope depends on {spec.compare}" if differs else f"no detectable dependence on {spec.compare}"
            result.comparisons.append(Comparison(key, diffs, verdict))
            if spec.test == "equivalence":
                levels = equivalence(
                    sub[spec.x],
                    sub[spec.y],
                    sub[spec.compare],
                    seed=sub[spec.seed],
                    delta=spec.delta,
                    resolved=resolved,
                    reference=spec.reference,
                )
                result.equivalence.append(EquivalenceResult(key, levels))
    if spec.trend:
        others = [c for c in spec.group_by if c != spec.trend]
        for key, sub in _groups(data, others):
            resolved = sub[spec.resolved].astype(bool).to_numpy() if spec.resolved else None
            trend = slope_trend(
                sub[spec.x],
                sub[spec.y],
                sub[spec.trend],
                seed=sub[spec.seed],
                column=spec.trend,
                resolved=resolved,
                log_x=spec.x_scale == "log",
            )
            result.trends.append(TrendResult(key, trend))
    return result


def _failures(rows: pd.DataFrame) -> dict[str, int]:
    """'[stage] reason' -> count of the failed rows, the reason cut at its first ': ' (its numbers follow)."""
    if "status" not in rows:
        return {}
    failed = rows[rows["status"] != "ok"]
    why = [f"[{s}] {str(r).split(': ')[0][:100]}" for s, r in zip(failed["stage"], failed["reason"])]
    return dict(sorted(Counter(why).items(), key=lambda kv: (-kv[1], kv[0])))


def check_result(spec: CheckSpec, df: pd.DataFrame) -> CheckResult:
    """How many ok runs satisfy a declared check."""
    error = _missing(df, [spec.column, *spec.where])
    if error:
        return CheckResult(spec, error=error)
    holds = _ok_rows(df, spec.where)[spec.column].astype(bool)
    return CheckResult(spec, int(len(holds)), int(holds.sum()))


def make_report(study: StudySpec, df: pd.DataFrame, *, definition: dict[str, Any] | None = None) -> Report:
    """Every declared rate and check of the study on its table; `definition` says which study it is."""
    n_failed = int((df["status"] != "ok").sum()) if len(df) else 0
    return Report(
        study.name,
        int(len(df)),
        n_failed,
        [rate_result(s, df) for s in study.rates],
        [check_result(c, df) for c in study.checks],
        definition,
    )


def render_text(report: dict[str, Any]) -> str:
    """A plain-text rendering of a report's JSON form (also written to report.md)."""
    lines = [f"# {report['study']}: {report['n_runs']} runs ({report['n_failed']} failed)", ""]
    if report.get("definition"):
        d = report["definition"]
        sets = "".join(f" --set {o}" for o in d["overrides"]) or " (no overrides)"
        lines[1:1] = [
            f"definition: {d['source']}{sets}, as stored in its results directory {d['directory']} "
            f"({d['written'] or 'not run'}); read {report['n_runs']} finished runs of the {d['planned']} it plans",
            "",
        ]
    for entry in report["rates"]:
        lines.append(f"## {entry['title']}")
        if "error" in entry:
            lines += [f"cannot fit: {entry['error']}", ""]
            continue
        for g in entry["groups"]:
            lines += _render_group(g, entry.get("resolved"))
        for c in entry.get("comparisons", []):
            name = ", ".join(f"{k}={v}" for k, v in c["group"].items()) or "all runs"
            lines.append(f"- across {entry['compare']} ({name}): {c['verdict']}")
            for d in c["differences"]:
                ci = f"[{_num(d['ci_low'])}, {_num(d['ci_high'])}]"
                lines.append(f"    {d['level_a']} - {d['level_b']}: {_num(d['diff'])} {ci} ({d['n_seeds']} seeds)")
        for e in entry.get("equivalence", []):
            name = ", ".join(f"{k}={v}" for k, v in e["group"].items()) or "all runs"
            for lv in e["levels"]:
                one_sided = f"; below +{lv['delta']:g}: {lv['one_sided']}" if lv.get("one_sided") else ""
                lines.append(
                    f"- {entry['compare']}={lv['level']} vs {lv['reference']} ({name}): slope of the log-ratio "
                    f"{_ci(lv['slope'], lv['ci_low'], lv['ci_high'])}, upper half "
                    f"{_ci(lv['upper_slope'], lv['upper_ci_low'], lv['upper_ci_high'])} | within +/- {lv['delta']:g}: "
                    f"{lv['verdict']}{one_sided} ({lv['n_seeds']} seeds)"
                )
                need = _seeds_line(lv.get("seeds_needed"), lv.get("seeds_needed_one_sided"), lv["n_seeds"])
                if need:
                    lines.append(f"    {need}")
        for t in entry.get("trends", []):
            name = ", ".join(f"{k}={v}" for k, v in t["group"].items()) or "all runs"
            slopes = "; ".join(
                f"{lv:g}: {_ci(s['slope'], s['ci_low'], s['ci_high'])}"
                if isinstance(lv, int | float)
                else f"{lv}: {_ci(s['slope'], s['ci_low'], s['ci_high'])}"
                for lv, s in zip(t["levels"], t["slopes"])
            )
            lines.append(f"- slope across {t['column']} ({name}): {slopes} | {t['verdict']}")
            for d in t["differences"]:
                ci = f"[{_num(d['ci_low'])}, {_num(d['ci_high'])}]"
                lines.append(f"    {d['level_a']} - {d['level_b']}: {_num(d['diff'])} {ci}")
        lines.append("")
    if report.get("checks"):
        lines.append("## checks")
        for c in report["checks"]:
            state = (
                f"cannot check: {c['error']}" if "error" in c else f"{c['n_true']}/{c['n_runs']} runs: {c['verdict']}"
            )
            lines.append(f"- {c['name']} ({c['column']}): {state}")
        lines.append("")
    return "\n".join(lines)


def _seeds_line(two_sided: int | None, one_sided: int | None, have: int) -> str:
    """'seeds needed: ...' where a verdict would settle with more seeds at the current mean and spread."""
    parts = []
    if two_sided is not None and two_sided > have:
        parts.append(f"{two_sided} for the equivalence")
    if one_sided is not None and one_sided > have:
        parts.append(f"{one_sided} for the one-sided test")
    return f"seeds needed at this spread: {', '.join(parts)} (has {have})" if parts else ""


def _ci(slope, lo, hi) -> str:
    """A slope and its interval; '[no interval]' where none could be formed (one seed, one point per seed)."""
    if not (_finite(lo) and _finite(hi)):
        return f"{_num(slope)} [no interval]"
    return f"{_num(slope)} [{_num(lo)}, {_num(hi)}]"


def _render_group(g: dict[str, Any], resolved: str | None = None) -> list[str]:
    """A group's fit: slope, CI, constant, counts (and why points were dropped) and verdict; then its window, local
    and half slopes, what would settle a pre-asymptotic rate, and the heavy-tail diagnostic with the median path's
    rate."""
    name = ", ".join(f"{k}={v}" for k, v in g["group"].items()) or "all runs"
    test = "" if g.get("test", "two_sided") == "two_sided" else f" ({g['test'].replace('_', ' ')})"
    exp = "" if g["expected"] is None else f" | expected {g['expected']:+.3f} +/- {g['tol']:.3f}{test}: {g['verdict']}"
    const = f", C = {math.exp(g['intercept']):.3g}" if _finite(g["intercept"]) else ""
    why = f" as not {resolved} or not finite" if resolved and g["n_dropped"] else ""
    failed = ""
    if g.get("n_failed"):
        parts = ", ".join(f"{reason} x{n}" for reason, n in g["failures"].items())
        failed = f"; {g['n_failed']} failed run{'s' if g['n_failed'] > 1 else ''} left out: {parts}"
    lines = [
        f"- {name}: slope {_ci(g['slope'], g['ci_low'], g['ci_high'])}{const} "
        f"({g['n_points']} points, {g['n_dropped']} dropped{why}, {g['n_seeds']} seeds{failed}){exp}"
    ]
    if g.get("window"):
        lines.append(f"    window: {g['window']}")
    if g.get("local"):
        lines.append(
            "    local slopes: " + ", ".join(f"{s['x_lo']:g}-{s['x_hi']:g} {_num(s['slope'])}" for s in g["local"])
        )
    halves = [(k, g.get(f"{k}_half")) for k in ("lower", "upper")]
    if all(h for _, h in halves):
        lines.append(
            "    "
            + "; ".join(
                f"{k} half ({h['x_lo']:g}-{h['x_hi']:g}) {_ci(h['slope'], h['ci_low'], h['ci_high'])}"
                for k, h in halves
            )
        )
    if g["verdict"] == "pre-asymptotic" and not g.get("settle_at"):
        lines.append(
            "    pre-asymptotic: the slope is still moving towards the expected one, and the next x are at the floor "
            "(dropped as unresolved): more x cannot settle it"
        )
    if g.get("settle_at"):
        lines.append(
            f"    pre-asymptotic: the slope is still moving towards {g['expected']:+.3f}; "
            f"x = {', '.join(f'{v:g}' for v in g['settle_at'])} would settle it (convlab refine)"
        )
    elif g["verdict"] in ("inconclusive",) or str(g["verdict"]).startswith("too few seeds"):
        need = g.get("seeds_needed")
        if need is not None and need > g["n_seeds"]:
            lines.append(f"    seeds needed at this spread: {need} (has {g['n_seeds']}; convlab refine adds them)")
    if g.get("heavy_tail"):
        m = g["median_path"]
        lines.append(
            f"    heavy tail: the top 1% of paths carry up to {g['top1_share']:.0%} of the mean square; median path: "
            f"slope {_ci(m['slope'], m['ci_low'], m['ci_high'])}" + (f": {m['verdict']}" if m["verdict"] else "")
        )
    return lines


def _finite(v) -> bool:
    return v is not None and math.isfinite(v)


def _num(v) -> str:
    return f"{v:+.3f}" if _finite(v) else "nan" if v is None or v != v else f"{v:+}"
