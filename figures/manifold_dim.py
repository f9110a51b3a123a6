"""Figures of studies/manifold_dim.yaml.

manifold_dim.(png|pdf): error against n, one row per estimator (the control, the kernel on S^d, the kernel on the
curved torus, the neural teacher, the neural one-step generator), one column per intrinsic dimension d, one curve
per ambient D (seed means with 95% CIs, the fitted rate with its CI band, the bound n^{-1/(d+5)} dashed). Curves
that coincide across D are the d-only claim.
manifold_dim_ratio.(png|pdf): the paired log-ratio log(err_D / err_16) against n, mean over seeds with its 95% t
interval, and the verdicts of its slope: one-sided (not slower by more than delta) and two-sided (within +/- delta).
manifold_dim_trend.(png|pdf): the n-slope per d, per estimator and D, with its 95% interval, beside the empirical
measure's W2 rate (-1/2 for d <= 2, -1/d beyond) and the bound -1/(d+5).

    python figures/manifold_dim.py results/manifold_dim
"""

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from convlab.metrics.rates import t_interval
from convlab.plotting import COLUMN_WIDTH, PALETTE, fit_for, label, load_results, paper_style, rate_panel, save, select

KERNEL = {"target.name": "uniform_sphere", "teacher.kind": "kernel", "teacher.clean": False}
NEURAL = {"teacher.kind": "trained"}
# (row title, the rows of the estimator, its rates' `where`, the metric)
ESTIMATORS = [
    ("control (identity)", {"teacher.clean": True}, {"teacher.clean": True}, "teacher_flow_error"),
    ("kernel, $S^d$", KERNEL, KERNEL, "teacher_flow_error"),
    ("kernel, curved $T^d$", {"target.name": "curved_torus"}, {"target.name": "curved_torus"}, "teacher_flow_error"),
    ("neural teacher", NEURAL, NEURAL, "teacher_flow_error"),
    ("neural generator", NEURAL, NEURAL, "student_e2e_error"),
]
X, D0 = "teacher.n", 16


def main(study_dir):
    df, report = load_results(study_dir)
    df = df[df["status"] == "ok"]
    rows = [(title, keep, where, y) for title, keep, where, y in ESTIMATORS if not select(df, keep).empty]
    ds = sorted(df["target.d"].unique())
    out = []
    with paper_style():
        fig, axes = plt.subplots(
            len(rows), len(ds), figsize=(2 * COLUMN_WIDTH, 1.5 * len(rows) + 0.3), squeeze=False, sharex=True
        )
        for (title, keep, where, y), ax_row in zip(rows, axes):
            sub = select(df, keep)
            for ax, d in zip(ax_row, ds):
                at_d = sub[sub["target.d"] == d]
                if at_d.empty:
                    _empty(ax, f"no runs at d = {d}")
                    continue
                for D, color in zip(sorted(at_d["target.D"].unique()), PALETTE):
                    fit = _bound(report, y, where, {"target.d": d, "target.D": D})
                    rate_panel(ax, at_d[at_d["target.D"] == D], fit, x=X, y=y, color=color, label=f"D={D}")
                ax.set_title(f"{title}, d = {d}", fontsize=6)
                ax.legend(loc="lower left", fontsize=4.5, handlelength=1.0)
            ax_row[0].set_ylabel(label(y), fontsize=5.5)
        for ax in axes[-1]:
            ax.set_xlabel("sample size $n$")
        out += save(fig, Path(study_dir) / "figures", "manifold_dim")

        fig, axes = plt.subplots(
            len(rows), len(ds), figsize=(2 * COLUMN_WIDTH, 1.45 * len(rows) + 0.3), squeeze=False, sharex=True
        )
        for (title, keep, where, y), ax_row in zip(rows, axes):
            sub = select(df, keep)
            for ax, d in zip(ax_row, ds):
                at_d = sub[sub["target.d"] == d]
                Ds = sorted(at_d["target.D"].unique())
                if D0 not in Ds or len(Ds) < 2:
                    _empty(ax, f"no D = {D0} and another D at d = {d}")
                    continue
                verdicts = _equivalence(report, y, where, d)
                for D, color in zip([D for D in Ds if D != D0], PALETTE[1:]):
                    _ratio_panel(ax, at_d, y, D, color, verdicts.get(D))
                ax.axhline(0.0, color="0.5", lw=0.6)
                ax.set_xscale("log")
                ax.set_title(f"{title}, d = {d}", fontsize=6)
                ax.legend(loc="best", fontsize=4.2, handlelength=1.0)
            ax_row[0].set_ylabel(rf"$\log(\mathrm{{err}}_D / \mathrm{{err}}_{{{D0}}})$", fontsize=6)
        for ax in axes[-1]:
            ax.set_xlabel("sample size $n$")
        out += save(fig, Path(study_dir) / "figures", "manifold_dim_ratio")

        trends = [(title, where, y) for title, _, where, y in rows if _trend_entry(report, y, where)]
        if trends:
            fig, axes = plt.subplots(1, len(trends), figsize=(2 * COLUMN_WIDTH, 1.9), squeeze=False)
            for (title, where, y), ax in zip(trends, axes[0]):
                _trend_panel(ax, _trend_entry(report, y, where))
                ax.set_title(title, fontsize=6)
            axes[0][0].set_ylabel("slope in $n$", fontsize=6)
            out += save(fig, Path(study_dir) / "figures", "manifold_dim_trend")
    return out


def _empty(ax, text: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", fontsize=6)


def _bound(report, y, where, group):
    """The estimator's fit against the bound; None for the control, which has none (it is an identity check)."""
    if where.get("teacher.clean"):
        return None
    return fit_for(report, y=y, where=where, group=group, test="upper_bound")


def _rate(report, y, where, **spec) -> dict | None:
    for entry in report.get("rates", []):
        if (
            entry.get("y") == y
            and (entry.get("where") or {}) == where
            and all(entry.get(k) == v for k, v in spec.items())
        ):
            return entry
    return None


def _equivalence(report, y, where, d) -> dict:
    """{D: the Equivalence entry of D against the reference} for the estimator's equivalence rate at d."""
    entry = _rate(report, y, where, test="equivalence") or {}
    for e in entry.get("equivalence", []):
        if e["group"].get("target.d") == d:
            return {lv["level"]: lv for lv in e["levels"]}
    return {}


def _trend_entry(report, y, where) -> dict | None:
    entry = _rate(report, y, where, trend="target.d")
    return entry if entry and entry.get("trends") else None


def _ratio_panel(ax, df, y, D, color, verdict) -> None:
    """Mean over seeds of log(err_D / err_16) per n (pairs of the same seed and n), with a 95% t interval."""
    ref = df[df["target.D"] == D0].set_index(["seed", X])[y]
    other = df[df["target.D"] == D].set_index(["seed", X])[y]
    ratio = np.log(other / ref.reindex(other.index)).dropna().reset_index()
    xs, means, halves = [], [], []
    for n, grp in ratio.groupby(X):
        mean, lo, hi = t_interval(grp[y].to_numpy(float), 0.95)
        xs.append(n)
        means.append(mean)
        halves.append(hi - mean if np.isfinite(hi) else 0.0)  # one seed: no interval
    text = f"D={D}"
    if verdict and verdict["slope"] is not None and verdict["ci_low"] is not None:
        text += (
            f": {verdict['slope']:+.3f} [{verdict['ci_low']:+.3f},{verdict['ci_high']:+.3f}] "
            f"{verdict.get('one_sided', '')} / {verdict['verdict']}"
        )
    elif verdict:
        text += f": {verdict['verdict']}"
    ax.errorbar(xs, means, yerr=halves, fmt="o-", color=color, capsize=1.5, elinewidth=0.7, lw=0.7, label=text)


def _trend_panel(ax, entry: dict) -> None:
    """The n-slope per d (per D: one colour each) with its interval, the empirical measure's rate and the bound; a D
    that only one d has (D = d + 1) has no trend to show."""
    trends = [t for t in entry["trends"] if len(t["levels"]) >= 2]
    shifts = 0.08 * (np.arange(len(trends)) - (len(trends) - 1) / 2)
    for t, color, shift in zip(trends, PALETTE, shifts):
        levels = np.array(t["levels"], float)
        slopes = np.array([s["slope"] for s in t["slopes"]])
        lo = np.array([np.nan if s["ci_low"] is None else s["ci_low"] for s in t["slopes"]])
        hi = np.array([np.nan if s["ci_high"] is None else s["ci_high"] for s in t["slopes"]])
        err = [np.nan_to_num(slopes - lo, nan=0.0), np.nan_to_num(hi - slopes, nan=0.0)]
        name = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in t["group"].items())
        ax.errorbar(
            levels + shift, slopes, yerr=err, fmt="o", color=color, ms=2.5, capsize=1.5, label=f"{name}: {t['verdict']}"
        )
    ds = np.linspace(1, max(max(t["levels"]) for t in entry["trends"]), 50)
    ax.plot(ds, -1 / np.maximum(2, ds), "--", color="0.45", lw=0.8, label="empirical measure")
    ax.plot(ds, -1 / (ds + 5), ":", color="0.45", lw=0.8, label="bound $-1/(d+5)$")
    ax.set_xlabel("intrinsic dimension $d$")
    ax.legend(loc="best", fontsize=4.2, handlelength=1.0)


if __name__ == "__main__":
    print(*main(sys.argv[1]), sep="\n")
