"""Figure of studies/pf_ode_horizon.yaml: the initialisation error against the horizon S on semilog axes,
with the fitted exponential rate (expected e^{-S}), one line per target.

    python figures/pf_ode_horizon.py results/pf_ode_horizon
"""

import sys
from pathlib import Path

from convlab.plotting import (
    PALETTE,
    figure,
    fit_for,
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
        fig, (ax,) = figure(1, height=2.4)
        for color, (name, radius) in zip(PALETTE, targets):
            rows = select(df, {"target.name": name, "target.radius": radius})
            legend = name if radius != radius else f"{name} R={radius:g}"
            rate_panel(
                ax,
                rows,
                fit_for(report, y="init_error", x_min=10.0, group={"target.name": name, "target.radius": radius}),
                x="S",
                y="init_error",
                color=color,
                label=legend,
                x_scale="linear",
            )
        ax.set_xlabel("horizon $S$")
        ax.set_ylabel(label("init_error"))
        ax.legend(loc="lower left", fontsize=5.2, handlelength=1.0)
    return save(fig, Path(study_dir) / "figures", "pf_ode_horizon")


if __name__ == "__main__":
    print(*main(sys.argv[1]), sep="\n")
