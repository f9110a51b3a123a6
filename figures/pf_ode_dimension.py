"""Figure of studies/pf_ode_dimension.yaml: the sampler's error against the ambient dimension D on isotropic
Gaussians: exact W2 of its law (left) and the coupled error (right), one line per solver.

    python figures/pf_ode_dimension.py results/pf_ode_dimension
"""

import sys
from pathlib import Path

from convlab.plotting import PALETTE, figure, fit_for, load_results, paper_style, rate_panel, save


def main(study_dir):
    df, report = load_results(study_dir)
    with paper_style():
        fig, axes = figure(2, height=2.2)
        for ax, (title, y) in zip(axes, [("exact W2", "sampler_w2"), ("coupled", "coupled_error")]):
            for color, solver in zip(PALETTE, ["euler", "exp_score"]):
                rate_panel(
                    ax,
                    df[df["solver"] == solver],
                    fit_for(report, y=y, group={"solver": solver}),
                    x="target.D",
                    y=y,
                    color=color,
                    label=solver,
                )
            ax.set_title(title)
            ax.set_xlabel("ambient dimension $D$")
            ax.legend(loc="upper left", fontsize=5.2, handlelength=1.0)
        axes[0].set_ylabel("error at $h = S/64$")
    return save(fig, Path(study_dir) / "figures", "pf_ode_dimension")


if __name__ == "__main__":
    print(*main(sys.argv[1]), sep="\n")
