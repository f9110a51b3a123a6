"""Figure of studies/sample_size.yaml: one-step generator error vs the teacher's sample size n.

Left: the student's end-to-end (pathwise) error for each teacher with its fitted slope. Right: the sampled W2
of the one-step output against the target, with the two-sample noise floor at the evaluation size drawn as
a band (mean +/- 2 sd): points inside it (hollow) are not resolved.

    python figures/sample_size.py results/sample_size
"""

import sys
from pathlib import Path

from convlab.plotting import PALETTE, figure, fit_for, label, load_results, paper_style, rate_panel, save


def main(study_dir):
    df, report = load_results(study_dir)
    kinds = list(dict.fromkeys(df["teacher.kind"]))
    with paper_style():
        fig, (left, right) = figure(2, height=2.3)
        for color, kind in zip(PALETTE, kinds):
            sub = df[df["teacher.kind"] == kind]
            rate_panel(
                left,
                sub,
                fit_for(report, y="student_e2e_error", group={"teacher.kind": kind}),
                x="teacher.n",
                y="student_e2e_error",
                color=color,
                label=kind,
            )
            rate_panel(
                right,
                sub,
                fit_for(report, y="student_w2", group={"teacher.kind": kind}),
                x="teacher.n",
                y="student_w2",
                color=color,
                label=kind,
                resolved="w2_resolved",
                show_reference=False,
            )
        ok = df[df["status"] == "ok"]
        if len(ok):
            floor, sd = ok["w2_floor"].mean(), ok["w2_floor_sd"].mean()
            right.axhspan(max(floor - 2 * sd, 1e-12), floor + 2 * sd, color="0.6", alpha=0.3, lw=0)
            right.axhline(floor, color="0.4", lw=0.8, ls=":", label=f"noise floor (n={int(ok['eval.n_w2'].iloc[0])})")
        left.set_ylabel(label("student_e2e_error"))
        right.set_ylabel(label("student_w2"))
        for ax in (left, right):
            ax.set_xlabel("teacher sample size $n$")
            ax.legend(loc="lower left", fontsize=5.5, handlelength=1.0)
    return save(fig, Path(study_dir) / "figures", "sample_size")


if __name__ == "__main__":
    print(*main(sys.argv[1]), sep="\n")
