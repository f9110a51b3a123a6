"""The Python API of studies, for notebooks and scripts; the `convlab` command line is a thin layer over it.

    import convlab
    study = convlab.open_study("studies/quickstart.yaml", overrides=["seeds=2"])   # validated: StudyError if not
    study.run(jobs=2)                  # or executor="slurm", slurm=SlurmOptions(...)
    study.status()                     # Status(done=..., failed=..., ...)
    df = study.results()               # one row per finished run
    report = study.report()            # Report: report.fit(y="coupled_error", where={"solver": "euler"}, group=...)
    study.figures()                    # the study's figure script on its stored results

A study is a study file or a results directory (its study.json: the study as it was run, overrides included).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convlab.device import device_name, memory_bytes, resolve_device
from convlab.files import atomic_write_bytes, atomic_write_json, utc_now
from convlab.study.execute import Outcome, SweepResult, unguarded_main_script
from convlab.study.plan import MAX_RUNS, Plan, StudyError, load_plan, load_study, make_plan, memory_problems
from convlab.study.store import FORMAT, STUDY, StaleResults, StudyStore, read_record

if TYPE_CHECKING:  # pandas and the report are imported where they are used: the command line starts faster
    import pandas as pd

    from convlab.study.report import Report

DEVICES = ("auto", "cpu", "cuda")
EXECUTORS = ("local", "slurm")


@dataclass
class Failure:
    run_id: str
    point: dict[str, Any]
    stage: str | None
    reason: str | None


@dataclass
class Status:
    """How far a study has got; `failures` lists the failed runs with their stage and reason, `damage` the damaged
    ones with the file and why."""

    total: int
    done: int = 0
    failed: int = 0
    running: int = 0
    incomplete: int = 0  # started and interrupted (no DONE, no error.json, nobody running it)
    damaged: int = 0  # a stored file missing, unreadable or changed: set aside and recomputed by the next sweep
    new: int = 0
    failures: list[Failure] = field(default_factory=list)
    damage: list[tuple[str, str]] = field(default_factory=list)  # (run id, '<path>: <why>')

    @property
    def left(self) -> int:
        return self.incomplete + self.damaged + self.new


@dataclass
class PostResult:
    """What `post` made: the table, the report, the figures, and what went wrong (never an exception)."""

    table: Path | None = None
    report: Report | None = None
    figures: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class Refinement:
    """What `refine` did: the extend entries of each round, the runs they added, and why it stopped."""

    rounds: list[list[dict[str, Any]]] = field(default_factory=list)  # each entry with the `why` of its lever
    new_runs: int = 0
    settled: bool = False  # no group needed more
    cannot: list[str] = field(default_factory=list)  # unsettled rates refine cannot extend, and why
    stopped: str | None = None  # the budget stopped it
    result: SweepResult | None = None  # the last round's sweep


class NotWritable(Exception):
    """The results directory cannot be written (read-only, no permission): not invalid input, nothing ran."""


BUSY_POLL_S = 1.0  # how often a sweep looks whether another sweep released the runs it holds


class Study:
    """A validated study (its plan) and where its results live. Raises StudyError for invalid input, before
    anything is written."""

    def __init__(
        self,
        source: str | Path,
        overrides: Sequence[str] = (),
        *,
        out: str | Path | None = None,
        allow_large: bool = False,
    ):
        """`allow_large`: accept plans of more than plan.MAX_RUNS grid points, and runs whose estimated memory is
        more than the device has (runs.memory); refused otherwise, before anything runs."""
        self.source, self.overrides = Path(source), list(overrides)
        self.allow_large = allow_large or _ran_large(self.source)
        self.skipped_panels: list[str] = []
        self.plan: Plan = load_plan(self.source, self.overrides, allow_large=self.allow_large)
        if out is None and self.source.is_dir():  # a results directory: it is the store
            self.store = StudyStore(self.source.resolve().parent, self.source.resolve().name)
        else:
            root = Path(out) if out is not None else Path("results")
            folder = self.name
            if self.overrides:  # overrides that leave the study as its file has it (resources aside) change nothing
                as_filed = load_study(self.source).model_copy(update={"resources": self.plan.study.resources})
                folder += "" if as_filed == self.plan.study else override_suffix(self.overrides)
            for path, what in ((root, "--out"), (root / folder, "the study's results directory")):
                if path.exists() and not path.is_dir():
                    raise StudyError([f"{what}: {path} is a file, not a directory (got {str(path)!r})"])
            self.store = StudyStore(root, folder)
        try:
            self.store.check_format()
        except StaleResults as err:
            raise StudyError([str(err)]) from None
        self.damaged_record = self.store.damaged_study_record()
        if self.damaged_record is not None:
            self.plan.warnings.append(
                f"{self.damaged_record}: damaged; the next sweep sets it aside and writes the study it runs"
            )

    @property
    def name(self) -> str:
        return self.plan.study.name

    @property
    def dir(self) -> Path:
        return self.store.dir

    # -- running ----------------------------------------------------------------------------------------------------

    def status(self) -> Status:
        s = Status(total=len(self.plan.runs))
        for r in self.plan.runs:
            files = self.store.inspect(r.run_id)
            state = files.state
            if state in ("incomplete", "new") and self.store.is_running(r.run_id):
                state = "running"
            setattr(s, state, getattr(s, state) + 1)
            if state == "failed":
                s.failures.append(Failure(r.run_id, r.point, files.error.get("stage"), files.error.get("reason")))
            elif state == "damaged":
                s.damage.append((r.run_id, files.problem))
        return s

    def run(
        self,
        *,
        jobs: int | None = None,
        device: str | None = None,
        executor: str = "local",
        retry_failed: bool = False,
        force: bool = False,
        slurm: Any = None,
        detach: bool = False,
        batch: int | str | None = None,
        threads: int | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
        progress: bool | None = None,
    ) -> SweepResult:
        """Run every run that is not done (resumable; kill it at any time). Local: `jobs` worker processes
        (default resources.jobs or 1) of `threads` torch threads each (default resources.threads or 1). SLURM:
        job arrays with `slurm` (a SlurmOptions; default from the study's resources), followed to the end unless
        `detach`. `batch`: runs trained as one batch, 'auto' (default:
        resources.batch or auto), 'off', or at most this many. Each run's Outcome goes to `on_outcome`; `progress`
        (default: when no `on_outcome` is given) shows the CLI's progress on stderr, a live bar on a terminal or in a
        notebook, a line per run otherwise. Raises StudyError for a bad option before running."""
        bar = None
        show = progress if progress is not None else on_outcome is None
        if show:
            from convlab.study.progress import SweepProgress

            bar = SweepProgress(len(self.plan.runs), done_before=0, failed_before=0, stream=sys.stderr)

        def each(o: Outcome) -> None:
            if bar is not None:
                bar.update(o)
            if on_outcome is not None:
                on_outcome(o)

        try:
            return self._run(jobs, device, executor, retry_failed, force, slurm, detach, batch, threads, each)
        finally:
            if bar is not None:
                bar.close()

    def _run(self, jobs, device, executor, retry_failed, force, slurm, detach, batch, threads, on_outcome):
        device = self.check_options(
            device=device,
            executor=executor,
            detach=detach,
            jobs=jobs,
            batch=batch,
            mem_gb=getattr(slurm, "mem_gb", None),
        )
        batch = batch if batch is not None else self.plan.study.resources.batch
        workers = jobs or self.plan.study.resources.jobs or 1
        if executor == "local" and workers > 1 and (script := unguarded_main_script()) is not None:
            raise StudyError(
                [
                    f"{script}: runs with jobs={workers} start worker processes that import this script again "
                    "(multiprocessing's spawn): put the code that runs the study under "
                    '`if __name__ == "__main__":`, or run with jobs=1'
                ]
            )
        self._check_writable()
        if self.store.damaged_study_record() is not None:
            self.store.set_aside_file(STUDY, "damaged")
        self._write_definition()
        if executor == "local":
            from convlab.study.execute import run_local

            options = dict(
                jobs=workers,
                device=device,
                retry_failed=retry_failed,
                batch=batch,
                threads=threads or self.plan.study.resources.threads,
                on_outcome=on_outcome,
            )
            result = run_local(self.plan, self.store, force=force, **options)
            # Runs another sweep of this study holds: wait for them (its runs are this table's too), then run any
            # it left unfinished (it was killed), so that the table holds every planned run when this returns.
            busy = {o.run_id for o in result.outcomes if o.status == "busy"}
            while busy:
                while any(self.store.is_running(r) for r in busy):
                    time.sleep(BUSY_POLL_S)
                plan = replace(self.plan, runs=[r for r in self.plan.runs if r.run_id in busy])
                again = run_local(plan, self.store, force=False, **options)
                result.outcomes = [o for o in result.outcomes if o.run_id not in busy] + again.outcomes
                busy = {o.run_id for o in again.outcomes if o.status == "busy"}
            return result
        from convlab.study.slurm import SlurmOptions, follow, reconcile, submit

        options = slurm or SlurmOptions.from_resources(self.plan.study.resources)
        submitted = submit(
            self.plan, self.store, options, device=device, retry_failed=retry_failed, force=force, batch=batch
        )
        planned = {r.run_id for r in self.plan.runs}
        active = sorted((set(reconcile(self.store)["active"]) | set(submitted)) & planned)
        if detach:
            return SweepResult(submitted=submitted, active=active)
        result = follow(self.store, active, on_outcome=on_outcome)
        result.submitted, result.active = submitted, active
        return result

    def _write_definition(self) -> None:
        """Write study.json, the definition this results directory holds. A refined definition (the same study
        with `extend` entries refine added) is kept when its study file is swept again; any other change keeps the
        previous definition under definitions/ and says so: nothing stored is replaced silently."""
        spec = self.plan.study.model_dump(mode="json")
        stored = read_record(self.dir / STUDY) if (self.dir / STUDY).is_file() else None
        if stored is not None and isinstance(stored.get("study"), dict):
            before = stored["study"]
            old, new = before.get("extend") or [], spec.get("extend") or []
            same_but_extend = {**before, "extend": []} == {**spec, "extend": []}
            if same_but_extend and not new and old:
                spec = before  # the refined study swept from its file: its extensions (and their runs) stay
            elif same_but_extend and new[: len(old)] == old:
                pass  # refine extending it: nothing of it is lost
            elif before != spec:
                kept = self.dir / "definitions" / f"study-{str(stored.get('written', 'unknown')).replace(':', '')}.json"
                atomic_write_json(kept, stored)
                changed = sorted(k for k in {*before, *spec} if before.get(k) != spec.get(k))
                self.plan.warnings.append(
                    f"{self.dir / STUDY}: the study's definition changed ({', '.join(changed)}); the previous one "
                    f"is kept as {kept}"
                )
        record = {
            "source": str(self.plan.study_file.resolve()),
            "overrides": self.overrides,
            "written": utc_now(),
            "format": FORMAT,
            "study": spec,
        }
        if self.allow_large:  # the results directory stands for this study: opening it later accepts its size
            record["allow_large"] = True
        unchanged = stored is not None and {**stored, "written": None} == {**record, "written": None}
        if not unchanged:  # (an unchanged definition keeps the time it was written)
            atomic_write_json(self.dir / STUDY, record)

    def definition(self) -> dict[str, Any]:
        """Which definition this study is and which runs it has: its source and overrides, when its study.json was
        written, the runs it plans (what `report` states first)."""
        stored = read_record(self.dir / STUDY) if (self.dir / STUDY).is_file() else {}
        # names, not paths: the same results give the same report wherever they are read from (and a published
        # report carries no machine's paths)
        return {
            "source": Path(stored.get("source") or self.plan.study_file).name,
            "overrides": list(stored.get("overrides", self.overrides)),
            "written": stored.get("written"),
            "directory": self.dir.name,
            "planned": len(self.plan.runs),
        }

    def _check_writable(self) -> None:
        """NotWritable, in one line, when the results directory cannot be written (read-only, no permission)."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            probe = self.dir / f".convlab-write-probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as err:
            raise NotWritable(
                f"{self.dir}: cannot write the results here ({err.strerror or err}); sweep into another --out"
            ) from None

    def check_options(
        self,
        *,
        device: str | None = None,
        executor: str = "local",
        detach: bool = False,
        jobs: int | None = None,
        batch: int | str | None = None,
        mem_gb: float | None = None,
        dry_run: bool = False,
    ) -> str:
        """The device to run on (the option, else resources.device, else auto); StudyError for a bad option, or for
        a run that cannot fit in the device's memory (unless allow_large): the machine's RAM or the GPU's memory
        locally, the memory asked for per run on SLURM (`mem_gb`, else resources.mem_gb; unchecked without). A
        `dry_run` does not ask whether a SLURM cluster is reachable."""
        device = device or self.plan.study.resources.device or "auto"
        if device not in DEVICES:
            raise StudyError([f"--device: must be auto, cpu or cuda (got {device!r})"])
        if executor not in EXECUTORS:
            raise StudyError([f"--executor: must be local or slurm (got {executor!r})"])
        if detach and executor != "slurm":
            raise StudyError(["--detach: only with --executor slurm (a local sweep runs in this process)"])
        if jobs is not None and jobs < 1:
            raise StudyError([f"--jobs: must be >= 1 (got {jobs})"])
        if batch is not None and batch not in ("auto", "off") and not (isinstance(batch, int) and batch >= 1):
            raise StudyError([f"--batch: must be auto, off or a number of runs >= 1 (got {batch!r})"])
        if executor == "local":  # the GPUs of a SLURM job are on its node
            try:
                resolved = resolve_device(device)
            except ValueError as err:
                raise StudyError([f"--device: {str(err).removeprefix('device: ')}"]) from None
            # each of the jobs workers holds a run (or a batch) at once: each gets its share of the memory
            workers = jobs or self.plan.study.resources.jobs or 1
            limit = memory_bytes(resolved) / workers
            where = f"the memory of {device_name(resolved)}" if resolved.type == "cuda" else "this machine's memory"
            where += f" shared by {workers} workers" if workers > 1 else ""
        else:
            from convlab.study.slurm import SlurmUnavailable, check_available

            try:
                if not dry_run:
                    check_available()
            except SlurmUnavailable as err:
                raise StudyError([f"--executor slurm: {err}"]) from None
            mem_gb = mem_gb or self.plan.study.resources.mem_gb
            limit, where = (None, "") if mem_gb is None else (mem_gb * 2**30, "the memory asked per SLURM run")
        if limit is not None and not self.allow_large:
            problems = memory_problems(self.plan, limit, where)
            if problems:
                raise StudyError(problems)
        return device

    # -- results ----------------------------------------------------------------------------------------------------

    def results(self) -> pd.DataFrame:
        """The tidy table of the finished runs (done or failed), one row each, in plan order."""
        from convlab.study.table import collect

        return collect(self.plan, self.store)

    def write_table(self, df: pd.DataFrame | None = None, *, csv: bool = False) -> Path:
        from convlab.study.table import write_table

        return write_table(self.results() if df is None else df, self.store, csv=csv)

    def report(self, df: pd.DataFrame | None = None) -> Report:
        """The declared rates fitted per group and the declared checks counted, on the finished runs."""
        from convlab.study.report import make_report

        return make_report(self.plan.study, self.results() if df is None else df, definition=self.definition())

    def write_report(self, report: Report) -> None:
        atomic_write_json(self.dir / "report.json", report.to_dict())
        atomic_write_bytes(self.dir / "report.md", report.render().encode())

    def figures(self) -> list[Path]:
        """The study's figure script (figures/<name>.py next to the study file) on its stored table and report; a
        panel it cannot draw is skipped and named in `skipped_panels`."""
        from convlab.study.figures import make_figures

        paths, self.skipped_panels = make_figures(self.plan.study, self.plan.study_file, self.dir)
        return paths

    def refine(
        self,
        *,
        rounds: int = 3,
        max_runs: int | None = None,
        steps: int = 2,
        dry_run: bool = False,
        **run_options: Any,
    ) -> Refinement:
        """Extend the study where a rate has not settled, run the new points into the same store, and repeat.

        Each round fits every rate. A group that is pre-asymptotic (the slope still moving) or has too few x gets
        `steps` more x values continuing its grid geometrically, for that group only, where x is a numeric config
        key. A group whose interval is too wide for its verdict (inconclusive, too few seeds), and an equivalence
        or one-sided comparison that is, gets more seeds: as many as its per-seed spread says a settled verdict
        needs (RateFit/Equivalence.seeds_needed), added to every level of `compare` alike, so that the runs stay
        paired. Each is an `extend` entry of the study, written into its study.json. It stops when no group needs
        more, after `rounds`, or when not even one more entry fits in `max_runs` new runs in all (default: as many
        as the study had); within the budget it adds what fits (x extensions whole, seeds one by one). Each entry
        says why its lever was chosen (`why`). `dry_run`: the first round's entries, planned and not run.
        `run_options` go to `run` (jobs, device, executor, batch).
        """
        if not self.plan.study.rates:
            raise StudyError([f"{self.plan.source}: rates: the study declares no rates, so there is nothing to refine"])
        if self.results().empty:
            raise StudyError([f"{self.name}: no finished runs yet: run `convlab sweep` first, then refine its rates"])
        budget = len(self.plan.runs) if max_runs is None else max_runs
        out = Refinement()
        for _ in range(rounds):
            report = self.report()
            extensions, why = [], {}
            for rate in report.rates:
                for e, reason in [*self._extensions(rate, steps, out), *self._seed_extensions(rate, out)]:
                    if e not in extensions:
                        extensions.append(e)
                        why[id(e)] = reason
            if not extensions:
                out.settled = not out.cannot
                break
            plan, accepted, new = self._within(extensions, budget - out.new_runs)
            if not accepted:
                out.stopped = f"the next round needs {new} runs, over the budget of {budget} ({out.new_runs} used)"
                break
            if len(accepted) < len(extensions):
                out.stopped = f"the budget of {budget} runs took {len(accepted)} of the {len(extensions)} extensions"
            out.rounds.append([{**e.model_dump(mode="json"), "why": why[id(e)]} for e in accepted])
            out.new_runs += new
            if dry_run:
                break
            self.plan = plan
            out.result = self.run(**run_options)
            if out.stopped:
                break
        return out

    def _within(self, extensions: list, room: int) -> tuple[Plan, list, int]:
        """(the plan with the leading extensions whose new runs fit in `room`, those extensions, their new runs);
        with none fitting, (the current plan, [], the runs the first one alone needs)."""
        known = {r.run_id for r in self.plan.runs}

        def planned(entries: list) -> tuple[Plan, int]:
            spec = self.plan.study.model_copy(update={"extend": [*self.plan.study.extend, *entries]})
            plan = make_plan(spec, self.plan.source, self.plan.origin, max_runs=None if self.allow_large else MAX_RUNS)
            return plan, sum(r.run_id not in known for r in plan.runs)

        plan, new = planned(extensions)
        if new <= room:
            return plan, extensions, new
        accepted, best = [], (self.plan, 0)
        for e in extensions:
            trial, count = planned([*accepted, e])
            if count <= room:
                accepted, best = [*accepted, e], (trial, count)
        if not accepted:
            return self.plan, [], planned(extensions[:1])[1]
        return best[0], accepted, best[1]

    def _seed_extensions(self, rate, out: Refinement) -> list:
        """One extend entry per seed to add where a verdict's interval is too wide: as many seeds as its spread says
        a settled verdict needs (3 in all where fewer than 2 give no spread), on every run of the group (every level
        of `compare` alike: the added runs are paired like the others)."""
        from convlab.study.columns import config_columns
        from convlab.study.schema import Extension

        spec = rate.spec
        if rate.error:
            return []
        columns = config_columns(self.plan.runs)
        wants: dict[str, tuple[dict, int]] = {}

        def cannot(why: str) -> None:
            if why not in out.cannot:
                out.cannot.append(why)

        def want(group: dict, need: int | None, n_seeds: int, what: str, why: str) -> None:
            if n_seeds < 2:
                need = max(need or 0, 3)
            if need is None:
                return cannot(f"{spec.title} {group or ''}: {what}: no number of seeds settles it at this spread")
            if need <= n_seeds:  # narrow enough, and still unsettled: the halves of x disagree
                return cannot(
                    f"{spec.title} {group or ''}: {what}: its interval is narrow enough at {n_seeds} seeds, but the "
                    "upper half of x says otherwise: the slope still changes with x (more x, not more seeds)"
                )
            where = {k: v for k, v in {**spec.where, **group}.items() if k in columns and v == v}
            key = json.dumps(where, sort_keys=True, default=str)
            if need > wants.get(key, ({}, 0, ""))[1]:
                reason = f"{spec.title} {group or ''}: {why}: {n_seeds} seeds, about {need} needed (paired seeds)"
                wants[key] = (where, need, reason)

        for g in rate.groups:
            if g.fit.verdict == "inconclusive" or str(g.fit.verdict).startswith("too few seeds"):
                why = "heavy-tailed runs widen its interval" if g.heavy_tail else "its interval is too wide to decide"
                want(g.group, g.fit.seeds_needed, g.fit.n_seeds, "its interval straddles the band's edge", why)
            elif g.fit.verdict == "pre-asymptotic" and g.heavy_tail:  # a few runs move the slope: seeds, not x
                need = g.fit.seeds_needed or 2 * g.fit.n_seeds
                want(g.group, need, g.fit.n_seeds, "pre-asymptotic", "heavy-tailed runs move the slope between halves")
        for e in rate.equivalence:
            for lv in e.levels:
                unsettled = [
                    (need, v)
                    for need, v in ((lv.seeds_needed_one_sided, lv.one_sided), (lv.seeds_needed, lv.verdict))
                    if v == "inconclusive" or str(v).startswith("too few seeds")
                ]
                if unsettled:
                    needs = [n for n, _ in unsettled if n is not None]
                    what = f"{spec.compare}={lv.level}"
                    want(e.group, max(needs) if needs else None, lv.n_seeds, what, f"{what}: its interval is too wide")
        out_entries = []
        for where, need, reason in wants.values():
            seeds = sorted({r.config.seed for r in self.plan.runs if _matches(r, where)})
            if len(seeds) >= need or not seeds:
                continue
            for s in range(max(seeds) + 1, max(seeds) + 1 + need - len(seeds)):
                out_entries.append((Extension(where=where, grid={"seed": [s]}), reason))
        return out_entries

    def _extensions(self, rate, steps: int, out: Refinement) -> list:
        """The extend entries that would settle a rate's unsettled groups (none where x is not a numeric config key:
        then `out.cannot` says so)."""
        from convlab.study.columns import config_columns
        from convlab.study.schema import Extension

        spec = rate.spec
        columns = config_columns(self.plan.runs)
        values = columns.get(spec.x, [])
        # x helps where the slope is still moving or there is too little of it; a wide interval takes seeds
        # (a heavy-tailed pre-asymptotic group takes seeds: a few runs move its slope, more x would not settle it)
        unsettled = [
            g
            for g in rate.groups
            if g.fit.verdict == "insufficient data" or (g.fit.verdict == "pre-asymptotic" and not g.heavy_tail)
        ]
        if rate.error or not unsettled:
            return []
        if not values or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            why = f"{spec.title}: x = {spec.x} is not a numeric config key (a metric such as h: extend its key's grid)"
            if why not in out.cannot:
                out.cannot.append(why)
            return []
        integer = all(isinstance(v, int) for v in values)
        entries = []
        for g in unsettled:
            if g.n_failed and not g.fit.n_points:
                why = f"{spec.title} {g.group}: every run failed ({', '.join(g.failures)}): more x cannot settle it"
                if why not in out.cannot:
                    out.cannot.append(why)
                continue
            if g.fit.verdict == "pre-asymptotic" and not g.fit.settle_at:
                why = f"{spec.title} {g.group}: the next x are at the floor (unresolved), more x cannot settle it"
                if why not in out.cannot:
                    out.cannot.append(why)
                continue
            if not math.isfinite(g.fit.x_max):
                continue
            # config columns only (a metric such as `degenerate` selects no grid point); a missing value (NaN: a
            # column this target does not have) is left out, since it equals nothing
            where = {k: v for k, v in {**spec.where, **g.group}.items() if k in columns and v == v}
            xs = sorted({float(v) for v in values if v <= g.fit.x_max})
            ratio = xs[-1] / xs[-2] if len(xs) >= 2 and xs[-2] > 0 and spec.x_scale == "log" else None
            step = xs[-1] - xs[-2] if len(xs) >= 2 else 1.0
            new = [xs[-1] * ratio**k if ratio else xs[-1] + k * step for k in range(1, steps + 1)]
            new = [round(v) if integer else v for v in new]
            new = [v for v in new if v not in values]
            if new:
                reason = (
                    "the slope still moves with x (pre-asymptotic): more x"
                    if g.fit.verdict == "pre-asymptotic"
                    else "less than a decade of resolved x (insufficient data): more x"
                )
                entries.append((Extension(where=where, grid={spec.x: new}), f"{spec.title} {g.group or ''}: {reason}"))
        return entries

    def post(self, *, csv: bool = True, figures: bool = True) -> PostResult:
        """Collect, report and draw: table, report.json/md and figures. A failure here is returned, never raised, so
        that post-processing cannot turn a finished study into a crash."""
        out = PostResult()
        try:
            df = self.results()
            if df.empty:
                out.errors.append(f"{self.name}: no finished runs yet: nothing to collect")
                return out
            out.table = self.write_table(df, csv=csv)
            out.report = self.report(df)
            self.write_report(out.report)
        except Exception as err:  # noqa: BLE001 - reported to the user with its reason
            out.errors.append(f"{self.name}: collect/report failed: {type(err).__name__}: {err}")
            return out
        if figures:
            try:
                out.figures = self.figures()
                out.errors += [f"{self.name}: figure panel not drawn: {r}" for r in self.skipped_panels]
            except Exception as err:  # noqa: BLE001
                out.errors.append(f"{self.name}: figure script failed: {type(err).__name__}: {err}")
        return out


def override_suffix(overrides: Sequence[str]) -> str:
    """The results folder suffix of a run with overrides: a study run with `--set` values that change what it is
    (anything but `resources.`) is a different study, so it gets its own directory, `<name>+<overrides>` (e.g.
    `quickstart+seeds=2`), and never replaces the study's own results. Unsafe characters are dropped; a short hash
    of the overrides keeps two lossy names apart."""
    changing = [o for o in overrides if not o.strip().startswith("resources.")]
    if not changing:
        return ""
    text = "_".join(o.replace(" ", "") for o in changing)
    safe = "".join(c for c in text if c.isalnum() or c in "._=,-")
    if safe != text or len(safe) > 60:
        safe = f"{safe[:50]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return "+" + safe


def _ran_large(source: Path) -> bool:
    """Whether a results directory holds a study that was run with allow_large (its study.json says so)."""
    snapshot = source / STUDY if source.is_dir() else None
    if snapshot is None or not snapshot.is_file():
        return False
    try:
        return json.loads(snapshot.read_text()).get("allow_large") is True
    except (OSError, ValueError, AttributeError):
        return False  # a damaged record: load_plan names it


def _matches(run, where: dict[str, Any]) -> bool:
    """Whether a planned run's config has the `where` values (dotted keys)."""
    from convlab.study.plan import get_dotted

    cfg = run.config.model_dump(mode="json")
    return all(get_dotted(cfg, k) == v for k, v in where.items())


def open_study(
    source: str | Path, overrides: Sequence[str] = (), *, out: str | Path | None = None, allow_large: bool = False
) -> Study:
    """A study file or results directory, validated, with its results under `out` (default results/, or the
    results directory itself); see Study for `allow_large`."""
    return Study(source, overrides, out=out, allow_large=allow_large)


def describe(study: Study) -> str:
    """One line: runs, shared artefacts, and how many are done, failed, running and left."""
    s = study.status()
    shared = len({r.shared for r in study.plan.runs if r.shared})
    extra = f" ({shared} shared {'artefact' if shared == 1 else 'artefacts'})" if shared else ""
    why = [f"{s.incomplete} interrupted" if s.incomplete else "", f"{s.damaged} damaged" if s.damaged else ""]
    return (
        f"{study.name}: {s.total} runs{extra} | done {s.done}, failed {s.failed}, running {s.running}, left {s.left}"
        + (f" ({', '.join(w for w in why if w)})" if any(why) else "")
    )


def point_text(point: dict[str, Any]) -> str:
    return json.dumps(point, default=str)
