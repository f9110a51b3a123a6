"""Figure of studies/jko_flow.yaml: KL(p_K || N(0, I)) against the number K of JKO steps on semilog axes, one
panel per target and dimension, one colour per gamma (fitted exponential rate, expected -2 log(1 + gamma) dashed, the
exact
recursion as a dotted line for the Gaussian); right, W2 of generated samples with the noise floor (gamma = 1).

    python figures/jko_flow.py results/jko_flow
"""

import sys
from pathlib import Path

import pandas as pd

from convlab.plotting import COLUMN_WIDTH, PALETTE, figure, fit_for, label, load_results, paper_style, rate_panel, save


def main(study_dir):
    df, report = load_results(study_dir)
    df = df[df["status"] == "ok"]
    # the mixture has no target.D (its dimension comes from its means)
    df = df.assign(panel=df["target.name"] + df["target.D"].map(lambda D: "" if pd.isna(D) else f" D={int(D)}"))
    names, gammas = sorted(df["panel"].unique()), sorted(df["gamma"].unique())
    with paper_style():
        fig, axes = figure(len(names) + 1, height=2.4, width=2 * COLUMN_WIDTH)
        for ax, name in zip(axes, names):
            for color, gamma in zip(PALETTE, gammas):
                rows = df[(df["panel"] == name) & (df["gamma"] == gamma)]
                group = {"target.name": rows["target.name"].iloc[0], "target.D": rows["target.D"].iloc[0]}
                rate_panel(
                    ax,
                    rows,
                    fit_for(report, y="kl", where={"gamma": gamma}, group=group),
                    x="K",
                    y="kl",
                    color=color,
                    label=f"$\\gamma$ = {gamma:g}",
                    resolved="kl_resolved",
                    x_scale="linear",
                )
                if "kl_closed_form" in rows and rows["kl_closed_form"].notna().any():
                    exact = rows.groupby("K")["kl_closed_form"].mean()
                    ax.plot(
                        exact.index,
                        exact.to_numpy(),
                        ":",
                        color=color,
                        lw=1.0,
                        label="exact JKO" if gamma == gammas[-1] else None,
                    )
            ax.set_title(name)
            ax.set_xlabel("JKO steps $K$")
            ax.legend(loc="lower left", fontsize=5.0, handlelength=1.0)
        axes[0].set_ylabel(label("kl"))
        ax = axes[-1]
        for color, name in zip(PALETTE, names):
            rows = df[(df["panel"] == name) & (df["gamma"] == 1.0)].groupby("K")[["w2", "w2_floor"]].mean()
            ax.plot(rows.index, rows["w2"], "o-", color=color, label=f"{name}")
            ax.plot(rows.index, rows["w2_floor"], "--", color=color, lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("JKO steps $K$")
        ax.set_title(r"generated W2 ($\gamma$ = 1)" "\nnoise floor dashed")
        ax.legend(loc="upper right", fontsize=5.0, handlelength=1.0)
    return save(fig, Path(study_dir) / "figures", "jko_flow")


if __name__ == "__main__":
    print(*main(sys.argv[1]), sep="\n")
