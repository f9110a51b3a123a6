"""`convlab publish`: copy a study's stored results into the docs tree, where its page is built from them.

What is copied is small and enough for the page: report.json (the numbers), report.md (as printed), study.json
(the study as it was run), the PNG figures, and published.json (when, from which convlab commits and devices the
runs came). The run directories and the table stay in the results directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from convlab.files import atomic_write_bytes, atomic_write_json, utc_now
from convlab.registry import shown
from convlab.study.schema import MAX_NAME, NAME_PATTERN
from convlab.study.store import read_record
from convlab.study.table import read_table

COPIED = ("report.json", "report.md", "study.json")


@dataclass
class Published:
    folder: Path
    files: list[Path]


def publish(results: Path, docs: Path) -> Published:
    """Copy report.json, study.json and figures/*.png of the results directory `results` into `docs/<study>/`,
    replacing what an earlier publish left there (a hand-written findings.md is kept), and write published.json.

    The study's name comes from its stored report, so it is checked like a study file's (letters, digits, _ and -)
    and the folder must lie inside `docs`: a report naming "../../x" is refused (ValueError) before anything in
    any folder is touched. Damaged (unreadable) inputs raise store.Damaged naming the file."""
    missing = [name for name in (*COPIED, "results.parquet") if not (results / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"{results}: no {', '.join(missing)} (a results directory after `convlab sweep`, or run "
            f"`convlab report {results}` first)"
        )
    name = read_record(results / "report.json", required=("study",))["study"]
    if not (isinstance(name, str) and re.fullmatch(NAME_PATTERN, name) and len(name) <= MAX_NAME):
        raise ValueError(
            f"{results / 'report.json'}: study: not a study name (letters, digits, _ and -, at most {MAX_NAME}): "
            f"publishing it could write outside {docs} (got {shown(name)})"
        )
    ran = read_record(results / "study.json", required=("study",))["study"]
    ran_name = ran.get("name") if isinstance(ran, dict) else None
    if ran_name != name:
        raise ValueError(
            f"{results}: report.json is of study {name!r} but study.json of {shown(ran_name)}: rebuild the report "
            f"(`convlab report {results}`)"
        )
    folder = docs / name
    sources = [*(results / n for n in COPIED), *sorted((results / "figures").glob("*.png"))]
    # Nothing is followed through a link: the page's folder, its figures folder and every file written there must
    # be real paths inside `docs`, and every source a real file of the results directory.
    written = [folder / src.relative_to(results) for src in sources] + [folder / "published.json"]
    for path in (folder, folder / "figures", *written):
        if path.is_symlink() or not path.resolve().is_relative_to(docs.resolve()):
            raise ValueError(f"{path}: a link, or outside {docs}; nothing was published")
    for src in sources:
        if src.is_symlink() or not src.resolve().is_relative_to(results.resolve()):
            raise ValueError(f"{src}: a link, or outside {results}; nothing was published")
    df = read_table(results)
    (folder / "figures").mkdir(parents=True, exist_ok=True)
    for old in [*(folder / "figures").glob("*.png"), *(folder / n for n in COPIED)]:
        old.unlink(missing_ok=True)
    files = []
    for src in sources:
        dst = folder / src.relative_to(results)
        atomic_write_bytes(dst, src.read_bytes())
        files.append(dst)
    meta = {
        "published": utc_now(),
        "commits": sorted(df["prov.git_commit"].dropna().unique().tolist()) if "prov.git_commit" in df else [],
        "devices": sorted(df["device"].dropna().unique().tolist()) if "device" in df else [],
        "runs": int(len(df)),
    }
    atomic_write_json(folder / "published.json", meta)
    files.append(folder / "published.json")
    return Published(folder, files)
