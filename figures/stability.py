"""Figure of studies/stability.yaml: left, the Gronwall bound divided by the measured coupled error of the
perturbed flow (every point must lie above 1: the bound holds); right, the measured error against eps with
its fitted slope (smallest lengthscale).

    python figures/stability.py results/stability
"""

import sys
from pathlib import Path

from convlab.plotting import (
    COLUMN_WIDTH,
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
    df = df[df["status"] == "ok"]
    targets = levels(df, ["target.name", "target.radius"])
    scales = sorted(df["perturbation.lengthscale"].unique())
    with paper_style():
        fig, (left, right) = figure(2, height=2.4, width=2 * COLUMN_WIDTH)
        for color, (name, radius) in zip(PALETTE, targets):
            rows = select(df, {"target.name": name, "target.radius": radius})
            legend = name if radius != radius else f"{name} R={radius:g}"
            for marker, ell in zip("os", scales):
                sub = rows[rows["perturbation.lengthscale"] == ell]
                left.plot(
                    sub["perturbation.eps"],
                    sub["stability_bound_ratio"],
                    marker,
                    color=color,
                    mfc=color if marker == "o" else "none",
                    ms=3,
                    label=f"{legend}, l = {ell:g}",
                )
            sub = rows[rows["perturbation.lengthscale"] == scales[0]]
            fit = fit_for(
                report,
                y="coupled_error",
                group={"target.name": name, "target.radius": radius, "perturbation.lengthscale": scales[0]},
            )
            rate_panel(right, sub, fit, x="perturbation.eps", y="coupled_error", color=color, label=legend)
        left.axhline(1.0, color="0.3", ls="--", lw=0.8)
        left.set_xscale("log")
        left.set_yscale("log")
        left.set_xlabel(r"perturbation size $\varepsilon$")
        left.set_ylabel(label("stability_bound_ratio"))
        left.set_title(f"bound held in {int(df['stability_bound_holds'].sum())} of {len(df)} runs")
        left.legend(loc="center right", fontsize=5.0, handlelength=1.0)
        right.set_xlabel(r"perturbation size $\varepsilon$")
        right.set_ylabel(label("coupled_error"))
        right.set_title(f"lengthscale {scales[0]:g}")
        right.legend(loc="upper left", fontsize=5.2, handlelength=1.0)
    return save(fig, Path(study_dir) / "figures", "stability")


if __name__ == "__main__":
    print(*main(sys.argv[1]), sep="\n")
