"""Compare the metrics of the same runs stored in two results directories of one study (joined by run id): the
largest relative difference per metric, grouped by how each metric is estimated, and whether it is within the
tolerance of its class. Used to show that a change of the code changed no number (scripts/compare_redesign.sh).

    python scripts/compare_results.py results_a/quickstart results_b/quickstart [--tol-exact 1e-12]

Exit status 1 when a metric of a deterministic class (closed forms, and every metric of a run kind that trains
nothing) differs by more than --tol-exact, or when a run is missing on one side.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from convlab.files import read_json
from convlab.runs import RUN_KINDS

TRAINED = {"characteristic", "jko"}  # kinds with networks: numbers move with float rounding of the training


def relative(a, b) -> float:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return 0.0 if a == b else math.inf
    if not (math.isfinite(a) and math.isfinite(b)):
        return 0.0 if a == b or (a != a and b != b) else math.inf
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--tol-exact", type=float, default=1e-12)
    args = p.parse_args(argv)
    runs_a = {d.name: d for d in (args.a / "runs").iterdir() if (d / "result.json").exists()}
    runs_b = {d.name: d for d in (args.b / "runs").iterdir() if (d / "result.json").exists()}
    missing = sorted(set(runs_a) ^ set(runs_b))
    new: set[str] = set()  # metrics b records that a did not (a metric added by the change)
    worst: dict[tuple[str, str, str], tuple[float, str]] = {}
    for rid in sorted(set(runs_a) & set(runs_b)):
        ra, rb = read_json(runs_a[rid] / "result.json"), read_json(runs_b[rid] / "result.json")
        kind = RUN_KINDS[read_json(runs_a[rid] / "config.json")["kind"]]
        if ra.get("status") != rb.get("status"):
            missing.append(f"{rid} (status {ra.get('status')} vs {rb.get('status')})")
            continue
        for m in kind.metrics:
            if m.estimate == "record" or isinstance(ra.get(m.name), list):
                continue
            if m.name in ra and m.name not in rb:
                missing.append(f"{rid}:{m.name}")
                continue
            if m.name in rb and m.name not in ra:
                new.add(f"{kind.name}.{m.name}")
                continue
            if m.name in ra:
                key = (kind.name, "closed_form" if m.estimate == "closed_form" else m.estimate, m.name)
                d = relative(ra[m.name], rb[m.name])
                if d >= worst.get(key, (-1.0, ""))[0]:
                    worst[key] = (d, rid)
    failed = bool(missing)
    print(f"{args.a} vs {args.b}: {len(set(runs_a) & set(runs_b))} runs in both")
    print(f"  {'kind':<15}{'estimate':<15}{'metric':<28}{'max rel diff':>14}  verdict")
    for (kind, estimate, name), (d, _rid) in sorted(worst.items()):
        exact = estimate == "closed_form" or kind not in TRAINED
        verdict = ("ok" if d <= args.tol_exact else "DIFFERS") if exact else "trained (reported)"
        failed |= exact and d > args.tol_exact
        print(f"  {kind:<15}{estimate:<15}{name:<28}{d:>14.2e}  {verdict}")
    for item in missing[:20]:
        print(f"  missing on one side: {item}")
    if new:
        print(f"  recorded by b only (new metrics): {', '.join(sorted(new))}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
