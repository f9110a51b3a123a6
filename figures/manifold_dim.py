"""Figures of studies/manifold_dim.yaml.

manifold_dim.(png|pdf): fitted slope of the teacher's flow error in n against the intrinsic dimension d, one
marker per ambient D (with its 95% CI), the intrinsic prediction -1/(d+3) drawn, and the ambient
predictions -1/(D+3) as dotted levels in each D's colour (CIs wider than the axis are cut at its edge).
manifold_dim_curves: the error against n, one panel per d (full width).

    python figures/manifold_dim.py results/manifold_dim
"""

import sys
from pathlib import Path

import numpy as np

from convlab.plotting import PALETTE, figure, fit_for, fitted, label, load_results, paper_style, rate_panel, save

RATE = {"y": "teacher_flow_error", "compare": "target.D", "test": "upper_bound"}  # the intrinsic rate


def main(study_dir):
    df, report = load_results(study_dir)
    ds, Ds = sorted(df["target.d"].unique()), sorted(df["target.D"].unique())
    out = []
    with paper_style():
        fig, (ax,) = figure(1, height=2.3)
        dd = np.linspace(min(ds), max(ds), 100)
        ax.plot(dd, -1 / (dd + 3), "--", color="0.3", lw=0.9, label="$-1/(d+3)$")
        for j, (D, color) in enumerate(zip(Ds, PALETTE)):
            ax.axhline(-1 / (D + 3), color=color, lw=0.6, ls=":")
            fits = [fit_for(report, **RATE, group={"target.d": d, "target.D": D}) for d in ds]
            keep = [(d, f) for d, f in zip(ds, fits) if fitted(f)]
            if not keep:
                continue
            x = np.array([d for d, _ in keep], float) * (1 + 0.04 * (j - (len(Ds) - 1) / 2))  # side by side
            s = np.array([f["slope"] for _, f in keep])
            lo, hi = np.array([f["ci_low"] for _, f in keep]), np.array([f["ci_high"] for _, f in keep])
            ax.errorbar(
                x,
                s,
                yerr=[np.clip(s - lo, 0, None), np.clip(hi - s, 0, None)],
                fmt="o",
                color=color,
                capsize=1.5,
                elinewidth=0.7,
                label=f"$D = {D}$",
            )
        # Axis from the slopes and predictions; a CI wider than that (3 seeds can give one) is cut at the edge.
        bottom = min(
            [-1 / (min(ds) + 3)]
            + [
                f["slope"]
                for D in Ds
                for d in ds
                if fitted(f := fit_for(report, **RATE, group={"target.d": d, "target.D": D}))
            ]
        )
        ax.set_ylim(bottom - 0.12, 0.03)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ds, [str(d) for d in ds])
        ax.set_xlabel("intrinsic dimension $d$")
        ax.set_ylabel("fitted slope in $n$")
        ax.legend(loc="lower right", fontsize=6, ncols=2)
        out += save(fig, Path(study_dir) / "figures", "manifold_dim")

        fig, axes = figure(len(ds), height=2.0, width=7.0)
        for ax, d in zip(axes, ds):
            for D, color in zip(Ds, PALETTE):
                sub = df[(df["target.d"] == d) & (df["target.D"] == D)]
                rate_panel(
                    ax,
                    sub,
                    fit_for(report, **RATE, group={"target.d": d, "target.D": D}),
                    x="teacher.n",
                    y="teacher_flow_error",
                    color=color,
                    label=f"D={D}",
                )
            ax.set_title(f"$S^{{{d}}}$, expected slope {-1 / (d + 3):+.3f}")
            ax.set_xlabel("sample size $n$")
            ax.legend(loc="lower left", fontsize=5.5, handlelength=1.0)
        axes[0].set_ylabel(label("teacher_flow_error"))
        out += save(fig, Path(study_dir) / "figures", "manifold_dim_curves")
    return out


if __name__ == "__main__":
    print(*main(sys.argv[1]), sep="\n")
