"""Executing a plan locally: one function per run (lock, write, record), and a scheduler over worker processes
that makes each shared on-disk artefact (a trained teacher) once, before the runs that need it."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from filelock import Timeout

from convlab.device import resolve_device
from convlab.files import atomic_write_bytes, atomic_write_json, utc_now
from convlab.runs import RUN_KINDS, ArtefactCache
from convlab.study.plan import Plan, PlannedRun
from convlab.study.store import CONFIG, DONE, ERROR, LOG, PROVENANCE, RESULT, StudyStore, provenance

log = logging.getLogger("convlab")


@dataclass(frozen=True)
class Outcome:
    """What happened to one run in this sweep."""

    run_id: str
    status: str  # 'ok', 'failed', 'done' (already finished), 'skipped' (failed before, no --retry-failed), 'busy'
    reason: str | None = None
    seconds: float = 0.0


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
    store = StudyStore(task.root, task.study)
    lock = store.lock(task.run_id)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return Outcome(task.run_id, "busy")
    try:
        state = store.state(task.run_id)
        if task.force and state != "new":
            store.set_aside(task.run_id, "forced")
        elif state == "done":
            return Outcome(task.run_id, "done")
        elif state == "failed" and not task.retry_failed:
            return Outcome(task.run_id, "skipped", reason="failed before; rerun with --retry-failed")
        elif state in ("failed", "incomplete"):
            store.set_aside(task.run_id, "retried" if state == "failed" else "incomplete")
        return _run_here(store, task)
    finally:
        lock.release()


def _run_here(store: StudyStore, task: RunTask) -> Outcome:
    d = store.run_dir(task.run_id)
    d.mkdir(parents=True, exist_ok=True)
    device = resolve_device(task.device)
    kind = RUN_KINDS[task.kind]
    config = kind.config.model_validate(task.config)
    atomic_write_json(d / CONFIG, config.model_dump(mode="json"))
    prov = provenance(config.seed, device)
    atomic_write_json(d / PROVENANCE, prov)
    start = time.perf_counter()
    with _run_log(d / LOG):
        log.info("run %s (%s) on %s", task.run_id, task.kind, device)
        try:
            record = kind.run(config, device=device, cache=ArtefactCache(store.root))
            error = (
                None if record.status == "ok" else {"stage": record.stage, "reason": record.reason, "traceback": None}
            )
        except Exception as err:  # noqa: BLE001 - any crash is this run's failure, never the sweep's
            record = None
            error = {"stage": "crash", "reason": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
            log.error("run crashed:\n%s", error["traceback"])
        seconds = time.perf_counter() - start
        log.info("finished in %.1f s: %s", seconds, "ok" if error is None else error["reason"])
    atomic_write_json(d / PROVENANCE, {**prov, "finished": utc_now(), "seconds": seconds})
    if record is not None:
        atomic_write_json(d / RESULT, record.as_dict())
    if error is not None:
        atomic_write_json(d / ERROR, error)
        return Outcome(task.run_id, "failed", error["reason"], seconds)
    atomic_write_bytes(d / DONE, utc_now().encode())  # the completion marker, last
    return Outcome(task.run_id, "ok", None, seconds)


@contextlib.contextmanager
def _run_log(path: Path):
    """Route the 'convlab' logger and warnings to the run's log file for the duration of the run."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.captureWarnings(True)
    targets = [log, logging.getLogger("py.warnings")]
    old = [(lg, lg.level, lg.propagate) for lg in targets]
    for lg in targets:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
        lg.propagate = False
    try:
        yield
    finally:
        for lg, level, propagate in old:
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate
        handler.close()


def _init_worker(threads: int) -> None:
    """Cap torch's threads so that N workers on N cores do not oversubscribe them."""
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def _init_local_worker(threads: int, parent: int) -> None:
    """A local worker: capped threads, and it exits when the sweep process dies (even by kill -9), so that a
    killed sweep leaves no orphan computing a run nobody will collect (its run is redone on resume). `parent` is
    passed in, not read here: a worker still starting when the sweep died has already been adopted."""
    _init_worker(threads)

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

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)


def tasks_for(plan: Plan, store: StudyStore, *, device: str, retry_failed: bool, force: bool) -> list[RunTask]:
    return [
        RunTask(
            str(store.root),
            plan.study.name,
            r.run_id,
            r.kind,
            r.config.model_dump(mode="json"),
            device,
            retry_failed,
            force,
        )
        for r in plan.runs
    ]


def schedule(plan: Plan, store: StudyStore) -> tuple[list[PlannedRun], dict[str, list[PlannedRun]]]:
    """Runs to start now, and runs waiting for their group's first run (which makes the shared on-disk artefact)."""
    cache = ArtefactCache(store.root)
    ready, waiting, leaders = [], {}, set()
    for r in plan.runs:
        if r.shared is None or cache.has(r.shared) or r.shared not in leaders:
            ready.append(r)
            if r.shared is not None:
                leaders.add(r.shared)
        else:
            waiting.setdefault(r.shared, []).append(r)
    return ready, waiting


def run_local(
    plan: Plan,
    store: StudyStore,
    *,
    jobs: int = 1,
    device: str = "auto",
    retry_failed: bool = False,
    force: bool = False,
    on_outcome: Callable[[Outcome], None] = lambda o: None,
) -> SweepResult:
    """Execute every run of the plan that is not done, on `jobs` worker processes (in process for jobs = 1)."""
    by_id = {t.run_id: t for t in tasks_for(plan, store, device=device, retry_failed=retry_failed, force=force)}
    ready, waiting = schedule(plan, store)
    result = SweepResult()

    def finished(o: Outcome, planned: PlannedRun) -> Iterable[PlannedRun]:
        result.outcomes.append(o)
        on_outcome(o)
        return waiting.pop(planned.shared, []) if planned.shared else []

    planned_by_id = {r.run_id: r for r in plan.runs}
    if jobs == 1:
        queue = list(ready)
        while queue:
            r = queue.pop(0)
            queue.extend(finished(execute(by_id[r.run_id]), r))
        return result
    threads = max(1, (os.cpu_count() or 1) // jobs)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=jobs, mp_context=ctx, initializer=_init_local_worker, initargs=(threads, os.getpid())
    ) as pool:
        running: dict[Future, PlannedRun] = {pool.submit(execute, by_id[r.run_id]): r for r in ready}
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                r = running.pop(fut)
                try:
                    outcome = fut.result()
                except Exception as err:  # noqa: BLE001 - a worker died (e.g. out of memory): that run failed
                    outcome = Outcome(r.run_id, "failed", f"worker died: {type(err).__name__}: {err}")
                # a group's first run has made (or failed to make) the shared artefact: release the rest
                for follower in finished(outcome, planned_by_id[r.run_id]):
                    running[pool.submit(execute, by_id[follower.run_id])] = follower
    return result
