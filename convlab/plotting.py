"""Publication figures at column width, deterministic bytes: the shared style and the log-log rate panel.

Figure scripts (figures/*.py) read a study's stored table and report only; they never recompute results.
"""

from __future__ import annotations

import contextlib
import functools
import io
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from scipy import stats  # noqa: E402

from convlab.files import atomic_write_bytes  # noqa: E402
from convlab.study.store import read_record  # noqa: E402
from convlab.study.table import read_table  # noqa: E402

COLUMN_WIDTH = 3.35  # inches: one column of a two-column paper
STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.labelsize": 8,
    "axes.titlesize": 8,
    "legend.fontsize": 6.5,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "lines.linewidth": 1.0,
    "lines.markersize": 3.5,
    "axes.linewidth": 0.6,
    "axes.grid": True,
    "grid.linewidth": 0.3,
    "grid.alpha": 0.5,
    "legend.frameon": False,
    "savefig.dpi": 300,
    "pdf.fonttype": 42,
    "svg.hashsalt": "convlab",
    "figure.constrained_layout.use": True,
}
PALETTE = sns.color_palette("colorblind")


@contextlib.contextmanager
def paper_style():
    with matplotlib.rc_context(STYLE):
        yield


def figure(ncols: int = 1, *, height: float = 2.3, width: float = COLUMN_WIDTH):
    fig, axes = plt.subplots(1, ncols, figsize=(width, height), squeeze=False)
    return fig, axes[0]


def save(fig, out_dir: str | Path, name: str) -> list[Path]:
    """PNG and PDF with no timestamps or tool versions in them: the same table gives the same bytes. Each is drawn
    into memory and written atomically (convlab.files), so a killed figure step leaves the old figure or the new
    one, never a truncated file."""
    out = Path(out_dir)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    metadata = [{"Software": None}, {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None}]
    for path, meta in zip(paths, metadata):
        buf = io.BytesIO()
        fig.savefig(buf, format=path.suffix[1:], metadata=meta)
        atomic_write_bytes(path, buf.getvalue())
    plt.close(fig)
    return paths


def seed_summary(df: pd.DataFrame, x: str, y: str, seed: str = "seed") -> pd.DataFrame:
    """Per x: geometric mean over seeds and a 95% t interval on the log scale."""
    rows = []
    for xv, sub in df.groupby(x, sort=True):
        logs = np.log(sub[y].to_numpy(float))
        logs = logs[np.isfinite(logs)]
        if logs.size == 0:
            continue
        half = stats.t.ppf(0.975, logs.size - 1) * logs.std(ddof=1) / np.sqrt(logs.size) if logs.size > 1 else 0.0
        rows.append(
            {x: xv, "mean": np.exp(logs.mean()), "lo": np.exp(logs.mean() - half), "hi": np.exp(logs.mean() + half)}
        )
    return pd.DataFrame(rows)


SKIPPED: list[str] = []  # panels a figure script could not draw in this process, each with its reason


def skip_on_error(draw):
    """A panel that cannot be drawn (a broken group, a missing column) is left with a one-line reason on its axes and
    in SKIPPED (the sweep reports it and exits 1), instead of taking the whole figure and study down with it."""

    @functools.wraps(draw)
    def guarded(ax, *args, **kwargs):
        try:
            return draw(ax, *args, **kwargs)
        except Exception as err:  # noqa: BLE001 - any failure of one panel is reported, never raised
            reason = f"{draw.__name__}({kwargs.get('label', '')}): {type(err).__name__}: {err}"
            SKIPPED.append(reason)
            ax.text(0.5, 0.5, f"not drawn:\n{type(err).__name__}", transform=ax.transAxes, ha="center", fontsize=5)

    return guarded


@skip_on_error
def rate_panel(
    ax,
    df: pd.DataFrame,
    fit: dict | None,
    *,
    x: str,
    y: str,
    color,
    label: str,
    resolved: str | None = None,
    seed: str = "seed",
    show_reference: bool = True,
    x_scale: str = "log",
) -> None:
    """Seed means with 95% CIs (hollow where unresolved), the fitted rate with its slope CI as a band, and the
    expected slope as a dashed grey line through the same centre. x_scale 'log': power law C x^slope on
    log-log axes; 'linear': exponential C e^{slope x} on semilog axes (a fit made with x_scale: linear)."""
    ok = df[df["status"] == "ok"] if "status" in df else df
    summary = seed_summary(ok, x, y, seed)
    if summary.empty:
        return
    res = (
        ok.groupby(x)[resolved].mean().reindex(summary[x]).to_numpy() >= 0.5
        if resolved
        else np.ones(len(summary), bool)
    )
    yerr = [summary["mean"] - summary["lo"], summary["hi"] - summary["mean"]]
    ax.errorbar(summary[x], summary["mean"], yerr=yerr, fmt="none", ecolor=color, elinewidth=0.7, capsize=1.5)
    ax.plot(summary[x][res], summary["mean"][res], "o", color=color)
    ax.plot(summary[x][~res], summary["mean"][~res], "o", mfc="white", color=color)
    ax.set_yscale("log")
    if x_scale == "log":
        ax.set_xscale("log")
        _log_ticks(ax, ok[x].to_numpy(float))
    if not fitted(fit):
        ax.plot([], [], "o", color=color, label=label)
        return
    if x_scale == "log":
        xs = np.geomspace(fit["x_min"], fit["x_max"], 50)
        centre = np.sqrt(fit["x_min"] * fit["x_max"])
        law = lambda slope: y_centre * (xs / centre) ** slope  # noqa: E731
        y_centre = np.exp(fit["intercept"]) * centre ** fit["slope"]
    else:
        xs = np.linspace(fit["x_min"], fit["x_max"], 50)
        centre = 0.5 * (fit["x_min"] + fit["x_max"])
        law = lambda slope: y_centre * np.exp(slope * (xs - centre))  # noqa: E731
        y_centre = np.exp(fit["intercept"] + fit["slope"] * centre)
    # report.json writes an infinite CI limit (too few points or seeds for one) as null
    lo, hi = (
        (-np.inf if fit["ci_low"] is None else fit["ci_low"]),
        (np.inf if fit["ci_high"] is None else fit["ci_high"]),
    )
    ax.plot(xs, law(fit["slope"]), "-", color=color, label=f"{label} {fit['slope']:+.2f} [{lo:+.2f},{hi:+.2f}]")
    # The band is cut at a factor 3 around the data, so that one wide CI (few seeds) cannot squash the panel.
    floor, ceil = summary["lo"].min() / 3, summary["hi"].max() * 3
    with np.errstate(over="ignore", invalid="ignore"):
        band = [np.nan_to_num(np.clip(law(v), floor, ceil), nan=floor) for v in (lo, hi)]
    ax.fill_between(xs, *band, color=color, alpha=0.15, lw=0)
    if show_reference and fit.get("expected") is not None:
        ax.plot(xs, law(fit["expected"]), "--", color="0.45", lw=0.8)


@skip_on_error
def local_slope_panel(ax, fit: dict | None, *, color, label: str, offset: float = 1.0) -> None:
    """The local slopes of a fitted group between consecutive x (report.json's `local`), each at the geometric middle
    of its two x with its CI over seeds (cut to the axis), and the expected slope as a dashed grey line."""
    if not fit or not fit.get("local"):
        return
    local = fit["local"]
    mid = np.array([np.sqrt(s["x_lo"] * s["x_hi"]) * offset for s in local])
    slope = np.array([s["slope"] for s in local])
    lo = np.array([np.nan if s["ci_low"] is None else s["ci_low"] for s in local])
    hi = np.array([np.nan if s["ci_high"] is None else s["ci_high"] for s in local])
    err = [np.clip(np.nan_to_num(slope - lo, nan=0.0), 0, 5), np.clip(np.nan_to_num(hi - slope, nan=0.0), 0, 5)]
    ax.errorbar(mid, slope, yerr=err, fmt="o-", color=color, ms=2.5, elinewidth=0.6, capsize=1.2, label=label)
    if fit.get("expected") is not None:
        ax.axhline(fit["expected"], color="0.45", ls="--", lw=0.8)
    ax.set_xscale("log")


def solver_rate_figure(
    df: pd.DataFrame,
    report: dict,
    *,
    panel: str,
    values: list,
    solvers: list[str],
    title,
    width: float = COLUMN_WIDTH,
    height: float = 2.3,
    handlelength: float = 1.0,
    where: dict | None = None,
):
    """Coupled error against K, one panel per value of the column `panel`, one fitted power law per solver (the rate
    of coupled_error where solver is that solver and `where` holds, grouped by `panel`); `title(value)` names a
    panel. Below, the local slopes between consecutive K with their CIs: where they settle on the declared order,
    the rate has started."""
    df = select(df, where or {})
    fig, grid = plt.subplots(
        2,
        len(values),
        figsize=(width, height * 1.55),
        squeeze=False,
        gridspec_kw={"height_ratios": [1.6, 1]},
        sharex="col",
    )
    for col, value in enumerate(values):
        ax, below = grid[0, col], grid[1, col]
        for i, (color, solver) in enumerate(zip(PALETTE, solvers)):
            sub = df[(df[panel] == value) & (df["solver"] == solver)]
            fit = fit_for(report, y="coupled_error", where={**(where or {}), "solver": solver}, group={panel: value})
            rate_panel(ax, sub, fit, x="K", y="coupled_error", color=color, label=solver, resolved="coupled_resolved")
            local_slope_panel(below, fit, color=color, label=solver, offset=1.06**i)
        ax.set_title(title(value))
        ax.set_xlabel("")
        below.set_xlabel("steps $K$")
        ax.legend(loc="lower left", fontsize=5.5, handlelength=handlelength)
    grid[0, 0].set_ylabel(label("coupled_error"))
    grid[1, 0].set_ylabel("local slope")
    return fig


def _log_ticks(ax, xs: np.ndarray) -> None:
    """Readable log x ticks: the data's own values when they span less than two decades (where the default
    minor labels collide), decades only otherwise."""
    values = np.unique(xs[np.isfinite(xs) & (xs > 0)])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    if values.size and values.max() / values.min() < 100:
        ax.set_xticks(values, [f"{v:g}" for v in values])


def load_results(study_dir: str | Path) -> tuple[pd.DataFrame, dict]:
    """A study's stored table and rate report (written by `convlab sweep` / `collect` / `report`); Damaged naming
    the file when either is unreadable."""
    study_dir = Path(study_dir)
    report_path = study_dir / "report.json"
    report = read_record(report_path, required=("rates",)) if report_path.exists() else {"rates": []}
    return read_table(study_dir), report


def fitted(fit: dict | None) -> bool:
    """Whether a report group holds a slope: report.json stores one that could not be fitted as null, not NaN."""
    return bool(fit) and fit.get("slope") is not None and bool(np.isfinite(fit["slope"]))


def fit_for(report: dict, *, y: str, where: dict | None = None, group: dict | None = None, **spec) -> dict | None:
    """The fitted group of the rate of `y` restricted by `where` (and any other rate field given, e.g. x_min) whose
    group matches `group` (keys the rate does not group by are ignored); None when that group has no fit. A rate
    the report does not declare is an error, not a silently missing line: LookupError naming what was asked for."""
    entries = [
        e
        for e in report.get("rates", [])
        if e.get("y") == y and (e.get("where") or {}) == (where or {}) and all(e.get(k) == v for k, v in spec.items())
    ]
    if len(entries) != 1:
        raise LookupError(
            f"the report of {report.get('study')} has {len(entries)} rates of y={y!r} where={where or {}}"
            + (f" {spec}" if spec else "")
        )
    # a column the rate does not group by does not split it: its one pooled fit holds for every value of it
    for g in entries[0].get("groups", []):
        if all(same_value(g["group"][k], v) for k, v in (group or {}).items() if k in g["group"]):
            return g
    return None


def label(column: str) -> str:
    """The axis label of a metric, from its declaration (convlab.runs); the column name for anything else."""
    from convlab.runs import metric

    try:
        return metric(column).label
    except KeyError:
        return column


def levels(df: pd.DataFrame, cols: list[str]) -> list[list]:
    """The distinct value combinations of `cols`, sorted (a missing value, NaN, where a column does not apply)."""
    return df[cols].drop_duplicates().sort_values(cols).to_numpy().tolist()


def select(df: pd.DataFrame, group: dict) -> pd.DataFrame:
    """The rows whose columns equal the group's values, a missing value matching a missing value."""
    keep = pd.Series(True, index=df.index)
    for col, value in group.items():
        keep &= df[col].map(lambda v, value=value: same_value(v, value))
    return df[keep]


def same_value(a, b) -> bool:
    """Equal, where a missing value (NaN/None: a column some targets do not have) equals a missing value."""
    missing = lambda v: v is None or (isinstance(v, float) and v != v)  # noqa: E731
    return (missing(a) and missing(b)) or a == b


def slug(text: str) -> str:
    """A file-name-safe form of a rate's name: lower case, runs of other characters as one '-'."""
    out = "".join(c if c.isalnum() else "-" for c in text.lower())
    return "-".join(p for p in out.split("-") if p)[:60] or "rate"


def group_label(group: dict) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in group.items()) or "all runs"


def rate_figure(df: pd.DataFrame, rate: dict):
    """The standard figure of one rate of report.json: above, the error against x per group (seed means with
    95% intervals, the fitted law with its slope interval as a band, the expected slope dashed); below, the local
    slopes between consecutive x. A rate that compares a column across levels (`compare`) gets one panel per group
    with a line per level instead (its verdicts are on the log-ratios, which the report gives)."""
    rows = select(df, rate.get("where") or {})
    x, y, groups = rate["x"], rate["y"], rate.get("groups", [])
    x_scale = rate.get("x_scale", "log")
    if rate.get("compare"):
        column = rate["compare"]
        panels = [g["group"] for g in groups] or [{}]
        fig, axes = figure(len(panels), height=2.3, width=max(COLUMN_WIDTH, 1.9 * len(panels)))
        for ax, group in zip(axes, panels):
            sub = select(rows, group)
            for color, level in zip(PALETTE * 4, sorted(sub[column].dropna().unique())):
                rate_panel(
                    ax,
                    sub[sub[column] == level],
                    None,
                    x=x,
                    y=y,
                    color=color,
                    label=f"{column}={level}",
                    resolved=rate.get("resolved"),
                    seed=rate.get("seed", "seed"),
                    x_scale=x_scale,
                )
            ax.set(title=group_label(group), xlabel=label(x))
            ax.legend(fontsize=5)
        axes[0].set_ylabel(label(y))
        fig.suptitle(rate.get("title") or rate.get("name") or y, fontsize=8)
        return fig
    fig, (top, below) = plt.subplots(
        2, 1, figsize=(COLUMN_WIDTH, 2.3 * 1.55), gridspec_kw={"height_ratios": [1.6, 1]}, sharex=True
    )
    for i, (color, g) in enumerate(zip(PALETTE * 4, groups or [{"group": {}}])):
        sub = select(rows, g["group"])
        rate_panel(
            top,
            sub,
            g if "slope" in g else None,
            x=x,
            y=y,
            color=color,
            label=group_label(g["group"]),
            resolved=rate.get("resolved"),
            seed=rate.get("seed", "seed"),
            x_scale=x_scale,
        )
        local_slope_panel(below, g, color=color, label=group_label(g["group"]), offset=1.04**i)
    top.set(title=rate.get("title") or rate.get("name") or y, ylabel=label(y))
    top.legend(fontsize=5)
    below.set(xlabel=label(x), ylabel="local slope")
    if x_scale == "log" and not rows.empty:
        _log_ticks(below, rows[x].to_numpy(float))
    return fig


def rate_figures(study_dir: str | Path, name: str) -> list[Path]:
    """The standard figures of a study with no figure script: one per rate of its report (rate_figure), written
    to <study_dir>/figures/<name>_<rate>.png/.pdf."""
    df, report = load_results(study_dir)
    paths: list[Path] = []
    used: set[str] = set()
    with paper_style():
        for i, rate in enumerate(report.get("rates", []), 1):
            stem = f"{name}_{slug(rate.get('name') or rate.get('title') or rate['y'])}"
            stem = f"{stem}-{i}" if stem in used else stem  # two rates of one title: two files
            used.add(stem)
            paths += save(rate_figure(df, rate), Path(study_dir) / "figures", stem)
    return paths
