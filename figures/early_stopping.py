"""Figure of studies/early_stopping.yaml: left, W2(p_T, nu) between its closed-form upper and lower bounds
against 1 - T; right, the integrated Lipschitz constant int_0^T L_t dt. One colour per (target, schedule).

    python figures/early_stopping.py results/early_stopping
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
)


def main(study_dir):
    df, report = load_results(study_dir)
    df = df[df["status"] == "ok"]
    cases = levels(df, ["interpolant", "degenerate"])
    with paper_style():
        fig, (left, right) = figure(2, height=2.5, width=2 * COLUMN_WIDTH)
        for color, (ip, degenerate) in zip(PALETTE, cases):
            rows = df[(df["interpolant"] == ip) & (df["degenerate"] == degenerate)]
            name = f"{ip}, {'atoms' if degenerate else 'smoothed'}"
            group, where = {"degenerate": degenerate}, {"interpolant": ip}
            rate_panel(
                left,
                rows,
                fit_for(report, y="early_stop_w2_ub", where=where, group=group),
                x="one_minus_T",
                y="early_stop_w2_ub",
                color=color,
                label=name,
            )
            lower = rows.groupby("one_minus_T")["early_stop_w2_lb"].mean()
            left.plot(lower.index, lower.to_numpy(), "v", mfc="none", color=color, ms=3)
            rate_panel(
                right,
                rows,
                fit_for(report, y="integrated_lipschitz", where=where, group=group),
                x="one_minus_T",
                y="integrated_lipschitz",
                color=color,
                label=name,
            )
        left.set_title(r"$W_2(p_T, \nu)$: upper bound (o, fitted), lower bound (v)")
        right.set_title(label("integrated_lipschitz"))
        for ax in (left, right):
            ax.set_xlabel(label("one_minus_T"))
        left.legend(loc="lower right", fontsize=5.2, handlelength=1.0)
        right.legend(loc="upper right", fontsize=5.2, handlelength=1.0)
    return save(fig, Path(study_dir) / "figures", "early_stopping")


if __name__ == "__main__":
    print(*main(sys.argv[1]), sep="\n")
