"""The convlab command line: sweep, status, collect, report, figures, targets.

Exit status: 0 success, 1 some runs failed, 2 invalid input (nothing runs, nothing is written).
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from convlab.study.plan import Plan, StudyError, load_plan
from convlab.study.store import StudyStore, atomic_write_bytes, atomic_write_json, read_json, utc_now

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Check the convergence theory of flow-based generative models by experiment.")

StudyArg = Annotated[Path, typer.Argument(help="a study file, e.g. studies/quickstart.yaml")]
SetOpt = Annotated[list[str], typer.Option("--set", help="override a study value: dotted.key=value (YAML), repeatable")]
OutOpt = Annotated[Path, typer.Option("--out", help="results root")]


def _plan(study: Path, overrides: list[str]) -> Plan:
    try:
        return load_plan(study, overrides)
    except StudyError as err:
        for message in err.messages:
            typer.echo(message, err=True)
        raise typer.Exit(2) from None


def _finished_table(study: Path, overrides: list[str], out: Path):
    """The study's plan, store and table of finished runs; exit 1 when nothing has finished yet."""
    from convlab.study.table import collect as collect_table

    plan = _plan(study, overrides)
    store = StudyStore(out, plan.study.name)
    df = collect_table(plan, store)
    if df.empty:
        typer.echo(f"{plan.study.name}: no finished runs yet", err=True)
        raise typer.Exit(1)
    return plan, store, df


def _states(plan: Plan, store: StudyStore) -> dict[str, int]:
    counts = {"done": 0, "failed": 0, "running": 0, "incomplete": 0, "new": 0}
    for r in plan.runs:
        state = store.state(r.run_id)
        if state in ("incomplete", "new") and store.is_running(r.run_id):
            state = "running"
        counts[state] += 1
    return counts


def _describe(plan: Plan, store: StudyStore) -> str:
    c = _states(plan, store)
    teachers = len({r.teacher_key for r in plan.runs if r.teacher_key})
    left = c["incomplete"] + c["new"]
    return (f"{plan.study.name}: {len(plan.runs)} runs ({teachers} shared teachers) | done {c['done']}, failed {c['failed']}, "
            f"running {c['running']}, left {left}" + (f" ({c['incomplete']} interrupted)" if c["incomplete"] else ""))


@app.command()
def sweep(
    study: StudyArg,
    set_: SetOpt = [],
    jobs: Annotated[int | None, typer.Option("--jobs", min=1, help="local worker processes (default: resources.jobs or 1)")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto | cpu | cuda (default: resources.device or auto)")] = None,
    out: OutOpt = Path("results"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the plan and what is done and left; run nothing")] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="rerun runs that failed before")] = False,
    force: Annotated[bool, typer.Option("--force", help="recompute finished runs too (old results are set aside, not deleted)")] = False,
    post: Annotated[bool, typer.Option("--post/--no-post", help="collect, report and draw figures afterwards")] = True,
    executor: Annotated[str, typer.Option("--executor", help="local | slurm (job arrays through submitit)")] = "local",
    detach: Annotated[bool, typer.Option("--detach", help="slurm: submit and exit; rerun the command (or status) later")] = False,
    partition: Annotated[str | None, typer.Option("--partition", help="slurm partition (default: resources.partition)")] = None,
    time_min: Annotated[int | None, typer.Option("--time-min", min=1, help="slurm time limit per run, minutes (default: resources.time_min or 60)")] = None,
    cpus_per_run: Annotated[int | None, typer.Option("--cpus-per-run", min=1, help="slurm CPUs per run (default: resources.cpus_per_run or 1)")] = None,
    gpus_per_run: Annotated[int | None, typer.Option("--gpus-per-run", min=0, help="slurm GPUs per run (default: resources.gpus_per_run or 0)")] = None,
    mem_gb: Annotated[float | None, typer.Option("--mem-gb", min=0.001, help="slurm memory per run, GB (default: resources.mem_gb or the partition's)")] = None,
    array_parallelism: Annotated[int | None, typer.Option("--array-parallelism", min=1, help="slurm: most tasks of an array at once (default: resources.array_parallelism or 64)")] = None,
) -> None:
    """Run every run of a study that is not done yet; resumable, safe to kill."""
    plan = _plan(study, set_)
    device = device or plan.study.resources.device or "auto"
    if device not in ("auto", "cpu", "cuda"):
        typer.echo(f"--device: must be auto, cpu or cuda (got {device!r})", err=True)
        raise typer.Exit(2)
    from convlab.device import resolve_device

    if executor not in ("local", "slurm"):
        typer.echo(f"--executor: must be local or slurm (got {executor!r})", err=True)
        raise typer.Exit(2)
    if detach and executor != "slurm":
        typer.echo("--detach: only with --executor slurm (a local sweep runs in this process)", err=True)
        raise typer.Exit(2)
    try:
        resolve_device(device) if executor == "local" else None  # the GPUs of a SLURM job are on its node
    except ValueError as err:
        typer.echo(f"--device: {err}", err=True)
        raise typer.Exit(2) from None
    store = StudyStore(out, plan.study.name)
    typer.echo(_describe(plan, store))
    if dry_run:
        for r in plan.runs[:10]:
            typer.echo(f"  {r.run_id} {store.state(r.run_id):<10} {r.kind:<14} {json.dumps(r.point, default=str)}")
        if len(plan.runs) > 10:
            typer.echo(f"  ... {len(plan.runs) - 10} more")
        return
    from convlab.study.execute import run_local
    from convlab.study.progress import SweepProgress

    store.dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(store.dir / "study.json", {"source": str(study.resolve()), "overrides": set_, "written": utc_now(),
                                                  "study": plan.study.model_dump(mode="json")})
    counts = _states(plan, store)
    jobs = jobs or plan.study.resources.jobs or 1
    todo_failed = 0 if retry_failed or force else counts["failed"]
    # The local executor reports every planned run, done ones included; SLURM's follow() only the active ones.
    progress = SweepProgress(len(plan.runs), done_before=0 if force or executor == "local" else counts["done"], failed_before=0)
    if executor == "slurm":
        from convlab.study.slurm import SlurmOptions, SlurmUnavailable, check_available, follow, reconcile, submit

        try:
            check_available()
        except SlurmUnavailable as err:
            progress.close()
            typer.echo(f"--executor slurm: {err}", err=True)
            raise typer.Exit(2) from None
        options = SlurmOptions.from_resources(plan.study.resources, partition=partition, time_min=time_min, cpus_per_run=cpus_per_run,
                                              gpus_per_run=gpus_per_run, mem_gb=mem_gb, array_parallelism=array_parallelism)
        submitted = submit(plan, store, options, device=device, retry_failed=retry_failed, force=force)
        planned = {r.run_id for r in plan.runs}
        active = sorted((set(reconcile(store)["active"]) | set(submitted)) & planned)
        arrays = sorted({j.split("_")[0] for j in submitted.values()})
        typer.echo(f"submitted {len(submitted)} runs as SLURM job array(s) {', '.join(arrays) or '-'}; {len(active)} runs queued or running")
        if detach:
            progress.close()
            typer.echo(f"detached: rerun this command, or `convlab status {study}`, to follow it")
            return
        result = follow(store, active, on_outcome=progress.update)
    else:
        result = run_local(plan, store, jobs=jobs, device=device, retry_failed=retry_failed, force=force, on_outcome=progress.update)
    progress.close()
    _summary(plan, store, result.count("ok"), result.count("failed"), todo_failed, result.count("busy"))
    if post:
        _post(plan, store, study)
    raise typer.Exit(1 if _states(plan, store)["failed"] else 0)


def _summary(plan: Plan, store: StudyStore, ran_ok: int, ran_failed: int, skipped_failed: int, busy: int) -> None:
    typer.echo(f"ran {ran_ok + ran_failed} runs: {ran_ok} ok, {ran_failed} failed"
               + (f"; {skipped_failed} failed before (rerun with --retry-failed)" if skipped_failed else "")
               + (f"; {busy} running in another sweep" if busy else ""))
    failed = [r for r in plan.runs if store.state(r.run_id) == "failed"]
    for r in failed[:20]:
        err = read_json(store.run_dir(r.run_id) / "error.json")
        typer.echo(f"  failed {r.run_id} {json.dumps(r.point, default=str)}: [{err.get('stage')}] {err.get('reason')}")
    if len(failed) > 20:
        typer.echo(f"  ... and {len(failed) - 20} more failed runs (convlab status)")


def _post(plan: Plan, store: StudyStore, source: Path) -> None:
    from convlab.study.figures import make_figures
    from convlab.study.report import rate_report, render_text
    from convlab.study.table import collect as collect_table
    from convlab.study.table import write_table

    df = collect_table(plan, store)
    if df.empty:
        typer.echo("no finished runs yet: nothing to collect")
        return
    path = write_table(df, store, csv=True)
    typer.echo(f"table: {path} ({len(df)} rows)")
    report = rate_report(plan.study, df)
    atomic_write_json(store.dir / "report.json", report)
    text = render_text(report)
    atomic_write_bytes(store.dir / "report.md", text.encode())
    typer.echo(text)
    for p in make_figures(plan.study, source, store.dir):
        typer.echo(f"figure: {p}")


@app.command()
def status(study: StudyArg, set_: SetOpt = [], out: OutOpt = Path("results")) -> None:
    """How far a study has got: done, failed, running, left."""
    plan = _plan(study, set_)
    store = StudyStore(out, plan.study.name)
    from convlab.study.slurm import load_submissions

    if load_submissions(store):  # a SLURM sweep: learn what happened to its tasks first
        from convlab.study.slurm import SlurmUnavailable, check_available, reconcile

        try:
            check_available()
            queued = reconcile(store)["active"]
            typer.echo(f"SLURM: {len(queued)} runs queued or running")
        except SlurmUnavailable as err:
            typer.echo(f"SLURM not reachable from here ({err}): showing the run directories only")
    typer.echo(_describe(plan, store))
    for r in plan.runs:
        if store.state(r.run_id) == "failed":
            err = read_json(store.run_dir(r.run_id) / "error.json")
            typer.echo(f"  failed {r.run_id} {json.dumps(r.point, default=str)}: [{err.get('stage')}] {err.get('reason')}")


@app.command()
def collect(study: StudyArg, set_: SetOpt = [], out: OutOpt = Path("results"),
            csv: Annotated[bool, typer.Option("--csv", help="also write results.csv")] = False) -> None:
    """Build results.parquet: one row per finished run."""
    from convlab.study.table import write_table

    plan, store, df = _finished_table(study, set_, out)
    typer.echo(f"{write_table(df, store, csv=csv)} ({len(df)} rows, {int((df['status'] != 'ok').sum())} failed)")


@app.command()
def report(study: StudyArg, set_: SetOpt = [], out: OutOpt = Path("results"),
           as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False) -> None:
    """Fitted rates per group: slope, CI, expected, verdict (and comparisons across a column)."""
    from convlab.study.report import rate_report, render_text

    plan, store, df = _finished_table(study, set_, out)
    rep = rate_report(plan.study, df)
    atomic_write_json(store.dir / "report.json", rep)
    atomic_write_bytes(store.dir / "report.md", render_text(rep).encode())
    typer.echo(json.dumps(read_json(store.dir / "report.json"), indent=1) if as_json else render_text(rep))


@app.command()
def figures(studies: Annotated[list[Path] | None, typer.Argument(help="study files (default: every study under --out)")] = None,
            out: OutOpt = Path("results")) -> None:
    """Regenerate the figures of studies from their stored results."""
    from convlab.study.figures import make_figures
    from convlab.study.schema import Study

    if studies:
        items = [(_plan(s, []).study, s) for s in studies]
    else:
        items = []
        for snap in sorted(out.glob("*/study.json")):
            data = read_json(snap)
            items.append((Study.model_validate(data["study"]), Path(data["source"])))
    if not items:
        typer.echo(f"no studies with results under {out}", err=True)
        raise typer.Exit(1)
    for study, source in items:
        study_dir = out / study.name
        if not (study_dir / "results.parquet").exists():
            typer.echo(f"{study.name}: no results.parquet (run convlab collect first)", err=True)
            continue
        for p in make_figures(study, source, study_dir):
            typer.echo(f"figure: {p}")


@app.command()
def targets() -> None:
    """List the analytic targets and their parameters."""
    from convlab.targets import TARGETS

    for name, make in TARGETS.items():
        params = ", ".join(f"{p.name}={p.default!r}" if p.default is not inspect.Parameter.empty else p.name
                           for p in inspect.signature(make).parameters.values() if p.name != "self")
        doc = (make.__doc__ or "").strip().splitlines()[0]
        typer.echo(f"{name}({params})\n    {doc}")


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
