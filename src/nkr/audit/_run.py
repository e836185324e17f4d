"""One run of the audit: the SOURCE's files through an engine, the figures, the result."""

from __future__ import annotations

import datetime as dt
import importlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from nkr._errors import InputError
from nkr._package import GuidelinePackage
from nkr.audit import _duckdb
from nkr.audit._judge import EPISODES_SCHEMA, MEASURED_SCHEMA
from nkr.audit._model import Figure
from nkr.audit._result import AuditResult, Tally
from nkr.audit._source import source_files
from nkr.audit._sql import figures_sql

Engine = Literal["duckdb", "spark"]
DEFAULT_MIN_CELL = 5


@dataclass(frozen=True)
class EngineRun:
    """What an engine gives: every episode (:data:`~nkr.audit._judge.EPISODES_SCHEMA`), the
    figures of the episodes in the period, and the counts."""

    episodes: pa.Table
    figures: tuple[Figure, ...]
    tally: Tally


class SparkEngine(Protocol):
    """``nkr.audit._spark.run``: the same per-patient function and figures SQL on Spark."""

    def __call__(
        self,
        package: GuidelinePackage,
        files: Sequence[Path],
        *,
        start: dt.date | None,
        end: dt.date | None,
        min_cell: int,
    ) -> EngineRun: ...


def figures(rows: Sequence[Sequence[object]], order: Sequence[str]) -> tuple[Figure, ...]:
    """The rows of :func:`~nkr.audit._sql.figures_sql` as Figures, in the guideline's order
    of indicators."""
    rank = {ind: i for i, ind in enumerate(order)}
    found = [
        Figure(
            indicator=str(r[0]),
            stratum=r[1],  # type: ignore[arg-type]
            key=str(r[2]),
            numerator=None if r[3] is None else int(r[3]),  # type: ignore[call-overload]
            denominator=None if r[4] is None else int(r[4]),  # type: ignore[call-overload]
            proportion=None if r[5] is None else float(r[5]),  # type: ignore[arg-type]
            low=None if r[6] is None else float(r[6]),  # type: ignore[arg-type]
            high=None if r[7] is None else float(r[7]),  # type: ignore[arg-type]
            suppressed=bool(r[8]),
        )
        for r in rows
    ]
    found.sort(key=lambda f: rank.get(f.indicator, len(rank)))  # stable: SQL's order within
    return tuple(found)


def _duckdb_run(
    package: GuidelinePackage,
    files: Sequence[Path],
    *,
    start: dt.date | None,
    end: dt.date | None,
    min_cell: int,
    workers: int | None,
    progress: Callable[[int], None] | None,
) -> EngineRun:
    scanned = _duckdb.scan(package, files, workers=workers, progress=progress)
    episodes = pa.Table.from_batches(scanned.episodes, EPISODES_SCHEMA)
    measured = pa.Table.from_batches(scanned.measured, MEASURED_SCHEMA)
    con = duckdb.connect()
    try:
        con.register("measured", measured)
        rows = con.sql(figures_sql("measured", min_cell, start, end)).fetchall()
    finally:
        con.close()
    return EngineRun(episodes, figures(rows, [i.id for i in package.indicators]), scanned.tally)


def in_period(episodes: pa.Table, start: dt.date | None, end: dt.date | None) -> pa.Table:
    """The episodes that start from ``start`` to ``end`` (both included)."""
    mask = None
    column = episodes.column("start")
    if start is not None:
        mask = pc.greater_equal(column, pa.scalar(start, pa.date32()))
    if end is not None:
        upto = pc.less_equal(column, pa.scalar(end, pa.date32()))
        mask = upto if mask is None else pc.and_(mask, upto)
    return episodes if mask is None else episodes.filter(mask)


def run_audit(
    source: Path,
    package: GuidelinePackage,
    *,
    engine: Engine = "duckdb",
    start: dt.date | None = None,
    end: dt.date | None = None,
    min_cell: int = DEFAULT_MIN_CELL,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> AuditResult:
    """Audit the export at ``source`` (a folder of NDJSON files or a Bulk Data manifest)
    against ``package``. Raises InputError (one line) on a missing or unreadable source."""
    began = time.perf_counter()
    if start is not None and end is not None and start > end:
        raise InputError("--from: after --to")
    if min_cell < 0:
        raise InputError("--min-cell: expected a count of 0 or more")
    files = source_files(source)
    if engine == "spark":
        try:
            spark = importlib.import_module("nkr.audit._spark")
        except ImportError as exc:
            raise InputError(f"--engine spark: the Spark engine is not available ({exc})") from None
        run: EngineRun = spark.run(package, files, start=start, end=end, min_cell=min_cell)
    else:
        run = _duckdb_run(
            package,
            files,
            start=start,
            end=end,
            min_cell=min_cell,
            workers=workers,
            progress=progress,
        )
    return AuditResult(
        guideline=package.id,
        engine=engine,
        indicators=package.indicators,
        files=tuple(str(f) for f in files),
        period=(start, end),
        min_cell=min_cell,
        episodes=in_period(run.episodes, start, end),
        episodes_total=len(run.episodes),
        figures=run.figures,
        tally=run.tally,
        seconds=time.perf_counter() - began,
    )
