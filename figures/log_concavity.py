"""Figure of studies/log_concavity.yaml: the extreme eigenvalues of -Hess log p_t along the OU flow inside
their sandwich bounds, one panel per ring, the switch time t* marked (p_t strongly log-concave after it).

    python figures/log_concavity.py results/log_concavity
"""

import sys
from pathlib import Path

from convlab.plotting import COLUMN_WIDTH, PALETTE, figure, load_results, paper_style, save


def main(study_dir):
    df, _ = load_results(study_dir)
    df = df[df["status"] == "ok"]
    radii = sorted(df["target.radius"].unique())
    with paper_style():
        fig, axes = figure(len(radii), height=2.0, width=2 * COLUMN_WIDTH)
        for ax, R in zip(axes, radii):
            sub = (
                df[df["target.radius"] == R]
                .groupby("t")
                .agg(
                    hess_min=("hess_min", "min"),
                    hess_max=("hess_max", "max"),
                    lower=("hess_bound_lower", "first"),
                    upper=("hess_bound_upper", "first"),
                    t_star=("t_star", "first"),
                    s=("s", "first"),
                )
                .reset_index()
            )
            ax.fill_between(sub["t"], sub["lower"], sub["upper"], color=PALETTE[0], alpha=0.15, lw=0, label="sandwich")
            ax.plot(sub["t"], sub["hess_min"], "o-", color=PALETTE[1], ms=2.5, label=r"$\lambda_{\min}$ measured")
            ax.plot(sub["t"], sub["hess_max"], "s-", color=PALETTE[2], ms=2.5, label=r"$\lambda_{\max}$ measured")
            ax.axhline(0, color="0.3", lw=0.6)
            t_star = float(sub["t_star"].iloc[0])
            if t_star > 0:
                ax.axvline(t_star, color="0.3", ls="--", lw=0.8, label=f"$t^*$ = {t_star:.2f}")
            ax.set_xscale("log")
            ax.set_yscale("symlog", linthresh=1.0)
            ax.set_title(f"ring8, R = {R:g}, s = {sub['s'].iloc[0]:g}")
            ax.set_xlabel("OU time $t$")
            ax.legend(loc="lower right", fontsize=5.0, handlelength=1.0)
        axes[0].set_ylabel(r"eigenvalues of $-\nabla^2 \log p_t$")
    return save(fig, Path(study_dir) / "figures", "log_concavity")


if __name__ == "__main__":
    print(*main(sys.argv[1]), sep="\n")
