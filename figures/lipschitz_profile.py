"""Figure of studies/lipschitz_profile.yaml: L_t against 1 - t, one panel per schedule; unsmoothed targets
(filled) blow up at the fitted rate, smoothed ones (open) level off; grey dots are what draws of p_t alone see.

    python figures/lipschitz_profile.py results/lipschitz_profile
"""

import sys
from pathlib import Path

from convlab.plotting import COLUMN_WIDTH, PALETTE, figure, fit_for, label, load_results, paper_style, rate_panel, save

INTERPOLANTS = ["linear", "trig", "follmer"]


def _label(row) -> str:
    return f"{'ring8' if row['target.name'] == 'ring8' else 'circle'} s={row['target.s']:g}"


def main(study_dir):
    df, report = load_results(study_dir)
    df = df[df["status"] == "ok"].copy()
    df["label"] = df.apply(_label, axis=1)
    labels = sorted(df["label"].unique())
    with paper_style():
        fig, axes = figure(len(INTERPOLANTS), height=2.4, width=2 * COLUMN_WIDTH)
        for ax, ip in zip(axes, INTERPOLANTS):
            for color, name in zip(PALETTE, labels):
                rows = df[(df["interpolant"] == ip) & (df["label"] == name)]
                where = {"interpolant": ip, "degenerate": bool(rows["degenerate"].iloc[0])}
                fit = fit_for(report, y="lipschitz", where=where, group={"target.name": rows["target.name"].iloc[0]})
                rate_panel(ax, rows, fit, x="one_minus_t", y="lipschitz", color=color, label=name)
                ax.plot(rows["one_minus_t"], rows["lipschitz_sampled"], ".", color="0.6", ms=1.5)
            ax.invert_xaxis()
            ax.set_title(ip)
            ax.set_xlabel(label("one_minus_t"))
            ax.legend(loc="upper left", fontsize=4.8, handlelength=1.0)
        axes[0].set_ylabel(label("lipschitz"))
    return save(fig, Path(study_dir) / "figures", "lipschitz_profile")


if __name__ == "__main__":
    print(*main(sys.argv[1]), sep="\n")
