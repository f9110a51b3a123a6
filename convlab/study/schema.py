"""The study file: a base run config, a grid over dotted keys, seeds, exclusions, resources and rates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from convlab.runs.config import Strict

# A study's name is a directory name (results/<name>, docs/studies/<name>): letters, digits, _ and -, nothing that
# climbs out of its folder, short enough for every file system.
NAME_PATTERN = r"^[A-Za-z0-9_\-]+$"
MAX_NAME = 100
MAX_DESCRIPTION = 10_000
MAX_SEEDS = 100_000  # a seed count or list beyond this is not a study (and `seeds: 1e11` would build the list)


class Resources(Strict):
    """Execution hints: how to run, never what. Not part of any run's identity."""

    jobs: Annotated[int, Field(ge=1)] | None = None
    # torch threads per local worker (default 1: convlab.study.execute.DEFAULT_THREADS says why)
    threads: Annotated[int, Field(ge=1)] | None = None
    # runs of one batch key trained as one computation: auto (default), off, or at most this many per batch
    batch: Annotated[int, Field(ge=1)] | Literal["auto", "off"] | None = None
    device: str | None = None
    partition: str | None = None
    time_min: Annotated[int, Field(ge=1)] | None = None
    mem_gb: Annotated[float, Field(gt=0)] | None = None
    cpus_per_run: Annotated[int, Field(ge=1)] | None = None
    gpus_per_run: Annotated[int, Field(ge=0)] | None = None
    array_parallelism: Annotated[int, Field(ge=1)] | None = None


class RateSpec(Strict):
    """A rate to fit: y ~ C x^slope per group, with a verdict against `expected` (+/- tol).

    `expected` is a number or a formula in the group columns, e.g. "-1/(target.d + 3)". `test` says what the theory
    claims: `two_sided` (the rate is `expected`), `upper_bound` (the error falls at least that fast: a steeper slope
    passes), or `equivalence` (y does not depend on the column `compare`: the paired log-ratio's slope against the
    `reference` level of `compare` lies within +/- `delta`, and, one-sided, below +delta: "not slower").
    `compare` names a column whose levels should (or should not) change the slope: the report gives paired
    t-intervals of the slope differences across its levels within each group of the other columns. `trend` names a
    group_by column (e.g. target.d) across whose levels the slope is tested for flattening or steepening.
    `x_min: auto` / `x_max: auto` choose the window from the data (metrics.rates.auto_window) and say why.
    """

    name: str | None = None
    x: str
    y: str
    group_by: list[str] = []
    where: dict[str, Any] = {}  # fit only the rows with these column values
    expected: float | str | None = None
    tol: Annotated[float, Field(gt=0)] | None = None
    test: Literal["two_sided", "upper_bound", "equivalence"] = "two_sided"
    delta: Annotated[float, Field(gt=0)] | None = None  # equivalence margin on the log-ratio's slope
    resolved: str | None = None
    x_min: float | Literal["auto"] | None = None
    x_max: float | Literal["auto"] | None = None
    compare: str | None = None
    reference: Any = None  # the level of `compare` the others are tested against (default: the smallest)
    trend: str | None = None
    seed: str = "seed"
    x_scale: Literal["log", "linear"] = "log"  # linear: fit log y against x, an exponential rate e^{slope x}

    @model_validator(mode="after")
    def _consistent(self) -> RateSpec:
        if (self.expected is None) != (self.tol is None):
            raise ValueError(f"tol: give expected and tol together (got expected={self.expected!r}, tol={self.tol!r})")
        if self.test == "upper_bound" and self.expected is None:
            raise ValueError("test: upper_bound needs the bound's exponent in expected (and tol)")
        if self.test == "equivalence" and (self.compare is None or self.delta is None):
            raise ValueError(
                "test: equivalence needs compare (the column y should not depend on) and delta (the margin)"
            )
        if self.delta is not None and self.test != "equivalence":
            raise ValueError(f"delta: only an equivalence test has a margin (test is {self.test!r})")
        if self.reference is not None and self.compare is None:
            raise ValueError(f"reference: a level of `compare`, which is not given (got {self.reference!r})")
        if self.trend is not None and self.trend not in self.group_by:
            raise ValueError(
                f"trend: the slope's trend is across the groups of a group_by column; add {self.trend!r} to group_by"
            )
        if isinstance(self.x_min, float | int) and isinstance(self.x_max, float | int) and self.x_min >= self.x_max:
            raise ValueError(
                f"x_max: the window [x_min, x_max] is empty: x_max must be above x_min = {self.x_min:g} "
                f"(got {self.x_max:g})"
            )
        return self

    @property
    def title(self) -> str:
        return self.name or f"{self.y} vs {self.x}"


class CheckSpec(Strict):
    """A claim every run must satisfy: the boolean column `column` is true in every ok run (within `where`)."""

    name: str
    column: str
    where: dict[str, Any] = {}


class Extension(Strict):
    """More values of grid keys for the grid points that match `where` (config keys -> values): how `convlab refine`
    extends a study where a rate has not settled, written into the study it runs."""

    where: dict[str, Any] = {}
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]]


class Block(Strict):
    """One part of a study with its own run kind or settings: its `base` is merged over the study's base (nested
    keys one by one), its `grid` and `zip` are crossed with the study's, and `seeds` (default: the study's)."""

    name: Annotated[str, Field(pattern=NAME_PATTERN, max_length=MAX_NAME)]
    base: dict[str, Any] = {}
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = {}
    zip: list[dict[str, Annotated[list[Any], Field(min_length=1)]]] = []
    seeds: (
        Annotated[list[Annotated[int, Field(ge=0)]], Field(max_length=MAX_SEEDS)]
        | Annotated[int, Field(ge=1, le=MAX_SEEDS)]
        | None
    ) = None


class StudySpec(Strict):
    """A declarative study (see studies/*.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[
        str,
        Field(
            pattern=NAME_PATTERN, max_length=MAX_NAME, description="the study's name: its results go to <out>/<name>"
        ),
    ]
    description: Annotated[
        str, Field(max_length=MAX_DESCRIPTION, description="one line on what the study measures")
    ] = ""
    base: Annotated[
        dict[str, Any], Field(description="the run config every run starts from: `kind` and its keys (`convlab kinds`)")
    ]
    grid: Annotated[
        dict[str, Annotated[list[Any], Field(min_length=1)]],
        Field(description="dotted config keys to lists of values; the lists are crossed"),
    ] = {}
    zip: Annotated[
        list[dict[str, Annotated[list[Any], Field(min_length=1)]]],
        Field(description="groups of dotted keys whose lists vary together (equal lengths), crossed with the grid"),
    ] = []
    seeds: Annotated[
        Annotated[list[Annotated[int, Field(ge=0)]], Field(max_length=MAX_SEEDS)]
        | Annotated[int, Field(ge=1, le=MAX_SEEDS)],
        Field(description="the seeds of every grid point: a list, or a count (0 .. n-1)"),
    ] = [0]
    blocks: Annotated[
        list[Block],
        Field(description="parts with their own base (e.g. another run kind); none: the study is one block"),
    ] = []
    exclude: Annotated[
        list[dict[str, Any]], Field(description="grid points to leave out: each a mapping of dotted keys to values")
    ] = []
    resources: Annotated[Resources, Field(description="how to run (workers, device, SLURM); never what")] = Resources()
    rates: Annotated[list[RateSpec], Field(description="rates to fit and test (the report)")] = []
    checks: Annotated[list[CheckSpec], Field(description="claims every run must satisfy (the report)")] = []
    extend: Annotated[
        list[Extension], Field(description="grid extensions written by `convlab refine` into the study it runs")
    ] = []
    figure: Annotated[
        str | None, Field(description="figure script, relative to the study file (default ../figures/<name>.py)")
    ] = None

    @field_validator("blocks")
    @classmethod
    def _distinct_blocks(cls, blocks: list[Block]) -> list[Block]:
        names = [b.name for b in blocks]
        if len(set(names)) != len(names):
            raise ValueError(f"blocks: names must differ (got {names})")
        for i, b in enumerate(blocks):
            cls._equal_lengths(b.zip, f"blocks[{i}].zip")
        return blocks

    @field_validator("zip")
    @classmethod
    def _equal_lengths(cls, groups: list[dict[str, list[Any]]], where: str = "zip") -> list[dict[str, list[Any]]]:
        for i, group in enumerate(groups):
            lengths = {k: len(v) for k, v in group.items()}
            if len(set(lengths.values())) > 1:
                raise ValueError(f"{where}[{i}]: lists that vary together need equal lengths (got {lengths})")
        return groups

    @property
    def seed_list(self) -> list[int]:
        return _seeds(self.seeds)

    def parts(self) -> list[tuple[int | None, dict[str, Any], dict, list[dict], list[int]]]:
        """(block index, base, grid, zip, seeds) of each block, or (None, ...) of the study itself when it has
        none."""
        if not self.blocks:
            return [(None, self.base, self.grid, self.zip, self.seed_list)]
        return [
            (
                i,
                _merged(self.base, b.base),
                {**self.grid, **b.grid},
                [*self.zip, *b.zip],
                _seeds(b.seeds) if b.seeds is not None else self.seed_list,
            )
            for i, b in enumerate(self.blocks)
        ]


def _seeds(seeds) -> list[int]:
    return list(range(seeds)) if isinstance(seeds, int) else list(seeds)


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` merged into a copy of `base`, nested dicts key by key."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def figure_script(study: StudySpec, source: str | Path) -> Path:
    """The study's figure script: its `figure`, or figures/<name>.py beside the studies folder, from its file."""
    rel = study.figure or f"../figures/{study.name}.py"
    return (Path(source).resolve().parent / rel).resolve()
