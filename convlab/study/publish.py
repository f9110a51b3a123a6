"""`convlab publish`: copy a study's stored results into the docs tree, where its page is built from them.

What is copied is small and enough for the page: report.json (the numbers), report.md (as printed), study.json
(the study as it was run), the PNG figures, and published.json (when, from which convlab commits and devices the
runs came). The run directories and the table stay in the results directory.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from convlab.files import atomic_write_json, read_json, utc_now

COPIED = ("report.json", "report.md", "study.json")


@dataclass
class Published:
    folder: Path
    files: list[Path]


def publish(results: Path, docs: Path) -> Published:
    """Copy report.json, study.json and figures/*.png of the results directory `results` into `docs/<study>/`,
    replacing what an earlier publish left there (a hand-written findings.md is kept), and write published.json."""
    import pandas as pd

    missing = [name for name in (*COPIED, "results.parquet") if not (results / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"{results}: no {', '.join(missing)} (a results directory after `convlab sweep`, or run "
            f"`convlab report {results}` first)"
        )
    name = read_json(results / "report.json")["study"]
    folder = docs / name
    (folder / "figures").mkdir(parents=True, exist_ok=True)
    for old in [*(folder / "figures").glob("*.png"), *(folder / n for n in COPIED)]:
        old.unlink(missing_ok=True)
    files = []
    for src in [*(results / n for n in COPIED), *sorted((results / "figures").glob("*.png"))]:
        dst = folder / src.relative_to(results)
        shutil.copyfile(src, dst)
        files.append(dst)
    df = pd.read_parquet(results / "results.parquet")
    meta = {
        "published": utc_now(),
        "commits": sorted(df["prov.git_commit"].dropna().unique().tolist()) if "prov.git_commit" in df else [],
        "devices": sorted(df["device"].dropna().unique().tolist()) if "device" in df else [],
        "runs": int(len(df)),
    }
    atomic_write_json(folder / "published.json", meta)
    files.append(folder / "published.json")
    return Published(folder, files)
