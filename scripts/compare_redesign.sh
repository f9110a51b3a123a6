#!/usr/bin/env bash
# Same runs before and after a change of names or structure: small versions of every shipped study are run by the
# code of an OLD commit, their results migrated to today's names (`convlab migrate`), the same runs recomputed from
# the migrated study.json by today's code, and every metric compared run by run (scripts/compare_results.py):
# closed forms, and every metric of a run kind that trains nothing, must agree to 1e-12 (relative). Figures are drawn
# by today's scripts from both sets of results and compared byte for byte.
#   bash scripts/compare_redesign.sh OLD_COMMIT [OUTDIR]      (about 25 minutes on 2 cores, both halves)
#   SKIP_BEFORE=1 bash scripts/compare_redesign.sh OLD_COMMIT OUTDIR   (reuse OUTDIR/before)
#   ONLY="quickstart stability" bash scripts/compare_redesign.sh OLD_COMMIT   (those studies of the list only)
set -u
old=${1:?usage: compare_redesign.sh OLD_COMMIT [OUTDIR]}
out=${2:-/tmp/convlab-compare}
py=${PYTHON:-.venv/bin/python}
mkdir -p "$out"
# study | overrides (old names: the old code reads them); each run small enough for a laptop. manifold_dim is not
# here: since issue 15 it uses targets (uniform_sphere, curved_torus) that older commits do not have.
studies=(
  "quickstart|"
  "euler_rate|--set grid.target=[{name: ring8}, {name: random_mixture, D: 8, K: 4}] --set grid.K=[8,32,128,512] --set seeds=2"
  "sample_size|--set seeds=1 --set grid.teacher.n=[250,1000] --set base.teacher.optim.steps=300 --set base.student.optim.steps=300"
  "error_budget|--set seeds=1 --set grid.characteristics.K=[4,16] --set base.teacher.n=1000 --set base.teacher.optim.steps=300 --set base.student.optim.steps=300"
  "pf_ode_step|--set seeds=1"
  "pf_ode_score_error|--set seeds=1"
  "pf_ode_horizon|--set seeds=1"
  "pf_ode_dimension|--set grid.target.D=[2,8,32] --set seeds=1"
  "log_concavity|"
  "lipschitz_profile|--set seeds=1 --set grid.t=[0.0,0.9,0.99,0.999,0.9999,0.99999]"
  "early_stopping|--set seeds=1"
  "stability|--set seeds=1"
  "jko_flow|--set seeds=1 --set grid.gamma=[1.0]"
  "jko_step_error|--set seeds=1"
)
if [ -n "${ONLY:-}" ]; then
  kept=()
  for entry in "${studies[@]}"; do [[ " $ONLY " == *" ${entry%%|*} "* ]] && kept+=("$entry"); done
  studies=("${kept[@]}")
fi
if [ -z "${SKIP_BEFORE:-}" ]; then
  rm -rf "$out/old" && git worktree add --detach "$out/old" "$old" >/dev/null || exit 1
  for entry in "${studies[@]}"; do
    IFS='|' read -r name overrides <<<"$entry"
    args=()
    while read -r flag value; do [ -n "$flag" ] && args+=("$flag" "$value"); done < <(sed 's/ --set /\n--set /g' <<<"$overrides")
    (cd "$out/old" && PYTHONPATH="$out/old" "$OLDPWD/$py" -m convlab sweep "studies/$name.yaml" --out "$out/before" --jobs 2 --no-post \
      "${args[@]}" > "$out/before_$name.log" 2>&1)
    echo "before: $name exit $?"
    # a run with overrides goes to its own directory (<name>+<overrides>): give it the study's name here
    for d in "$out/before/$name+"*; do [ -d "$d" ] && rm -rf "$out/before/$name" && mv "$d" "$out/before/$name"; done
  done
  git worktree remove --force "$out/old"
fi
rm -rf "$out/migrated" "$out/after" && cp -r "$out/before" "$out/migrated"
$py -m convlab migrate "$out/migrated" | grep -v "^  "
status=0
for entry in "${studies[@]}"; do
  IFS='|' read -r name _ <<<"$entry"
  # the sweep writes the table and report (its figure script, next to the old study file, is gone with the worktree)
  $py -m convlab sweep "$out/migrated/$name" --out "$out/after" --jobs 2 > "$out/after_$name.log" 2>&1
  echo "after: $name exit $?"
  $py scripts/compare_results.py "$out/migrated/$name" "$out/after/$name" || status=1
  # migrate drops the derived table (the old runs were swept with --no-post): rebuild it before drawing
  $py -m convlab collect "$out/migrated/$name" > /dev/null 2>> "$out/figures.log"
  for side in migrated after; do $py "figures/$name.py" "$out/$side/$name" > /dev/null 2>> "$out/figures.log"; done
  for f in "$out/after/$name/figures/"*.png; do
    [ -e "$f" ] || { echo "  figures: none drawn (see $out/figures.log)"; break; }
    old_figure="$out/migrated/$name/figures/$(basename "$f")"
    if [ ! -e "$old_figure" ]; then  # a rate's figure the sweep's report draws, not figures/<name>.py
      echo "  figure $(basename "$f"): drawn by the sweep's report only, not compared"
      continue
    fi
    cmp -s "$f" "$old_figure" && same=identical || same=DIFFERENT
    echo "  figure $(basename "$f"): $same bytes from the migrated and the recomputed results"
  done
done
exit $status
