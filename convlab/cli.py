"""The convlab command line, a thin layer over convlab.api: sweep, refine, status, collect, report, figures, publish,
targets, kinds, schema, migrate. A STUDY is a study file or a results directory (the study as it was run).

Exit status: 0 success, 1 some runs (or the post-processing) failed, 2 invalid input (nothing runs, nothing is written).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from convlab import __version__
from convlab.study.limits import MAX_RUNS

# Start-up is kept light on purpose: `convlab --help` and `--version` import typer and nothing numerical (< 0.5 s);
# each command imports convlab.api (and with it torch) when it runs.
if TYPE_CHECKING:
    from convlab.api import Study

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: no `<bool>` metavars on flags, no rich import at start-up
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Check the convergence theory of flow-based generative models by experiment.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"convlab {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Check the convergence theory of flow-based generative models by experiment."""


StudyArg = Annotated[
    Path, typer.Argument(help="a study file (studies/quickstart.yaml) or a results directory (results/quickstart)")
]
SetOpt = Annotated[
    list[str],
    typer.Option("--set", metavar="KEY=VALUE", help="override a study value: dotted.key=value (YAML), repeatable"),
]
OutOpt = Annotated[
    Path | None, typer.Option("--out", help="results root (default: results, or the results directory given)")
]


AllowLargeOpt = Annotated[
    bool,
    typer.Option(
        "--allow-large",
        help=f"run plans of more than {MAX_RUNS} grid points, and runs estimated to need more memory than the device"
        " has",
    ),
]


def _fail(err) -> typer.Exit:
    for message in err.messages:
        typer.echo(message, err=True)
    return typer.Exit(2)


def _guarded(command):
    """A command whose invalid input exits 2 with its messages, and whose unreadable or unwritable files (a damaged
    store, a read-only results directory) exit 1 with one line naming the file: never a traceback."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        from convlab.api import NotWritable
        from convlab.study.execute import WorkersDidNotStart
        from convlab.study.plan import StudyError
        from convlab.study.store import Damaged

        try:
            return command(*args, **kwargs)
        except StudyError as err:
            raise _fail(err) from None
        except Damaged as err:
            typer.echo(f"damaged: {err}", err=True)
            raise typer.Exit(1) from None
        except (NotWritable, WorkersDidNotStart) as err:
            typer.echo(str(err), err=True)
            raise typer.Exit(1) from None
        except BrokenPipeError:  # `convlab ... | head`: the reader left; say nothing more (Python's own advice)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(1) from None
        except OSError as err:
            where = f"{err.filename}: " if err.filename else ""
            typer.echo(f"{where}{err.strerror or err} ({type(err).__name__})", err=True)
            raise typer.Exit(1) from None

    return run


def _batch(option: str | None) -> int | str | None:
    """--batch as Study.run takes it: a number of runs as an int, auto/off (or a bad value, which check_options
    names) as given."""
    return int(option) if option is not None and option.isdigit() else option


def _open(study: Path, overrides: list[str], out: Path | None, *, allow_large: bool = False) -> Study:
    from convlab.api import Study

    s = Study(study, overrides, out=out, allow_large=allow_large)
    for warning in s.plan.warnings:
        typer.echo(f"warning: {warning}", err=True)
    return s


def _print_damage(s: Study, status=None) -> None:
    for run_id, problem in (status or s.status()).damage:
        typer.echo(f"  damaged {run_id}: {problem} (the next sweep sets it aside and recomputes it)", err=True)


def _print_failures(s: Study, limit: int = 20) -> None:
    from convlab.api import point_text

    failures = s.status().failures
    for f in failures[:limit]:
        typer.echo(f"  failed {f.run_id} {point_text(f.point)}: [{f.stage}] {f.reason}")
    if len(failures) > limit:
        typer.echo(f"  ... and {len(failures) - limit} more failed runs (convlab status)")


@app.command()
@_guarded
def sweep(
    study: StudyArg,
    set_: SetOpt = [],
    jobs: Annotated[
        int | None, typer.Option("--jobs", min=1, help="local worker processes (default: resources.jobs or 1)")
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="auto | cpu | cuda (default: resources.device or auto)")
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option(
            "--batch", help="runs trained as one batch: auto | off | N at most (default: resources.batch or auto)"
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads", min=1, help="torch threads per local worker (default: resources.threads or 1; see the docs)"
        ),
    ] = None,
    out: OutOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the plan and what is done and left; run nothing")
    ] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="rerun runs that failed before")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="recompute finished runs too (old results are set aside, not deleted)")
    ] = False,
    post: Annotated[bool, typer.Option("--post/--no-post", help="collect, report and draw figures afterwards")] = True,
    executor: Annotated[str, typer.Option("--executor", help="local | slurm (job arrays through submitit)")] = "local",
    detach: Annotated[
        bool, typer.Option("--detach", help="slurm: submit and exit; rerun the command (or status) later")
    ] = False,
    partition: Annotated[
        str | None, typer.Option("--partition", help="slurm partition (default: resources.partition)")
    ] = None,
    time_min: Annotated[
        int | None,
        typer.Option("--time-min", min=1, help="slurm time limit per run, minutes (default: resources.time_min or 60)"),
    ] = None,
    cpus_per_run: Annotated[
        int | None,
        typer.Option("--cpus-per-run", min=1, help="slurm CPUs per run (default: resources.cpus_per_run or 1)"),
    ] = None,
    gpus_per_run: Annotated[
        int | None,
        typer.Option("--gpus-per-run", min=0, help="slurm GPUs per run (default: resources.gpus_per_run or 0)"),
    ] = None,
    mem_gb: Annotated[
        float | None,
        typer.Option(
            "--mem-gb", min=0.001, help="slurm memory per run, GB (default: resources.mem_gb or the partition's)"
        ),
    ] = None,
    array_parallelism: Annotated[
        int | None,
        typer.Option(
            "--array-parallelism",
            min=1,
            help="slurm: most tasks of an array at once (default: resources.array_parallelism or 64)",
        ),
    ] = None,
    allow_large: AllowLargeOpt = False,
) -> None:
    """Run every run of a study that is not done yet; resumable, safe to kill."""
    s = _open(study, set_, out, allow_large=allow_large)
    batch_value = _batch(batch)
    # a dry run checks the options too (device, batch, memory), but does not need a SLURM cluster to plan for one
    s.check_options(
        device=device, executor=executor, detach=detach, jobs=jobs, batch=batch_value, mem_gb=mem_gb, dry_run=dry_run
    )
    from convlab.api import describe, point_text

    typer.echo(describe(s))
    if dry_run:
        typer.echo(f"results directory: {s.dir}")
        for r in s.plan.runs[:10]:
            typer.echo(f"  {r.run_id} {s.store.state(r.run_id):<10} {r.kind:<14} {point_text(r.point)}")
        if len(s.plan.runs) > 10:
            typer.echo(f"  ... {len(s.plan.runs) - 10} more")
        return
    from convlab.study.progress import SweepProgress
    from convlab.study.slurm import SlurmOptions

    before = s.status()
    _print_damage(s, before)
    options = SlurmOptions.from_resources(
        s.plan.study.resources,
        partition=partition,
        time_min=time_min,
        cpus_per_run=cpus_per_run,
        gpus_per_run=gpus_per_run,
        mem_gb=mem_gb,
        array_parallelism=array_parallelism,
    )
    # The local executor reports every planned run, done ones included; SLURM's follow() only the active ones.
    progress = SweepProgress(
        len(s.plan.runs),
        done_before=0 if force or executor == "local" else before.done,
        failed_before=0,
        live=False if detach else None,
    )
    warned = len(s.plan.warnings)
    try:
        result = s.run(
            jobs=jobs,
            device=device,
            executor=executor,
            retry_failed=retry_failed,
            force=force,
            slurm=options,
            detach=detach,
            batch=batch_value,
            threads=threads,
            on_outcome=progress.update,
        )
    finally:
        progress.close()
    for warning in s.plan.warnings[warned:]:  # what the sweep found on its way (a changed definition, say)
        typer.echo(f"warning: {warning}", err=True)
    if executor == "slurm":
        arrays = sorted({j.split("_")[0] for j in result.submitted.values()})
        typer.echo(
            f"submitted {len(result.submitted)} runs as SLURM job array(s) {', '.join(arrays) or '-'}; "
            f"{len(result.active)} runs queued or running"
        )
        if detach:
            typer.echo(f"detached: rerun this command, or `convlab status {study}`, to follow it")
            return
    skipped = 0 if retry_failed or force else before.failed
    ran_ok, ran_failed, busy = result.count("ok"), result.count("failed"), result.count("busy")
    typer.echo(
        f"ran {ran_ok + ran_failed} runs: {ran_ok} ok, {ran_failed} failed"
        + (f"; {skipped} failed before (rerun with --retry-failed)" if skipped else "")
        + (f"; {busy} running in another sweep" if busy else "")
    )
    _print_failures(s)
    post_failed = _post(s) if post else False
    raise typer.Exit(1 if _unfinished(s) or post_failed else 0)


def _unfinished(s: Study) -> bool:
    """Whether the table lacks some planned run, or holds a failed one; says which on stderr. A sweep that ends
    with runs missing (damaged, deleted, running elsewhere) is not a success, whatever its runs reported."""
    st = s.status()
    missing = st.total - st.done - st.failed
    if missing:
        parts = {"damaged": st.damaged, "running in another sweep": st.running, "not run": st.incomplete + st.new}
        why = ", ".join(f"{n} {what}" for what, n in parts.items() if n)
        typer.echo(f"{s.name}: the table lacks {missing} of the {st.total} planned runs ({why})", err=True)
        _print_damage(s, st)
    return bool(st.failed or missing)


def _post(s: Study) -> bool:
    """Table, report and figures, printed; True when something in them failed (said on stderr)."""
    result = s.post()
    if result.table is not None:
        typer.echo(f"table: {result.table}")
    if result.report is not None:
        typer.echo(result.report.render())
    for p in result.figures:
        typer.echo(f"figure: {p}")
    for e in result.errors:
        typer.echo(e, err=True)
    return bool(result.errors) and result.table is not None


@app.command()
@_guarded
def refine(
    study: StudyArg,
    set_: SetOpt = [],
    out: OutOpt = None,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="most rounds of extending and running")] = 3,
    max_runs: Annotated[
        int | None, typer.Option("--max-runs", min=1, help="most new runs in all (default: as many as the study has)")
    ] = None,
    steps: Annotated[int, typer.Option("--steps", min=1, help="new x values per unsettled group and round")] = 2,
    jobs: Annotated[int | None, typer.Option("--jobs", min=1, help="local worker processes")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto | cpu | cuda")] = None,
    executor: Annotated[str, typer.Option("--executor", help="local | slurm")] = "local",
    batch: Annotated[
        str | None, typer.Option("--batch", help="runs trained as one batch: auto | off | N at most")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the first round's extensions and why; run nothing")
    ] = False,
    allow_large: AllowLargeOpt = False,
) -> None:
    """Extend a study where a rate has not settled (more x where it is pre-asymptotic, more paired seeds where its
    interval is too wide), run it, and report again; each extension says why."""
    s = _open(study, set_, out, allow_large=allow_large)
    batch_value = _batch(batch)
    s.check_options(device=device, executor=executor, jobs=jobs, batch=batch_value, dry_run=dry_run)
    options = dict(jobs=jobs, device=device, executor=executor, batch=batch_value)
    refinement = s.refine(rounds=rounds, max_runs=max_runs, steps=steps, dry_run=dry_run, **options)
    for i, entries in enumerate(refinement.rounds, 1):
        for e in entries:
            where = ", ".join(f"{k}={v}" for k, v in e["where"].items()) or "every grid point"
            change = "; ".join(f"{k} += {vs}" for k, vs in e["grid"].items())
            typer.echo(f"round {i}: {where}: {change}  ({e['why']})")
    for why in refinement.cannot:
        typer.echo(f"not refined: {why}")
    if dry_run:
        settled = " (every rate settled)" if refinement.settled else ""
        typer.echo(f"dry run: the first round would add {refinement.new_runs} runs{settled}; nothing ran")
        return
    done = "every rate settled" if refinement.settled else "no rate refine can extend is unsettled"
    state = refinement.stopped or (done if len(refinement.rounds) < rounds else f"stopped after {rounds} rounds")
    typer.echo(
        f"refined: {refinement.new_runs} new runs; {state}. The refined study is {s.dir / 'study.json'}: "
        f"`convlab report {s.dir}` reads it (the study file itself is unchanged)"
    )
    post_failed = _post(s)
    raise typer.Exit(1 if _unfinished(s) or post_failed else 0)


@app.command()
@_guarded
def status(study: StudyArg, set_: SetOpt = [], out: OutOpt = None, allow_large: AllowLargeOpt = False) -> None:
    """How far a study has got: done, failed, running, left."""
    s = _open(study, set_, out, allow_large=allow_large)
    from convlab.study.slurm import load_submissions

    if load_submissions(s.store):  # a SLURM sweep: learn what happened to its tasks first
        from convlab.study.slurm import SlurmUnavailable, check_available, reconcile

        try:
            check_available()
            queued = reconcile(s.store)["active"]
            typer.echo(f"SLURM: {len(queued)} runs queued or running")
        except SlurmUnavailable as err:
            typer.echo(f"SLURM not reachable from here ({err}): showing the run directories only")
    from convlab.api import describe

    typer.echo(describe(s))
    _print_failures(s, limit=10**9)
    _print_damage(s)


def _finished(s: Study):
    """The table of the finished runs; exit 1 when there are none. Damaged runs are named on stderr (the table
    leaves them out)."""
    df = s.results()
    _print_damage(s)
    if df.empty:
        typer.echo(f"{s.name}: no finished runs yet", err=True)
        raise typer.Exit(1)
    return df


@app.command()
@_guarded
def collect(
    study: StudyArg,
    set_: SetOpt = [],
    out: OutOpt = None,
    csv: Annotated[bool, typer.Option("--csv", help="also write results.csv")] = False,
    allow_large: AllowLargeOpt = False,
) -> None:
    """Build results.parquet: one row per finished run."""
    s = _open(study, set_, out, allow_large=allow_large)
    df = _finished(s)
    typer.echo(f"{s.write_table(df, csv=csv)} ({len(df)} rows, {int((df['status'] != 'ok').sum())} failed)")
    raise typer.Exit(1 if s.status().damaged else 0)


@app.command()
@_guarded
def report(
    study: StudyArg,
    set_: SetOpt = [],
    out: OutOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    allow_large: AllowLargeOpt = False,
) -> None:
    """Fitted rates per group: slope, CI, expected, verdict (and comparisons across a column); checks."""
    from convlab.files import json_bytes

    s = _open(study, set_, out, allow_large=allow_large)
    rep = s.report(_finished(s))
    typer.echo(json.dumps(json.loads(json_bytes(rep.to_dict())), indent=1) if as_json else rep.render())
    s.write_report(rep)  # after printing: a read-only store still shows the report, then says it kept no copy
    raise typer.Exit(1 if s.status().damaged else 0)


@app.command()
@_guarded
def figures(
    studies: Annotated[
        list[Path] | None, typer.Argument(help="study files or results directories (default: every study under --out)")
    ] = None,
    out: OutOpt = None,
    allow_large: AllowLargeOpt = False,
) -> None:
    """Regenerate the figures of studies from their stored results."""
    from convlab.api import Study
    from convlab.study.plan import StudyError

    if studies:
        items = [Study(p, out=out, allow_large=allow_large) for p in studies]
    else:  # every study under --out: one that cannot be read is said and skipped, the others are drawn
        items, root = [], out or Path("results")
        for snapshot in sorted(root.glob("*/study.json")):
            try:
                items.append(Study(snapshot.parent, allow_large=allow_large))
            except StudyError as err:
                typer.echo(f"{snapshot.parent}: skipped: {'; '.join(err.messages)}", err=True)
    if not items:
        typer.echo(f"no studies with results under {out or 'results'}", err=True)
        raise typer.Exit(1)
    failed = len(items) < len(studies or list((out or Path("results")).glob("*/study.json")))
    for s in items:
        if not (s.dir / "results.parquet").exists():
            typer.echo(f"{s.name}: no results.parquet (run convlab collect first)", err=True)
            continue
        try:
            for p in s.figures():
                typer.echo(f"figure: {p}")
            for reason in s.skipped_panels:
                typer.echo(f"{s.name}: figure panel not drawn: {reason}", err=True)
                failed = True
        except Exception as err:  # noqa: BLE001 - one study's script failing does not stop the others
            typer.echo(f"{s.name}: figure script failed: {type(err).__name__}: {err}", err=True)
            failed = True
    raise typer.Exit(1 if failed else 0)


@app.command()
@_guarded
def publish(
    results: Annotated[list[Path], typer.Argument(help="results directories (results/quickstart)")],
    docs: Annotated[Path, typer.Option("--docs", help="where study pages read from")] = Path("docs/studies"),
) -> None:
    """Copy studies' report.json, study.json and figures into the docs tree, where their pages are built."""
    from convlab.study.publish import publish as publish_one
    from convlab.study.store import Damaged

    missing = False
    for r in results:
        try:
            p = publish_one(r, docs)
        except (FileNotFoundError, ValueError, Damaged) as err:
            typer.echo(str(err), err=True)
            missing = True
            continue
        typer.echo(f"{r} -> {p.folder}: {len(p.files)} files")
    raise typer.Exit(2 if missing else 0)


@app.command()
def targets() -> None:
    """List the analytic targets and their parameters."""
    from convlab.registry import parameters
    from convlab.targets import TARGETS

    for name, make in TARGETS.items():
        params = ", ".join(
            f"{p.name}={p.default!r}" if p.default is not inspect.Parameter.empty else p.name for p in parameters(make)
        )
        doc = (make.__doc__ or "").strip().splitlines()[0]
        typer.echo(f"{name}({params})\n    {doc}")


@app.command()
def kinds(name: Annotated[str | None, typer.Argument(help="one run kind (default: all)")] = None) -> None:
    """List the run kinds: their config keys with defaults, and the metrics they write (what a study file names)."""
    from convlab.runs import RUN_KINDS
    from convlab.runs.describe import describe_kind

    if name is not None and name not in RUN_KINDS:
        from convlab.registry import did_you_mean

        typer.echo(
            f"unknown run kind{did_you_mean(name, sorted(RUN_KINDS))}; "
            f"known: {', '.join(sorted(RUN_KINDS))} (got {name!r})",
            err=True,
        )
        raise typer.Exit(2)
    for kind in [RUN_KINDS[name]] if name else RUN_KINDS.values():
        typer.echo(describe_kind(kind))


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option("--out", help="write to this file (default: print)")] = None,
) -> None:
    """Print the JSON Schema of study files (editors validate and complete studies/*.yaml with it)."""
    from convlab.study.jsonschema import study_json_schema

    text = json.dumps(study_json_schema(), indent=1) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        # the line that points an editor at it: relative to a study file beside the schema, absolute otherwise
        typer.echo(f"wrote {out}; a study file beside it starts with\n# yaml-language-server: $schema={out.name}")
        typer.echo(f"(anywhere else: # yaml-language-server: $schema={out.resolve()})")


@app.command()
@_guarded
def migrate(
    paths: Annotated[list[Path], typer.Argument(help="study results directories, or results roots holding them")],
) -> None:
    """Rewrite stored results written under older names (config keys, metrics, target parameters) into today's."""
    from convlab.api import Study
    from convlab.study.migrate import migrate_results
    from convlab.study.plan import StudyError

    dirs = []
    for p in paths:
        if not p.is_dir():
            typer.echo(f"{p}: no such directory", err=True)
            raise typer.Exit(2)
        dirs += (
            [p]
            if (p / "runs").is_dir() or (p / "study.json").exists()
            else sorted(d for d in p.iterdir() if (d / "runs").is_dir())
        )
    if not dirs:
        typer.echo(f"{', '.join(map(str, paths))}: no study results to migrate", err=True)
        raise typer.Exit(2)
    for d in dirs:
        m = migrate_results(d)
        if m.already:
            typer.echo(f"{d}: already current")
            continue
        typer.echo(f"{d}: {len(m.moved)} runs migrated")
        if m.set_aside:
            typer.echo(
                f"  {len(m.set_aside)} runs set aside to replaced/ (their target's draws changed): a sweep recomputes "
                "them"
            )
        for problem in m.damaged:
            typer.echo(f"  not migrated, damaged: {problem} (a sweep recomputes its run)", err=True)
        if (d / "study.json").exists():
            try:
                result = Study(d).post(figures=False)
            except StudyError as err:
                typer.echo(f"  table and report not rebuilt: {'; '.join(err.messages)}", err=True)
                continue
            typer.echo(
                f"  table and report rebuilt: {result.table}" if result.table else f"  {'; '.join(result.errors)}"
            )


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
