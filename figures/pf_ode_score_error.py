"""Figure of studies/pf_ode_score_error.yaml: the sampler's response to an injected score error of size eps,
one panel per target, one line per perturbation kind.

    python figures/pf_ode_score_error.py results/pf_ode_score_error
"""

import sys
from pathlib import Path

from convlab.plotting import PALETTE, figure, fit_for, label, load_results, paper_style, rate_panel, save


def main(study_dir):
    df, report = load_results(study_dir)
    names = sorted(df["target.name"].unique())
    with paper_style():
        fig, axes = figure(len(names), height=2.2)
        for ax, name in zip(axes, names):
            for color, kind in zip(PALETTE, sorted(df["score_error.kind"].unique())):
                rows = df[(df["target.name"] == name) & (df["score_error.kind"] == kind)]
                rate_panel(
                    ax,
                    rows,
                    fit_for(report, y="score_error_effect", group={"target.name": name, "score_error.kind": kind}),
                    x="score_error.eps",
                    y="score_error_effect",
                    color=color,
                    label=kind,
                )
            ax.set_title(name)
            ax.set_xlabel(r"score error $\varepsilon$")
            ax.legend(loc="upper left", fontsize=5.2, handlelength=1.0)
        axes[0].set_ylabel(label("score_error_effect"))
    return save(fig, Path(study_dir) / "figures", "pf_ode_score_error")


if __name__ == "__main__":
    print(*main(sys.argv[1]), sep="\n")
