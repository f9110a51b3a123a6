"""Figure of studies/quickstart.yaml: coupled error vs K for Euler and Heun, one panel per schedule.

python figures/quickstart.py results/quickstart
"""

import sys
from pathlib import Path

from convlab.plotting import load_results, paper_style, save, solver_rate_figure


def main(study_dir):
    df, report = load_results(study_dir)
    with paper_style():
        fig = solver_rate_figure(
            df,
            report,
            panel="interpolant",
            values=sorted(df["interpolant"].unique()),
            solvers=["euler", "heun"],
            title=lambda ip: f"ring8, {ip}",
            height=2.4,
            handlelength=1.2,
        )
    return save(fig, Path(study_dir) / "figures", "quickstart")


if __name__ == "__main__":
    print(*main(sys.argv[1]), sep="\n")
