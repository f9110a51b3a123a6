"""Figure of studies/euler_rate.yaml: coupled error vs K for every solver, one panel per target (full width).

python figures/euler_rate.py results/euler_rate
"""

import sys
from pathlib import Path

from convlab.plotting import load_results, paper_style, save, solver_rate_figure

SOLVERS = ["euler", "exp_euler", "heun", "rk4"]


def main(study_dir):
    df, report = load_results(study_dir)
    with paper_style():
        fig = solver_rate_figure(
            df,
            report,
            panel="target.name",
            values=list(dict.fromkeys(df["target.name"])),
            solvers=SOLVERS,
            title=str,
            width=7.0,
        )
    return save(fig, Path(study_dir) / "figures", "euler_rate")


if __name__ == "__main__":
    print(*main(sys.argv[1]), sep="\n")
