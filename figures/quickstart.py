"""Figure of studies/quickstart.yaml: coupled error vs K for Euler and Heun, one panel per schedule.

    python figures/quickstart.py results/quickstart
"""

import sys
from pathlib import Path

from convlab.plotting import PALETTE, figure, fit_for, load_results, paper_style, rate_panel, save


def main(study_dir):
    df, report = load_results(study_dir)
    schedules = sorted(df["interpolant"].unique())
    with paper_style():
        fig, axes = figure(len(schedules), height=2.4)
        for ax, ip in zip(axes, schedules):
            for color, (title, solver) in zip(PALETTE, [("Euler", "euler"), ("Heun", "heun")]):
                sub = df[(df["interpolant"] == ip) & (df["solver"] == solver)]
                rate_panel(ax, sub, fit_for(report, title, {"interpolant": ip}), x="K", y="coupled_error",
                           color=color, label=solver, resolved="coupled_resolved")
            ax.set_title(f"ring8, {ip}")
            ax.set_xlabel("steps $K$")
            ax.legend(loc="lower left", fontsize=5.5, handlelength=1.2)
        axes[0].set_ylabel("coupled error (rms)")
    return save(fig, Path(study_dir) / "figures", "quickstart")


if __name__ == "__main__":
    print(*main(sys.argv[1]), sep="\n")
