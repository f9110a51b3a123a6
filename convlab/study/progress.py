"""One progress display in the parent process: a live bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from convlab.study.execute import Outcome

WAVE_S = 1.0  # runs reported within this many seconds of the first finished together (one batch, one wave)


class SweepProgress:
    """Counts runs done / failed / left over a sweep and shows an ETA."""

    def __init__(self, total: int, *, done_before: int, failed_before: int, live: bool | None = None, stream=None):
        self.total, self.stream = total, stream or sys.stdout
        self.done, self.failed, self.busy = done_before, failed_before, 0
        self.waited: set[str] = set()  # runs reported busy (held by another sweep) and not reported again yet
        self.start, self.finished_here = time.monotonic(), 0
        self.first_at: float | None = None  # when the first run of this sweep finished
        self.first_wave, self.last_at = 0, 0.0
        console = Console(file=self.stream)
        self.live = (self.stream.isatty() or console.is_jupyter) if live is None else live
        self.bar = None
        if self.live:
            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            )
            self.task = self.bar.add_task(
                "sweep", total=total, completed=self.done + self.failed, counts=self._counts()
            )
            self.bar.start()

    @property
    def left(self) -> int:
        return self.total - self.done - self.failed - self.busy

    def _counts(self) -> str:
        return f"done {self.done}  failed {self.failed}  left {self.left}" + (
            f"  running elsewhere {self.busy}" if self.busy else ""
        )

    def eta(self) -> float | None:
        """Seconds left at the pace of the runs finished since the first wave (the runs reported with the first):
        the first wave carries the start-up and the shared work (a teacher, a reference solve) later runs reuse, so
        counting it per run once overstated a 2-minute sweep as 18 minutes. Until a second wave, the plain pace."""
        if not self.finished_here:
            return None
        later = self.finished_here - self.first_wave
        if later > 0 and self.last_at > self.first_at:
            return (self.last_at - self.first_at) / later * self.left
        return (time.monotonic() - self.start) / self.finished_here * self.left

    def update(self, o: Outcome) -> None:
        if o.run_id in self.waited:  # a run another sweep held, reported again once it let go
            self.waited.discard(o.run_id)
            self.busy -= 1
        if o.status == "ok":
            self.done += 1
        elif o.status == "failed":
            self.failed += 1
        elif o.status == "busy":
            self.busy += 1
            self.waited.add(o.run_id)
        ran = o.ran and o.status in ("ok", "failed")
        if ran:
            self.finished_here += 1
            now = time.monotonic()
            if self.first_at is None or now - self.first_at < WAVE_S:
                self.first_at = self.first_at or now
                self.first_wave += 1
            self.last_at = now
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done + self.failed + self.busy, counts=self._counts())
        elif ran:
            eta = self.eta()
            eta_text = "?" if eta is None else f"{eta / 60:.1f} min"
            detail = f" ({o.reason})" if o.reason else ""
            print(
                f"[{self.done + self.failed}/{self.total}] {o.status:<6} {o.run_id} {o.seconds:6.1f}s{detail} | "
                f"{self._counts()} | eta {eta_text}",
                file=self.stream,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
