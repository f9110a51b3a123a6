"""Figures of studies/quickstart.yaml.

quickstart.png: coupled error vs K for Euler and Heun against the exact flow, one panel per schedule.
quickstart_pipeline.png: the one-step generator's error budget against K (the characteristics' step count): the
teacher's Euler error (its fitted rate against the declared -1), the teacher's flow error (a floor no K removes),
the student's fitting error, its end-to-end error, and what one Euler step of the teacher gives.

python figures/quickstart.py results/quickstart
"""

import sys
from pathlib import Path

import matplotlib.ticker

from convlab.plotting import (
    PALETTE,
    figure,
    fit_for,
    label,
    load_results,
    paper_style,
    rate_panel,
    save,
    seed_summary,
    select,
    solver_rate_figure,
)

K = "characteristics.K"


def solvers(df, report):
    flows = select(df, {"kind": "flow"})
    return solver_rate_figure(
        flows,
        report,
        panel="interpolant",
        values=sorted(flows["interpolant"].unique()),
        solvers=["euler", "heun"],
        title=lambda ip: f"ring8, {ip}",
        height=2.4,
        handlelength=1.2,
        where={"kind": "flow"},
    )


def pipeline(df, report):
    runs = select(df, {"kind": "characteristic"})
    runs = runs[runs["status"] == "ok"]
    if runs.empty:
        return None  # a study of the solvers block alone (tests, a --set that drops the pipeline)
    fig, (ax,) = figure(height=2.6)
    fit = fit_for(report, y="teacher_solver_error", where={"kind": "characteristic"})
    rate_panel(ax, runs, fit, x=K, y="teacher_solver_error", color=PALETTE[0], label=label("teacher_solver_error"))
    for color, (y, style) in zip(
        PALETTE[1:],
        [
            ("teacher_flow_error", ":"),
            ("fitting_error", "-"),
            ("student_e2e_error", "-"),
            ("teacher_one_step_e2e_error", "--"),
        ],
    ):
        s = seed_summary(runs, K, y)
        ax.errorbar(
            s[K],
            s["mean"],
            yerr=[s["mean"] - s["lo"], s["hi"] - s["mean"]],
            ls=style,
            marker=".",
            c=color,
            label=label(y),
            elinewidth=0.7,
            capsize=1.5,
        )
    ax.set(xscale="log", yscale="log", xlabel="characteristics' steps $K$", ylabel="rms error vs the exact flow")
    ks = sorted(runs[K].unique())
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks(ks, [f"{k:g}" for k in ks])
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo / 100, hi)  # room for the legend below the curves
    ax.set_title("one-step generator on ring8: error budget")
    ax.legend(fontsize=4.5, loc="lower left")
    return fig


def main(study_dir):
    df, report = load_results(study_dir)
    out = Path(study_dir) / "figures"
    paths = []
    with paper_style():
        for name, draw in (("quickstart", solvers), ("quickstart_pipeline", pipeline)):
            fig = draw(df, report)
            if fig is not None:
                paths += save(fig, out, name)
    return paths


if __name__ == "__main__":
    print(*main(sys.argv[1]), sep="\n")
