"""Executing a plan locally: one function per run (lock, write, record), and a scheduler over worker processes
that makes each shared on-disk artefact (a trained teacher) once, before the runs that need it."""

from __future__ import annotations

import ast
import contextlib
import logging
import math
import multiprocessing
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from filelock import Timeout

from convlab.device import resolve_device
from convlab.files import atomic_write_bytes, atomic_write_json, json_bytes, utc_now
from convlab.runs import RUN_KINDS, ArtefactCache
from convlab.study.plan import Plan, PlannedRun
from convlab.study.store import CONFIG, DONE, ERROR, LOG, PROVENANCE, RESULT, StudyStore, done_marker, provenance

log = logging.getLogger("convlab")


@dataclass(frozen=True)
class Outcome:
    """What happened to one run in this sweep."""

    run_id: str
    status: str  # 'ok' or 'failed', as the table has it; 'busy' while another sweep holds the run
    reason: str | None = None
    seconds: float = 0.0
    ran: bool = True  # False: finished (ok, or failed without --retry-failed) before this sweep, not run again


@dataclass
class RunTask:
    """Everything a worker process needs to execute one run (picklable)."""

    root: str
    study: str
    run_id: str
    kind: str
    config: dict[str, Any]
    device: str
    retry_failed: bool
    force: bool


def execute(task: RunTask) -> Outcome:
    """Run one planned run in its directory, unless it is done, failed (without --retry-failed) or running."""
    return execute_batch([task])[0]


def execute_batch(tasks: list[RunTask]) -> list[Outcome]:
    """Run planned runs of one kind and batch key together (RunKind.run_batch), each in its own directory with
    its own lock, record, and DONE marker: a run that is done, failed (without --retry-failed) or running
    elsewhere is left out of the batch. A kill loses the runs of the batch in flight, nothing else."""
    store = StudyStore(tasks[0].root, tasks[0].study)
    outcomes: dict[str, Outcome] = {}
    held, todo = [], []
    try:
        for task in tasks:
            lock = store.lock(task.run_id)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                outcomes[task.run_id] = Outcome(task.run_id, "busy")
                continue
            held.append(lock)
            state = store.state(task.run_id)
            if task.force and state != "new":
                store.set_aside(task.run_id, "forced")
            elif state == "done":
                outcomes[task.run_id] = Outcome(task.run_id, "ok", ran=False)
                continue
            elif state == "failed" and not task.retry_failed:
                outcomes[task.run_id] = Outcome(
                    task.run_id, "failed", reason="failed before; rerun with --retry-failed", ran=False
                )
                continue
            elif state in ("failed", "incomplete", "damaged"):
                store.set_aside(task.run_id, {"failed": "retried"}.get(state, state))
            todo.append(task)
        if todo:
            outcomes.update((o.run_id, o) for o in _run_here(store, todo))
    finally:
        for lock in held:
            lock.release()
    return [outcomes[t.run_id] for t in tasks]


def _run_here(store: StudyStore, tasks: list[RunTask]) -> list[Outcome]:
    device = resolve_device(tasks[0].device)
    kind = RUN_KINDS[tasks[0].kind]
    configs, provs, dirs = [], [], []
    for task in tasks:
        d = store.run_dir(task.run_id)
        d.mkdir(parents=True, exist_ok=True)
        config = kind.config.model_validate(task.config)
        atomic_write_json(d / CONFIG, config.model_dump(mode="json"))
        prov = provenance(config.seed, device)
        atomic_write_json(d / PROVENANCE, prov)
        configs.append(config)
        provs.append(prov)
        dirs.append(d)
    start = time.perf_counter()
    with _run_log([d / LOG for d in dirs]):
        ids = ", ".join(t.run_id for t in tasks)
        log.info(
            "run %s (%s) on %s%s", ids, kind.name, device, f", as a batch of {len(tasks)}" if len(tasks) > 1 else ""
        )
        try:
            records = kind.run_batch(configs, device=device, cache=ArtefactCache(store.root))
            errors = [
                None if r.status == "ok" else {"stage": r.stage, "reason": r.reason, "traceback": None} for r in records
            ]
        except Exception as err:  # noqa: BLE001 - any crash is the failure of the runs in flight, never the sweep's
            records = [None] * len(tasks)
            error = {"stage": "crash", "reason": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
            errors = [error] * len(tasks)
            log.error("run crashed:\n%s", error["traceback"])
        seconds = time.perf_counter() - start
        for task, error in zip(tasks, errors):
            log.info("%s finished in %.1f s: %s", task.run_id, seconds, "ok" if error is None else error["reason"])
    outcomes = []
    for task, d, prov, record, error in zip(tasks, dirs, provs, records, errors):
        atomic_write_json(d / PROVENANCE, {**prov, "finished": utc_now(), "seconds": seconds})
        result = None if record is None else json_bytes(record.as_dict())
        if result is not None:
            atomic_write_bytes(d / RESULT, result)
        if error is not None:
            atomic_write_json(d / ERROR, error)
            outcomes.append(Outcome(task.run_id, "failed", error["reason"], seconds))
            continue
        atomic_write_bytes(d / DONE, done_marker(result))  # the completion marker, last: it certifies result.json
        outcomes.append(Outcome(task.run_id, "ok", None, seconds))
    return outcomes


@contextlib.contextmanager
def _run_log(paths: list[Path]):
    """Route the 'convlab' logger and warnings to the runs' log files (a batch writes one log to each) while
    they run."""
    handlers = [logging.FileHandler(path) for path in paths]
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.captureWarnings(True)
    targets = [log, logging.getLogger("py.warnings")]
    old = [(lg, lg.level, lg.propagate) for lg in targets]
    for lg in targets:
        for handler in handlers:
            lg.addHandler(handler)
        lg.setLevel(logging.INFO)
        lg.propagate = False
    try:
        yield
    finally:
        for lg, level, propagate in old:
            for handler in handlers:
                lg.removeHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate
        for handler in handlers:
            handler.close()


# Torch intra-op threads per local worker, by measurement (benchmarks/results/bench_threads.txt, 2-core CPU): two
# threads in one process ran the quickstart's pipeline batch in 0.86x the time of one on a quiet machine, and in 44x
# (!) the time as soon as another process kept one core busy (its flow runs: 1.10x and 21x). OpenMP threads spin at
# every barrier for the one that lost its core; OMP_WAIT_POLICY=passive removes that, but then costs 2.5x on a quiet
# machine. One thread per worker loses at most those 14% and never the 44x: more cores are used by more workers
# (--jobs). `--threads N` (resources.threads) sets another number for a machine whose cores are the sweep's alone.
DEFAULT_THREADS = 1


def threads_per_worker(threads: int | None) -> int:
    return threads or DEFAULT_THREADS


@contextlib.contextmanager
def _torch_threads(n: int):
    """torch's intra-op threads set to n in this process while the sweep runs here (jobs = 1), then restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _init_worker(threads: int) -> None:
    """Cap torch's threads so that N workers on N cores do not oversubscribe them."""
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def _init_local_worker(threads: int, parent: int, started) -> None:
    """A local worker: capped threads, and it exits when the sweep process dies (even by kill -9), so that a
    killed sweep leaves no orphan computing a run nobody will collect (its run is redone on resume). `parent` is
    passed in, not read here: a worker still starting when the sweep died has already been adopted. `started`
    counts the workers that got this far (past importing the parent's script)."""
    _init_worker(threads)
    with started.get_lock():
        started.value += 1

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="convlab-parent-watch", daemon=True).start()


@dataclass
class SweepResult:
    outcomes: list[Outcome] = field(default_factory=list)
    submitted: dict[str, str] = field(default_factory=dict)  # SLURM: run id -> job id submitted by this call
    active: list[str] = field(default_factory=list)  # SLURM: run ids queued or running after submission

    def count(self, status: str, *, ran: bool | None = True) -> int:
        """Runs with this status that ran in this sweep (`ran=True`), that had finished before it (False), or
        either (None)."""
        return sum(o.status == status and (ran is None or o.ran == ran) for o in self.outcomes)


def forget_failed_artefacts(plan: Plan, store: StudyStore, run_ids: set[str]) -> None:
    """Set aside the failure markers of the shared artefacts these runs need (a teacher that diverged or collapsed
    is stored as one, so that the runs sharing it fail without training it again): a retry makes them again."""
    cache = ArtefactCache(store.root)
    for shared in sorted({r.shared for r in plan.runs if r.run_id in run_ids and r.shared}):
        for moved in cache.forget_failures(shared):
            log.info("retrying %s: its failure marker is set aside to %s", shared, moved)


def tasks_for(plan: Plan, store: StudyStore, *, device: str, retry_failed: bool, force: bool) -> list[RunTask]:
    return [
        RunTask(
            str(store.root),
            store.dir.name,  # the results folder: the study's name, or <name>+<overrides> (api.override_suffix)
            r.run_id,
            r.kind,
            r.config.model_dump(mode="json"),
            device,
            retry_failed,
            force,
        )
        for r in plan.runs
    ]


# `--batch auto`: at most this many runs per batch. On the 2-core CPU the throughput of stacked teachers is flat
# from 4-8 per stack on (benchmarks/bench_batched.py); larger stacks only lengthen what a kill loses. The GPU cap
# is not measured.
AUTO_BATCH_MAX = {"cpu": 16, "cuda": 64}


@dataclass
class Batch:
    """Runs to execute together (one kind, one batch key), and the batches that must finish first: those that
    make a shared on-disk artefact (a trained teacher) that these runs reuse."""

    runs: list[PlannedRun]
    after: set[int] = field(default_factory=set)


def batch_size(option: int | str | None, pending: int, jobs: int, device: str = "cpu") -> int:
    """The runs per batch: an int as given, 'off' 1, 'auto' (or None) the pending runs of a group spread over the
    jobs, at most AUTO_BATCH_MAX of the device type."""
    if option in (None, "auto"):
        return max(1, min(AUTO_BATCH_MAX.get(device, 16), math.ceil(pending / jobs)))
    if option == "off":
        return 1
    return int(option)


def plan_batches(
    plan: Plan,
    store: StudyStore,
    wanted: Callable[[PlannedRun], bool],
    *,
    size: int | str | None,
    jobs: int = 1,
    device: str = "cpu",
) -> list[Batch]:
    """The wanted runs as batches, in plan order. Runs of a kind with a batch body and equal batch keys share
    batches of `size` (batch_size). A group of runs sharing an artefact nobody has made yet stays in one batch
    when it fits (the batch makes it once); a larger group's first run goes in a batch of its own kind's leaders and
    the rest in later batches that run after it (`after`). size 1 is the unbatched schedule: each artefact's
    first run, then the runs reusing it."""
    cache = ArtefactCache(store.root)
    groups: dict[Any, list[PlannedRun]] = {}
    for r in plan.runs:
        if wanted(r):
            groups.setdefault(r.batch_key if r.batch_key is not None else ("alone", r.kind), []).append(r)
    out: list[Batch] = []
    leader: dict[str, int] = {}  # shared artefact -> the batch that makes it
    later: list[tuple[int, list[PlannedRun]]] = []  # (n, runs that wait for their artefact's leader)
    for key, runs in groups.items():
        n = 1 if isinstance(key, tuple) else batch_size(size, len(runs), jobs, device)  # tuple: a kind without batches
        sets: dict[Any, list[PlannedRun]] = {}
        for r in runs:
            sets.setdefault(r.shared if r.shared and not cache.has(r.shared) else ("free", r.run_id), []).append(r)
        chunk: list[PlannedRun] = []
        waiting: list[PlannedRun] = []
        for skey, members in sets.items():
            if isinstance(skey, str) and len(members) > n:
                members, rest = members[:1], members[1:]
                waiting += rest
            if len(chunk) + len(members) > n and chunk:
                out.append(Batch(chunk))
                chunk = []
            chunk += members
            if isinstance(skey, str):
                leader[skey] = len(out)  # the batch `chunk` will become
        if chunk:
            out.append(Batch(chunk))
        if waiting:
            later.append((n, waiting))
    for n, waiting in later:
        for i in range(0, len(waiting), n):
            runs = waiting[i : i + n]
            out.append(Batch(runs, {leader[r.shared] for r in runs}))
    return out


WORKERS_DID_NOT_START = (
    "the worker processes died while starting, before any run: each imports the script that started the sweep "
    "({script}) again (multiprocessing's spawn), and that import failed or exited. Keep the code that runs under "
    '`if __name__ == "__main__":` (the rest of the script must import cleanly), or run with jobs=1. Nothing ran.'
)


class WorkersDidNotStart(RuntimeError):
    """No local worker process got past importing the parent's script: nothing ran (the runs stay new)."""


def _main_script() -> str:
    return str(getattr(sys.modules.get("__main__"), "__file__", None) or "the interactive session")


def unguarded_main_script() -> Path | None:
    """The script this process runs when worker processes would re-import it unguarded, else None.

    Local workers are started with multiprocessing's 'spawn' (fork is unsafe with torch's threads), which imports
    the parent's __main__ script in every worker. A script that calls Study.run at its top level, without
    `if __name__ == "__main__":`, would start the sweep again in each worker, whose start-up then fails: the
    workers die and every run would be lost. Interactive sessions, notebooks, `python -c` and console scripts are
    not re-imported, so they pass; so is a package's `__main__` run with `python -m` (spawn skips those), while a
    module run with `python -m module` is imported again by name."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and (spec.name == "__main__" or spec.name.endswith(".__main__")):
        return None
    path = getattr(main, "__file__", None)
    if not path or not str(path).endswith(".py"):
        return None
    try:
        tree = ast.parse(Path(path).read_text())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.If) and {"__name__", "__main__"} <= {
            getattr(n, "id", None) or getattr(n, "value", None) for n in ast.walk(node.test)
        }:
            return None
    return Path(path)


def run_local(
    plan: Plan,
    store: StudyStore,
    *,
    jobs: int = 1,
    device: str = "auto",
    retry_failed: bool = False,
    force: bool = False,
    batch: int | str | None = None,
    threads: int | None = None,
    on_outcome: Callable[[Outcome], None] = lambda o: None,
) -> SweepResult:
    """Execute every run of the plan that is not done, as batches (plan_batches), on `jobs` worker processes (in
    process for jobs = 1), each with `threads` torch threads (threads_per_worker)."""
    by_id = {t.run_id: t for t in tasks_for(plan, store, device=device, retry_failed=retry_failed, force=force)}
    result = SweepResult()

    def report(outcomes: list[Outcome]) -> None:
        for o in outcomes:
            result.outcomes.append(o)
            on_outcome(o)

    def needs_running(r: PlannedRun) -> bool:
        state = store.state(r.run_id)
        return force or state in ("new", "incomplete", "damaged") or (state == "failed" and retry_failed)

    wanted = {r.run_id for r in plan.runs if needs_running(r)}
    if retry_failed or force:
        forget_failed_artefacts(plan, store, wanted)
    for r in plan.runs:  # done, or failed without --retry-failed: said at once
        if r.run_id not in wanted:
            report([execute(by_id[r.run_id])])
    batches = plan_batches(
        plan, store, lambda r: r.run_id in wanted, size=batch, jobs=jobs, device=resolve_device(device).type
    )
    tasks = [[by_id[r.run_id] for r in b.runs] for b in batches]
    finished: set[int] = set()

    threads = threads_per_worker(threads)
    if jobs == 1:
        with _torch_threads(threads):
            for i in range(len(batches)):  # every batch comes after the batches it waits for
                report(execute_batch(tasks[i]))
                finished.add(i)
        return result
    ctx = multiprocessing.get_context("spawn")
    started = ctx.Value("i", 0)
    with ProcessPoolExecutor(
        max_workers=jobs, mp_context=ctx, initializer=_init_local_worker, initargs=(threads, os.getpid(), started)
    ) as pool:
        running: dict[Future, int] = {}
        waiting = dict(enumerate(batches))  # not started yet

        def start_ready() -> None:
            for i in [i for i, b in waiting.items() if b.after <= finished]:
                del waiting[i]
                running[pool.submit(execute_batch, tasks[i])] = i

        start_ready()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                i = running.pop(fut)
                try:
                    outcomes = fut.result()
                except Exception as err:  # noqa: BLE001 - a worker died (e.g. out of memory): its runs failed
                    if started.value == 0:  # none ever started: no run can, say why instead of failing them all
                        raise WorkersDidNotStart(WORKERS_DID_NOT_START.format(script=_main_script())) from err
                    reason = f"worker died: {type(err).__name__}: {err}"
                    outcomes = [Outcome(t.run_id, "failed", reason) for t in tasks[i]]
                report(outcomes)
                finished.add(i)  # the batch has made (or failed to make) its shared artefacts: release the rest
            start_ready()
    return result
