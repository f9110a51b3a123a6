"""Figure of studies/error_budget.yaml: each term of the characteristic generator's error budget vs K.

python figures/error_budget.py results/error_budget
"""

import sys
from pathlib import Path

from convlab.plotting import PALETTE, figure, fit_for, load_results, paper_style, rate_panel, save

TERMS = [  # column, label, whether the study fits its rate
    ("teacher_solver_error", "Euler: $E_K[v]$ vs $\\Phi[v]$", True),
    ("teacher_flow_error", "velocity: $\\Phi[v]$ vs $\\Phi[V]$", False),
    ("fitting_error", "fitting: $g$ vs $E_K[v]$", True),
    ("teacher_e2e_error", "teacher e2e: $E_K[v]$ vs $\\Phi[V]$", False),
    ("student_e2e_error", "student e2e: $g$ vs $\\Phi[V]$", True),
]


def main(study_dir):
    df, report = load_results(study_dir)
    with paper_style():
        fig, (ax,) = figure(1, height=2.6)
        for color, (col, label, fitted) in zip(PALETTE, TERMS):
            rate_panel(
                ax,
                df,
                fit_for(report, y=col) if fitted else None,
                x="characteristics.K",
                y=col,
                color=color,
                label=label,
            )
        ax.set_xlabel("Euler steps $K$ of the characteristics")
        ax.set_ylabel("rms pathwise error")
        ax.legend(loc="lower left", fontsize=5.2, handlelength=1.0)
    return save(fig, Path(study_dir) / "figures", "error_budget")


if __name__ == "__main__":
    print(*main(sys.argv[1]), sep="\n")
