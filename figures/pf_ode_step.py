"""Figure of studies/pf_ode_step.yaml: coupled error of the OU probability-flow sampler vs the step h, euler
and exp_score side by side with their fitted constants C, one panel per target (the rings' switch time t* shown).

    python figures/pf_ode_step.py results/pf_ode_step
"""

import math
import sys
from pathlib import Path

from convlab.plotting import (
    COLUMN_WIDTH,
    PALETTE,
    figure,
    fit_for,
    fitted,
    label,
    levels,
    load_results,
    paper_style,
    rate_panel,
    save,
    select,
)


def main(study_dir):
    df, report = load_results(study_dir)
    targets = levels(df, ["target.name", "target.radius"])
    with paper_style():
        fig, axes = figure(len(targets), height=2.2, width=2 * COLUMN_WIDTH)
        for ax, (name, radius) in zip(axes, targets):
            rows = select(df, {"target.name": name, "target.radius": radius})
            group = {"target.name": name, "target.radius": radius}
            for color, solver in zip(PALETTE, ["euler", "exp_score"]):
                fit = fit_for(report, y="coupled_error", where={"solver": solver}, group=group)
                legend = f"{solver}, C = {math.exp(fit['intercept']):.2f}," if fitted(fit) else solver
                rate_panel(ax, rows[rows["solver"] == solver], fit, x="h", y="coupled_error", color=color, label=legend)
            t_star = rows["t_star"].dropna()
            ax.set_title(
                name + (f", R = {radius:g}, $t^*$ = {t_star.iloc[0]:.2f}" if len(t_star) and t_star.iloc[0] > 0 else "")
            )
            hs = sorted(rows["h"].unique())[::2]
            ax.set_xticks(hs, [f"{h:.3g}" for h in hs])
            ax.set_xlabel(label("h"))
            ax.legend(loc="upper left", fontsize=5.0, handlelength=1.0)
        axes[0].set_ylabel(label("coupled_error"))
    return save(fig, Path(study_dir) / "figures", "pf_ode_step")


if __name__ == "__main__":
    print(*main(sys.argv[1]), sep="\n")
