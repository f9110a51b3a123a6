"""Figure of studies/error_budget.yaml: each term of the characteristic generator's error budget vs K.

    python figures/error_budget.py results/error_budget
"""

import sys
from pathlib import Path

from convlab.plotting import PALETTE, figure, fit_for, load_results, paper_style, rate_panel, save

TERMS = [  # column, label, rate title in the study (None: not fitted)
    ("teacher_euler_error", "Euler: $E_K[v]$ vs $\\Phi[v]$", "teacher Euler error"),
    ("teacher_flow_error", "velocity: $\\Phi[v]$ vs $\\Phi[V]$", None),
    ("fitting_error", "fitting: $g$ vs $E_K[v]$", "fitting error"),
    ("teacher_e2e_error", "teacher e2e: $E_K[v]$ vs $\\Phi[V]$", None),
    ("student_e2e_error", "student e2e: $g$ vs $\\Phi[V]$", "student error"),
]


def main(study_dir):
    df, report = load_results(study_dir)
    with paper_style():
        fig, (ax,) = figure(1, height=2.6)
        for color, (col, label, title) in zip(PALETTE, TERMS):
            rate_panel(ax, df, fit_for(report, title) if title else None, x="characteristics.K", y=col, color=color, label=label)
        ax.set_xlabel("Euler steps $K$ of the characteristics")
        ax.set_ylabel("rms pathwise error")
        ax.legend(loc="lower left", fontsize=5.2, handlelength=1.0)
    return save(fig, Path(study_dir) / "figures", "error_budget")


if __name__ == "__main__":
    print(*main(sys.argv[1]), sep="\n")
