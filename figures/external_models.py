"""Figure of studies/external_models.yaml: each model's solver error against K (Euler solid, Heun dashed, with the
fitted slopes), and its velocity and flow errors against the exact field.

    python figures/external_models.py results/external_models
"""

import sys
from pathlib import Path

from convlab.plotting import COLUMN_WIDTH, PALETTE, figure, fit_for, load_results, paper_style, rate_panel, save

MODELS = {"exact": "exact field", "cfm": "CFM", "ot_cfm": "OT-CFM", "teacher": "convlab teacher"}


def main(study_dir):
    df, report = load_results(study_dir)
    df = df[df["status"] == "ok"].copy()
    df["name"] = df["model.factory"].str.rpartition(":")[2]
    with paper_style():
        fig, axes = figure(3, height=2.6, width=2 * COLUMN_WIDTH + 0.3)  # a full page width
        for ax, solver in zip(axes, ("euler", "heun")):
            for i, (name, label) in enumerate(MODELS.items()):
                part = df[(df["name"] == name) & (df["solver"] == solver)]
                if part.empty:
                    continue
                group = {"model.factory": part["model.factory"].iloc[0]}
                fit = fit_for(report, y="model_solver_error", where={"solver": solver}, group=group)
                rate_panel(ax, part, fit, x="K", y="model_solver_error", color=PALETTE[i], label=label)
            ax.set_xlabel(f"K ({solver} steps)")
            ax.set_ylabel("solver error (rms)")
            ax.legend(fontsize=4.2, handlelength=1.0, loc="lower left")
        means = df.groupby("name")[["model_velocity_l2_error", "model_flow_error"]].mean().reindex(list(MODELS))
        x = list(range(len(MODELS)))
        bars = axes[2]
        bars.bar([v - 0.2 for v in x], means["model_velocity_l2_error"], 0.4, color=PALETTE[0], label="velocity")
        bars.bar([v + 0.2 for v in x], means["model_flow_error"], 0.4, color=PALETTE[1], label="flow")
        bars.set_xticks(x, list(MODELS.values()), rotation=25, fontsize=5)
        bars.set_ylabel("error against the exact field (rms)")
        bars.legend(fontsize=5)
    return save(fig, Path(study_dir) / "figures", "external_models")


if __name__ == "__main__":
    print(*main(sys.argv[1]), sep="\n")
