"""Figure of studies/heavy_tail.yaml: Euler's coupled error against K on a strongly anisotropic 7-D mixture, one
column per schedule: the rms (fitted in its automatic window) and the median path (fitted where the report flags a
heavy tail); below, their local slopes, and the share of the mean square carried by the top 1% of paths.

    python figures/heavy_tail.py results/heavy_tail
"""

import sys
from pathlib import Path

import matplotlib.pyplot as plt

from convlab.plotting import (
    COLUMN_WIDTH,
    PALETTE,
    fit_for,
    label,
    load_results,
    local_slope_panel,
    paper_style,
    rate_panel,
    save,
)


def main(study_dir):
    df, report = load_results(study_dir)
    schedules = sorted(df["interpolant"].unique())
    with paper_style():
        fig, grid = plt.subplots(
            3,
            len(schedules),
            figsize=(2 * COLUMN_WIDTH, 4.6),
            squeeze=False,
            sharex="col",
            gridspec_kw={"height_ratios": [1.6, 1, 0.8]},
        )
        for col, ip in enumerate(schedules):
            rows = df[df["interpolant"] == ip]
            fit = fit_for(report, y="coupled_error", group={"interpolant": ip})
            median = fit.get("median_path") if fit else None
            rate_panel(
                grid[0, col],
                rows,
                fit,
                x="K",
                y="coupled_error",
                color=PALETTE[0],
                label="rms",
                resolved="coupled_resolved",
            )
            rate_panel(grid[0, col], rows, median, x="K", y="coupled_median", color=PALETTE[1], label="median path")
            local_slope_panel(grid[1, col], fit, color=PALETTE[0], label="rms")
            local_slope_panel(grid[1, col], median, color=PALETTE[1], label="median path", offset=1.06)
            share = rows.groupby(["K", "seed"])["coupled_top1_share"].mean().unstack()
            for i, seed in enumerate(share.columns):
                grid[2, col].plot(
                    share.index, share[seed], "o-", ms=2, lw=0.7, color=PALETTE[2 + i % 6], label=f"seed {seed}"
                )
            grid[2, col].set_xscale("log")
            grid[2, col].set_ylim(0, 1.02)
            grid[0, col].set_title(f"7-D mixture, {ip}" + (f"; verdict: {fit['verdict']}" if fit else ""))
            grid[0, col].set_xlabel("")
            grid[2, col].set_xlabel("Euler steps $K$")
            grid[0, col].legend(loc="lower left", fontsize=5.2, handlelength=1.0)
        grid[0, 0].set_ylabel(label("coupled_error"))
        grid[1, 0].set_ylabel("local slope")
        grid[2, 0].set_ylabel("top-1% share")
        grid[2, 0].legend(loc="lower left", fontsize=5.0, handlelength=1.0)
    return save(fig, Path(study_dir) / "figures", "heavy_tail")


if __name__ == "__main__":
    print(*main(sys.argv[1]), sep="\n")
