"""Figures of studies/manifold_dim.yaml.

manifold_dim.(png|pdf): the teacher's flow error against n, one row per estimator, one column per intrinsic
dimension d, one curve per ambient D (seed means with 95% CIs, the fitted rate with its CI band, the bound
n^{-1/(d+5)} dashed). Curves that coincide across D are the d-only claim; hollow points are runs left out of the
fit (optimisation-limited networks).
manifold_dim_ratio.(png|pdf): the paired log-ratio log(err_D / err_{D0}) against n (D0 the smallest D of the
column), mean over seeds with its 95% t interval, and the equivalence verdict of its slope (margin +/- delta).

    python figures/manifold_dim.py results/manifold_dim
"""

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from convlab.metrics.rates import t_interval
from convlab.plotting import COLUMN_WIDTH, PALETTE, fit_for, label, load_results, paper_style, rate_panel, save, select

# (row title, the rows of the estimator, its rates' `where`, the column its fits are resolved by)
ESTIMATORS = [
    ("control (identity)", {"teacher.clean": True}, {"teacher.clean": True}, None),
    (
        "kernel, $S^d$",
        {"target.name": "uniform_sphere", "teacher.kind": "kernel", "teacher.clean": False},
        {"target.name": "uniform_sphere", "teacher.kind": "kernel", "teacher.clean": False},
        None,
    ),
    ("kernel, curved $T^d$", {"target.name": "curved_torus"}, {"target.name": "curved_torus"}, None),
    ("neural, converged runs", {"teacher.kind": "trained"}, {"teacher.kind": "trained"}, "teacher_converged"),
]
Y, X = "teacher_flow_error", "teacher.n"


def main(study_dir):
    df, report = load_results(study_dir)
    df = df[df["status"] == "ok"]
    rows = [(title, rows, where, res) for title, rows, where, res in ESTIMATORS if not select(df, rows).empty]
    ds = sorted(df["target.d"].unique())
    out = []
    with paper_style():
        fig, axes = plt.subplots(
            len(rows), len(ds), figsize=(2 * COLUMN_WIDTH, 1.55 * len(rows) + 0.3), squeeze=False, sharex=True
        )
        for (title, keep, where, resolved), ax_row in zip(rows, axes):
            sub = select(df, keep)
            for ax, d in zip(ax_row, ds):
                at_d = sub[sub["target.d"] == d]
                if at_d.empty:
                    ax.set_axis_off()
                    ax.text(0.5, 0.5, f"no runs at d = {d}", transform=ax.transAxes, ha="center", fontsize=6)
                    continue
                for D, color in zip(sorted(at_d["target.D"].unique()), PALETTE):
                    fit = _fit(report, where, resolved, {"target.d": d, "target.D": D})
                    rate_panel(
                        ax, at_d[at_d["target.D"] == D], fit, x=X, y=Y, color=color, label=f"D={D}", resolved=resolved
                    )
                ax.set_title(f"{title}, d = {d}", fontsize=6)
                ax.legend(loc="lower left", fontsize=4.5, handlelength=1.0)
            ax_row[0].set_ylabel(label(Y), fontsize=6)
        for ax in axes[-1]:
            ax.set_xlabel("sample size $n$")
        out += save(fig, Path(study_dir) / "figures", "manifold_dim")

        fig, axes = plt.subplots(
            len(rows), len(ds), figsize=(2 * COLUMN_WIDTH, 1.45 * len(rows) + 0.3), squeeze=False, sharex=True
        )
        for (title, keep, where, resolved), ax_row in zip(rows, axes):
            sub = select(df, keep)
            if resolved:
                sub = sub[sub[resolved].astype(bool)]
            for ax, d in zip(ax_row, ds):
                at_d = sub[sub["target.d"] == d]
                Ds = sorted(at_d["target.D"].unique())
                if len(Ds) < 2:
                    ax.set_axis_off()
                    ax.text(0.5, 0.5, f"fewer than two D at d = {d}", transform=ax.transAxes, ha="center", fontsize=6)
                    continue
                verdicts = _equivalence(report, where, d)
                for D, color in zip(Ds[1:], PALETTE[1:]):
                    _ratio_panel(ax, at_d, Ds[0], D, color, verdicts.get(D))
                ax.axhline(0.0, color="0.5", lw=0.6)
                ax.set_xscale("log")
                ax.set_title(f"{title}, d = {d}", fontsize=6)
                ax.legend(loc="best", fontsize=4.5, handlelength=1.0)
            ax_row[0].set_ylabel(r"$\log(\mathrm{err}_D / \mathrm{err}_{D_0})$", fontsize=6)
        for ax in axes[-1]:
            ax.set_xlabel("sample size $n$")
        out += save(fig, Path(study_dir) / "figures", "manifold_dim_ratio")
    return out


def _fit(report, where, resolved, group):
    """The estimator's fit against the bound; None for the control, which has none (it is an identity check)."""
    if where.get("teacher.clean"):
        return None
    spec = {"test": "upper_bound", **({"resolved": resolved} if resolved else {})}
    return fit_for(report, y=Y, where=where, group=group, **spec)


def _equivalence(report, where, d) -> dict:
    """{D: the Equivalence entry of D against the reference} for the estimator's equivalence rate at d."""
    for entry in report.get("rates", []):
        if entry.get("test") == "equivalence" and entry.get("y") == Y and (entry.get("where") or {}) == where:
            for e in entry.get("equivalence", []):
                if e["group"].get("target.d") == d:
                    return {lv["level"]: lv for lv in e["levels"]}
    return {}


def _ratio_panel(ax, df, D0, D, color, verdict) -> None:
    """Mean over seeds of log(err_D / err_D0) per n (pairs of the same seed and n), with a 95% t interval."""
    ref = df[df["target.D"] == D0].set_index(["seed", X])[Y]
    other = df[df["target.D"] == D].set_index(["seed", X])[Y]
    ratio = np.log(other / ref.reindex(other.index)).dropna().reset_index()
    xs, means, halves = [], [], []
    for n, grp in ratio.groupby(X):
        mean, lo, hi = t_interval(grp[Y].to_numpy(float), 0.95)
        xs.append(n)
        means.append(mean)
        halves.append(hi - mean if np.isfinite(hi) else 0.0)  # one seed: no interval
    text = f"D={D} vs {D0}"
    if verdict and verdict["slope"] is not None and verdict["ci_low"] is not None:
        text += (
            f": slope {verdict['slope']:+.3f} [{verdict['ci_low']:+.3f},{verdict['ci_high']:+.3f}] {verdict['verdict']}"
        )
    elif verdict:
        text += f": {verdict['verdict']}"
    ax.errorbar(xs, means, yerr=halves, fmt="o-", color=color, capsize=1.5, elinewidth=0.7, lw=0.7, label=text)


if __name__ == "__main__":
    print(*main(sys.argv[1]), sep="\n")
