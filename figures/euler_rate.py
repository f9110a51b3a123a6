"""Figure of studies/euler_rate.yaml: coupled error vs K for every solver, one panel per target (full width).

    python figures/euler_rate.py results/euler_rate
"""

import sys
from pathlib import Path

from convlab.plotting import PALETTE, figure, fit_for, load_results, paper_style, rate_panel, save

SOLVERS = ["euler", "exp_euler", "heun", "rk4"]


def main(study_dir):
    df, report = load_results(study_dir)
    targets = list(dict.fromkeys(df["target.name"]))
    with paper_style():
        fig, axes = figure(len(targets), height=2.3, width=7.0)
        for ax, name in zip(axes, targets):
            for color, solver in zip(PALETTE, SOLVERS):
                sub = df[(df["target.name"] == name) & (df["solver"] == solver)]
                rate_panel(ax, sub, fit_for(report, solver, {"target.name": name}), x="K", y="coupled_error",
                           color=color, label=solver, resolved="coupled_resolved")
            ax.set_title(name)
            ax.set_xlabel("steps $K$")
            ax.legend(loc="lower left", fontsize=5.5, handlelength=1.0)
        axes[0].set_ylabel("coupled error (rms)")
    return save(fig, Path(study_dir) / "figures", "euler_rate")


if __name__ == "__main__":
    print(*main(sys.argv[1]), sep="\n")
