"""A run kind, declared once: its config model (whose defaults are the only defaults), the metrics it emits, the
artefacts it shares with other runs, its run body, and the history of its names.

The study layer (plan, store, execute, slurm, report) knows run kinds only through this declaration:
`RunKind.run` validates the config, resolves the device, calls the body inside a RunContext, turns a failure
into a failed record, refuses metrics the kind did not declare and records non-finite ones as a failure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch

from convlab.device import generator, resolve_device
from convlab.models.training import Divergence
from convlab.record import RunFailed, RunRecord
from convlab.runs.artefacts import ArtefactCache
from convlab.runs.config import RunConfig
from convlab.runs.memory import Need

# closed_form: a formula of the config (deterministic); monte_carlo: a mean over seeded draws (pathwise errors,
# KL), with a CI or standard error where one is given; sampled: a W2 between finite samples (biased by n, beside
# its noise floor); lower_estimate: a sup searched from below; flag: a boolean derived from the others;
# record: bookkeeping (counts, losses, times).
Estimate = Literal["closed_form", "monte_carlo", "sampled", "lower_estimate", "flag", "record"]


@dataclass(frozen=True)
class Metric:
    """One column a run kind writes: its name, a figure label (matplotlib mathtext), how it is estimated, its unit
    ('' dimensionless, 'x' the units of the data, 'nats', 's' seconds), whether it is a squared quantity, and
    `when` it is emitted if only in some configurations."""

    name: str
    label: str
    estimate: Estimate
    doc: str
    unit: str = ""
    squared: bool = False
    when: str | None = None


@dataclass(frozen=True)
class Artefact:
    """An expensive intermediate result that runs of a sweep share: a function of the config fields `depends_on`
    (and the device), so runs that differ only elsewhere reuse it without changing a number. `on_disk`: worth
    persisting across processes (a trained network), and the scheduler trains it once before the runs that need
    it; otherwise memoised per process. `applies`: for which configs it is shared (None: all)."""

    name: str
    depends_on: tuple[str, ...]
    on_disk: bool = False
    applies: Callable[[Any], bool] | None = None
    memo_size: int = 16

    def key(self, cfg: RunConfig) -> str | None:
        """The hash of the fields it depends on (as validated, defaults filled in); None where it does not apply."""
        if self.applies is not None and not self.applies(cfg):
            return None
        blob = json.dumps(cfg.model_dump(mode="json", include=set(self.depends_on)), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class RunContext:
    """What a run body gets besides its config: the device, seeded streams, stages (timed, named in failures) and
    the shared artefacts."""

    def __init__(self, kind: RunKind, cfg: RunConfig, device: torch.device, cache: ArtefactCache):
        self.kind, self.cfg, self.device, self.cache = kind, cfg, device, cache
        self.current = "setup"
        self.timings: dict[str, float] = {}

    def rng(self, stream: str, device: torch.device | str | None = None) -> torch.Generator:
        """The generator of one named stream of the run's seed (on the run's device unless told otherwise)."""
        return generator(self.cfg.seed, stream, torch.device(device) if device is not None else self.device)

    @contextlib.contextmanager
    def stage(self, name: str, *, timed: bool = False) -> Iterator[None]:
        """Work of one stage: a failure inside is recorded with this stage; timed stages add time_<name>_s."""
        self.current = name
        start = time.perf_counter()
        yield
        if timed:
            self.timings[f"time_{name}_s"] = time.perf_counter() - start

    def shared(self, name: str, create: Callable[[], Any]) -> Any:
        """The artefact `name` for this config, from the cache or from create()."""
        artefact = self.kind.artefact(name)
        key = artefact.key(self.cfg)
        if key is None:
            value = create()
        else:
            value, _ = self.cache.get(
                f"{self.kind.name}.{name}",
                key,
                self.device,
                create,
                on_disk=artefact.on_disk,
                memo_size=artefact.memo_size,
            )
        return value

    def artefact_key(self, name: str) -> str | None:
        """The key of artefact `name` for this config, or None where it is not shared."""
        return self.kind.artefact(name).key(self.cfg)

    def lookup(self, name: str) -> Any | None:
        """The shared artefact `name` if it exists already (memo or disk), else None; nothing is computed."""
        artefact, key = self.kind.artefact(name), self.artefact_key(name)
        if key is None:
            return None
        return self.cache.lookup(
            f"{self.kind.name}.{name}", key, self.device, on_disk=artefact.on_disk, memo_size=artefact.memo_size
        )

    def claim(self, name: str) -> contextlib.AbstractContextManager:
        """Hold artefact `name`'s on-disk lock while computing it (nothing for an artefact not kept on disk): another
        process that needs it waits, then finds it made."""
        artefact, key = self.kind.artefact(name), self.artefact_key(name)
        if key is None or not artefact.on_disk:
            return contextlib.nullcontext()
        return self.cache.claim(f"{self.kind.name}.{name}", key, self.device)

    def store(self, name: str, value: Any) -> Any:
        """Share `value`, computed by this run (maybe together with other runs' artefacts), as artefact `name`."""
        artefact, key = self.kind.artefact(name), self.artefact_key(name)
        if key is None:
            return value
        return self.cache.store(
            f"{self.kind.name}.{name}",
            key,
            self.device,
            value,
            on_disk=artefact.on_disk,
            memo_size=artefact.memo_size,
        )


@contextlib.contextmanager
def stage(ctxs: list[RunContext], name: str, *, timed: bool = False) -> Iterator[None]:
    """One stage done for several runs together (a batch): each run's context enters it and records its time."""
    with contextlib.ExitStack() as stack:
        for ctx in ctxs:
            stack.enter_context(ctx.stage(name, timed=timed))
        yield


Failure = RunFailed | Divergence  # what a run body raises (or a batch body returns) for a run that failed


def _as_json(value: Any) -> Any:
    """A batch key's core dataclasses (or config blocks) as the mapping of their fields."""
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value.model_dump(mode="json")


@dataclass(frozen=True)
class RunKind:
    """The one declaration of a run kind, in today's names (older names live in convlab.study.renames)."""

    name: str
    config: type[RunConfig]
    metrics: tuple[Metric, ...]
    body: Callable[[Any, RunContext], dict[str, Any]] | None = None
    # A kind that can run several configs as one computation declares `batch(cfgs, ctxs)`, returning per run
    # its metrics or its Failure, and `batch_key(cfg)`: runs with equal keys may share a batch. Its single runs
    # go through `batch` too (a batch of one), so a run alone and a run in a batch take one code path.
    batch: Callable[[list[Any], list[RunContext]], list[dict[str, Any] | Failure]] | None = None
    batch_key: Callable[[Any], Any] | None = None
    artefacts: tuple[Artefact, ...] = ()
    # The run's largest tensors as products of config fields (runs.memory): the plan refuses a run that cannot fit
    # on its device before anything runs. None: nothing large (closed forms).
    memory: Callable[[Any], list[Need]] | None = None

    def __post_init__(self):
        if (self.body is None) == (self.batch is None) or (self.batch is None) != (self.batch_key is None):
            raise ValueError(f"run kind {self.name}: declare either a body, or a batch body with its batch_key")
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(
                f"run kind {self.name}: metrics declared twice: {sorted(n for n in names if names.count(n) > 1)}"
            )

    @property
    def doc(self) -> str:
        return (self.config.__doc__ or "").strip()

    @property
    def metric_names(self) -> list[str]:
        return [m.name for m in self.metrics]

    def metric(self, name: str) -> Metric:
        return next(m for m in self.metrics if m.name == name)

    def artefact(self, name: str) -> Artefact:
        return next(a for a in self.artefacts if a.name == name)

    def shared_key(self, cfg: RunConfig) -> str | None:
        """'<kind>.<artefact>/<key>' of the on-disk artefact this run shares (the scheduler's groups), or None."""
        for a in self.artefacts:
            if a.on_disk and (key := a.key(cfg)) is not None:
                return f"{self.name}.{a.name}/{key}"
        return None

    def batch_id(self, cfg: RunConfig) -> str | None:
        """'<kind>:<hash of batch_key(cfg)>': runs with equal ids may run as one batch; None for a kind without a
        batch body."""
        if self.batch_key is None:
            return None
        blob = json.dumps(self.batch_key(cfg), sort_keys=True, default=_as_json)
        return f"{self.name}:{hashlib.sha256(blob.encode()).hexdigest()[:16]}"

    def validate(self, cfg: RunConfig | Mapping[str, Any]) -> RunConfig:
        return cfg if isinstance(cfg, self.config) else self.config.model_validate(cfg)

    def run(
        self,
        cfg: RunConfig | Mapping[str, Any],
        *,
        device: str | torch.device = "auto",
        cache: ArtefactCache | None = None,
    ) -> RunRecord:
        """One run: a failed record (stage, reason) for a RunFailed or a diverging training stage, never an exception
        for those; other exceptions are bugs and propagate (a sweep records them as crashed runs)."""
        return self.run_batch([cfg], device=device, cache=cache)[0]

    def run_batch(
        self,
        cfgs: list[RunConfig | Mapping[str, Any]],
        *,
        device: str | torch.device = "auto",
        cache: ArtefactCache | None = None,
    ) -> list[RunRecord]:
        """Several runs, as one batch where the kind declares a batch body (else one after the other): a record
        per run, each what the run gives alone (same streams, own optimiser state, own failure)."""
        cfgs = [self.validate(c) for c in cfgs]
        device = resolve_device(device)
        cache = cache if cache is not None else ArtefactCache()
        ctxs = [RunContext(self, cfg, device, cache) for cfg in cfgs]
        start = time.perf_counter()
        if self.batch is not None:
            if len({self.batch_id(c) for c in cfgs}) > 1:
                raise ValueError(f"run kind {self.name}: a batch must share its batch_key")
            outcomes = self.batch(cfgs, ctxs)
        else:
            outcomes = []
            for cfg, ctx in zip(cfgs, ctxs):
                try:
                    outcomes.append(self.body(cfg, ctx))
                except (RunFailed, Divergence) as err:
                    outcomes.append(err)
        seconds = time.perf_counter() - start
        return [self._record(out, ctx, seconds, len(cfgs)) for out, ctx in zip(outcomes, ctxs)]

    def _record(self, out: dict[str, Any] | Failure, ctx: RunContext, seconds: float, batch: int) -> RunRecord:
        info = {"device": str(ctx.device), "runs_in_batch": batch}
        if isinstance(out, Failure):
            return RunRecord("failed", getattr(out, "metrics", {}), info, stage=ctx.current, reason=str(out))
        metrics = {**out, **ctx.timings, "time_total_s": seconds}
        undeclared = sorted(set(metrics) - set(self.metric_names))
        if undeclared:
            raise KeyError(f"run kind {self.name} emitted metrics it does not declare: {', '.join(undeclared)}")
        bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            return RunRecord("failed", {}, info, stage="measure", reason=f"non-finite {', '.join(bad)}")
        return RunRecord("ok", metrics, info)
