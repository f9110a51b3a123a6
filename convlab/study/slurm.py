"""Executing a plan on a SLURM cluster through submitit: job arrays whose tasks write straight into the run
directories (a shared file system), so the driver may exit or die without losing anything.

Shared artefacts: the first run of every group that shares an on-disk artefact (a trained teacher), and every run
that shares none, goes in a first array; the runs that reuse an artefact go in a second array that starts after the
first (`afterany`), so no allocation sits waiting on another task's training. Submissions are recorded in
<study>/slurm/submissions.json; a later
`convlab sweep --executor slurm` (or `convlab status`) reconciles them: a task SLURM no longer runs whose run
has no outcome is recorded as failed with SLURM's state and reason, and runs still queued are not submitted
twice.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convlab.files import atomic_write_json, utc_now
from convlab.study.execute import (
    Outcome,
    RunTask,
    SweepResult,
    _init_worker,
    execute_batch,
    forget_failed_artefacts,
    plan_batches,
    tasks_for,
)
from convlab.study.plan import Plan, StudyError
from convlab.study.schema import Resources
from convlab.study.store import ERROR, Damaged, StudyStore, read_record

GRACE_S = 120  # a task SLURM does not know about this soon after submission is not yet presumed lost
ACTIVE = {
    "PENDING",
    "CONFIGURING",
    "RUNNING",
    "COMPLETING",
    "REQUEUED",
    "RESIZING",
    "SUSPENDED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "SIGNALING",
    "STAGE_OUT",
}


class SlurmUnavailable(RuntimeError):
    """No SLURM client (sbatch/squeue) or no reachable controller."""


@dataclass(frozen=True)
class SlurmOptions:
    """What each array task asks for (from the study's resources, overridden by CLI flags)."""

    partition: str | None = None
    time_min: int = 60
    cpus_per_run: int = 1
    gpus_per_run: int = 0
    mem_gb: float | None = None
    array_parallelism: int = 64

    @classmethod
    def from_resources(cls, r: Resources, **flags: Any) -> SlurmOptions:
        values = {
            k: getattr(r, k)
            for k in ("partition", "time_min", "cpus_per_run", "gpus_per_run", "mem_gb", "array_parallelism")
        }
        values.update({k: v for k, v in flags.items() if v is not None})
        return cls(**{k: v for k, v in values.items() if v is not None})


def check_available() -> None:
    """Raise SlurmUnavailable with the reason when sbatch/squeue are missing or the controller does not answer."""
    for tool in ("sbatch", "squeue", "scontrol"):
        if shutil.which(tool) is None:
            raise SlurmUnavailable(
                f"{tool} not found: no SLURM client on this machine (scripts/slurm_cluster.sh starts a local one)"
            )
    probe = subprocess.run(["squeue", "-h", "-o", "%i", "-u", "nobody"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        raise SlurmUnavailable(f"the SLURM controller does not answer: {probe.stderr.strip() or probe.stdout.strip()}")


def slurm_task(tasks: list[RunTask], cpus: int) -> list[Outcome]:
    """One array task, one batch: cap the threads at the CPUs SLURM gave us, then run exactly as a local worker
    does."""
    _init_worker(int(os.environ.get("SLURM_CPUS_PER_TASK", cpus)))
    return execute_batch(tasks)


# -- submissions and what SLURM says about them ------------------------------------------------------------------------


def _submissions_path(store: StudyStore) -> Path:
    return store.dir / "slurm" / "submissions.json"


def load_submissions(store: StudyStore) -> dict[str, dict[str, Any]]:
    """Run id -> its SLURM submission (job id, time, log). A damaged file is refused with its name (StudyError): the
    job ids in it are how the runs in flight are followed, so nothing is guessed."""
    path = _submissions_path(store)
    if not path.exists():
        return {}
    try:
        subs = read_record(path)
    except Damaged as err:
        raise StudyError(
            [f"{err}; the submitted runs cannot be followed: wait for their jobs (squeue), then move it away"]
        ) from None
    if not all(isinstance(v, dict) and "job_id" in v and "submitted" in v for v in subs.values()):
        raise StudyError([f"{path}: damaged: not the submission record convlab writes"])
    return subs


def job_states(job_ids: list[str]) -> dict[str, tuple[str, str]]:
    """job id ('123_4') -> (state, reason) for the tasks SLURM still knows: squeue for queued and running ones
    (one line per array task), scontrol for finished ones (kept for MinJobAge), sacct for older ones where
    accounting is on. Ids SLURM no longer knows are left out. Raises SlurmUnavailable if squeue fails."""
    wanted = set(job_ids)
    states: dict[str, tuple[str, str]] = {}
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    queue = subprocess.run(
        ["squeue", "-h", "-r", "-u", user, "-o", "%i|%T|%r"], capture_output=True, text=True, timeout=60
    )
    if queue.returncode != 0:
        raise SlurmUnavailable(f"squeue failed: {queue.stderr.strip()}")
    for line in queue.stdout.splitlines():
        jid, state, reason = (line.split("|") + ["", ""])[:3]
        if jid in wanted:
            states[jid] = (state, reason)
    for array in sorted({j.split("_")[0] for j in wanted - set(states)}):
        out = subprocess.run(["scontrol", "show", "job", "-o", array], capture_output=True, text=True, timeout=60)
        for line in out.stdout.splitlines():
            fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            # one record per started task; tasks never started share one record with a range ('1-9%2')
            ids = (
                [f"{fields.get('ArrayJobId')}_{i}" for i in _task_ids(fields["ArrayTaskId"])]
                if "ArrayTaskId" in fields
                else [fields.get("JobId", "")]
            )
            for jid in ids:
                if jid in wanted and jid not in states:
                    states[jid] = (
                        fields.get("JobState", "UNKNOWN"),
                        f"{fields.get('Reason', 'None')}, exit code {fields.get('ExitCode', '?')}",
                    )
    missing = wanted - set(states)
    if missing and shutil.which("sacct"):
        out = subprocess.run(
            [
                "sacct",
                "-n",
                "-X",
                "-P",
                "-o",
                "JobID,State,ExitCode,Reason",
                "-j",
                ",".join(sorted({j.split("_")[0] for j in missing})),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if out.returncode == 0:  # accounting off: "Slurm accounting storage is disabled", nothing to add
            for line in out.stdout.splitlines():
                parts = line.split("|")
                if len(parts) >= 3 and parts[0] in missing:
                    states[parts[0]] = (
                        parts[1].split()[0],
                        f"{parts[3] if len(parts) > 3 else 'None'}, exit code {parts[2]}",
                    )
    return states


def _task_ids(spec: str) -> list[int]:
    """SLURM's array task list ('3', '0-9%2', '1,4-6') as task ids."""
    ids: list[int] = []
    for part in spec.split("%")[0].split(","):
        lo, _, hi = part.partition("-")
        if lo.isdigit():
            ids += range(int(lo), int(hi or lo) + 1) if (hi or lo).isdigit() else []
    return ids


def reconcile(store: StudyStore) -> dict[str, list[str]]:
    """Record as failed every submitted run whose task SLURM no longer runs and that left no outcome.

    Returns {'active': run ids still queued or running, 'lost': run ids just marked failed}.
    """
    subs = load_submissions(store)
    pending = {rid: s for rid, s in subs.items() if store.state(rid) not in ("done", "failed", "damaged")}
    if not pending:
        return {"active": [], "lost": []}
    states = job_states([s["job_id"] for s in pending.values()])
    active, lost = [], []
    for rid, sub in pending.items():
        state, reason = states.get(sub["job_id"], ("UNKNOWN", "no longer known to SLURM"))
        young = state == "UNKNOWN" and _age_s(sub["submitted"]) < GRACE_S  # not visible everywhere yet
        if state in ACTIVE or young or store.is_running(rid):
            active.append(rid)
            continue
        # the task is over and the run has neither DONE nor error.json: the task died before writing them
        if store.state(rid) in ("done", "failed"):
            continue
        tail = _log_tail(sub.get("stderr"))
        d = store.run_dir(rid)
        d.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            d / ERROR,
            {
                "stage": "slurm",
                "reason": f"SLURM task {sub['job_id']} ended {state} ({reason}) without a result",
                "traceback": tail,
                "recorded": utc_now(),
            },
        )
        lost.append(rid)
    return {"active": active, "lost": lost}


def _age_s(stamp: str) -> float:
    return (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(stamp)).total_seconds()


def _log_tail(path: str | None, lines: int = 30) -> str | None:
    if not path or not Path(path).exists():
        return None
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


# -- submitting and following ------------------------------------------------------------------------------------------


def submit(
    plan: Plan,
    store: StudyStore,
    options: SlurmOptions,
    *,
    device: str = "auto",
    retry_failed: bool = False,
    force: bool = False,
    batch: int | str | None = None,
) -> dict[str, str]:
    """Submit the runs that need running as (at most) two job arrays, one array task per batch (plan_batches):
    the batches that make shared artefacts or share none, then those that reuse them; returns run id -> SLURM
    job id."""
    import submitit

    active = set(reconcile(store)["active"])
    by_id = {t.run_id: t for t in tasks_for(plan, store, device=device, retry_failed=retry_failed, force=force)}

    def wanted(run_id: str) -> bool:
        if run_id in active:
            return False  # still queued or running from an earlier submission
        state = store.state(run_id)
        return force or state in ("new", "incomplete", "damaged") or (state == "failed" and retry_failed)

    if retry_failed or force:
        forget_failed_artefacts(plan, store, {r.run_id for r in plan.runs if wanted(r.run_id)})
    batches = plan_batches(
        plan,
        store,
        lambda r: wanted(r.run_id),
        size=batch,
        jobs=options.array_parallelism,
        device="cuda" if options.gpus_per_run else "cpu",
    )
    first = [[r.run_id for r in b.runs] for b in batches if not b.after]
    later = [[r.run_id for r in b.runs] for b in batches if b.after]
    if not first and not later:
        return {}
    # set earlier outcomes aside now, so that nobody reads them as this submission's
    for rid in (rid for ids in first + later for rid in ids):
        state = store.state(rid)
        if state in ("failed", "damaged") or (force and state == "done"):
            store.set_aside(rid, {"failed": "retried", "done": "forced"}.get(state, state))
    folder = store.dir / "slurm" / "logs"
    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=0)
    params: dict[str, Any] = dict(
        job_name=f"convlab-{plan.study.name}",
        time=options.time_min,
        cpus_per_task=options.cpus_per_run,
        array_parallelism=options.array_parallelism,
        ntasks_per_node=1,
    )
    if options.partition:
        params["partition"] = options.partition
    if options.gpus_per_run:
        params["gpus_per_task"] = options.gpus_per_run
    if options.mem_gb:
        params["mem"] = f"{int(options.mem_gb * 1024)}M"
    subs = load_submissions(store)
    submitted: dict[str, str] = {}
    dependency = None
    for ids in (first, later):
        if not ids:
            continue
        executor.update_parameters(**params, **({"dependency": f"afterany:{dependency}"} if dependency else {}))
        jobs = executor.map_array(
            slurm_task, [[by_id[i] for i in batch_ids] for batch_ids in ids], [options.cpus_per_run] * len(ids)
        )
        for batch_ids, job in zip(ids, jobs):
            for rid in batch_ids:
                subs[rid] = {"job_id": job.job_id, "submitted": utc_now(), "stderr": str(job.paths.stderr)}
                submitted[rid] = job.job_id
        dependency = jobs[0].job_id.split("_")[0]
    _submissions_path(store).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(_submissions_path(store), subs)
    return submitted


def follow(
    store: StudyStore,
    run_ids: list[str],
    *,
    poll_s: float = 5.0,
    on_outcome: Callable[[Outcome], None] = lambda o: None,
) -> SweepResult:
    """Wait for the submitted runs, reporting each outcome as its run directory gets one."""
    result = SweepResult()
    left = set(run_ids)
    while left:
        reconcile(store)
        for rid in sorted(left):
            files = store.inspect(rid)
            if files.state == "done":
                o = Outcome(rid, "ok")
            elif files.state == "failed":
                o = Outcome(rid, "failed", files.error["reason"])
            elif files.state == "damaged":  # never a transient state: DONE and error.json are written last
                o = Outcome(rid, "failed", f"damaged: {files.problem}")
            else:
                continue
            left.discard(rid)
            result.outcomes.append(o)
            on_outcome(o)
        if left:
            time.sleep(poll_s)
    return result
