"""Figure of studies/jko_step_error.yaml: KL after N blocks against the injected per-step error eps (log-log),
the neural flow and the exact recursion with the same translations, with fitted slopes (expected 2).

    python figures/jko_step_error.py results/jko_step_error
"""

import sys
from pathlib import Path

from convlab.plotting import PALETTE, figure, fit_for, load_results, paper_style, rate_panel, save


def main(study_dir):
    df, report = load_results(study_dir)
    df = df[(df["status"] == "ok") & (df["step_error"] > 0)]
    with paper_style():
        fig, (ax,) = figure(1, height=2.4)
        rate_panel(
            ax,
            df,
            fit_for(report, y="kl"),
            x="step_error",
            y="kl",
            color=PALETTE[0],
            label="neural",
            resolved="kl_resolved",
        )
        rate_panel(
            ax,
            df,
            fit_for(report, y="kl_closed_form"),
            x="step_error",
            y="kl_closed_form",
            color=PALETTE[1],
            label="exact JKO",
        )
        ax.set_xlabel(r"per-step error $\varepsilon$")
        ax.set_ylabel(f"KL after K = {int(df['K'].iloc[0])} JKO steps")
        ax.legend(loc="upper left", fontsize=5.5, handlelength=1.0)
    return save(fig, Path(study_dir) / "figures", "jko_step_error")


if __name__ == "__main__":
    print(*main(sys.argv[1]), sep="\n")
