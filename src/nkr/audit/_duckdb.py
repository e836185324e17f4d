"""The DuckDB engine: DuckDB scans the NDJSON files as raw lines (keeping each line's file and
number), finds each resource's patient, sorts a patient's lines together (spilling to disk
past its memory limit) and streams them as Arrow record batches to worker processes (one per
core) that decode and judge each patient (:func:`nkr.audit._judge.judge_batch`). The episodes
come back as Arrow, and DuckDB computes the figures from them (:mod:`nkr.audit._sql`).
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from nkr._errors import InputError
from nkr._package import GuidelinePackage, registry
from nkr.audit._judge import (
    COMPARTMENT,
    PATIENT_PATHS,
    PATIENT_REFERENCE,
    Judged,
    Problem,
    episodes_batch,
    judge_batch,
    measured_batch,
)
from nkr.audit._lines import (
    DETAIL,
    MALFORMED,
    NO_PATIENT,
    OK,
    SHARED,
    UNKNOWN_TYPE,
    organization_name,
)
from nkr.audit._result import Tally
from nkr.fhir._read import BY_TYPE

# Rows (lines) per batch handed to a worker: a few thousand patients.
BATCH_ROWS: Final = 32_768
# The longest line read (a resource with a large attachment), in bytes.
MAX_LINE: Final = 16 * 1024 * 1024


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _list(values: Sequence[str]) -> str:
    return "(" + ", ".join(_quote(v) for v in sorted(values)) + ")"


def lines_sql(files: Sequence[Path]) -> str:
    """Every line of ``files`` with its file (index), line number and kind (unsorted: see
    :data:`SORTED_SQL`)."""
    scans = " UNION ALL ".join(
        f"SELECT {i} AS file, row_number() OVER () AS line, text FROM read_csv({_quote(str(p))}, "
        "columns = {'text': 'VARCHAR'}, delim = '\x01', quote = '', escape = '', "
        f"header = false, auto_detect = false, max_line_size = {MAX_LINE}, "
        f"compression = {_quote('gzip' if p.name.endswith('.gz') else 'none')})"
        for i, p in enumerate(files)
    )
    paths = "[" + ", ".join(_quote(p) for p in PATIENT_PATHS) + "]"
    return f"""
WITH lines AS ({scans}),
keyed AS (
    SELECT file, line, text, try(json_extract_string(text, {paths})) AS k
    FROM lines WHERE text IS NOT NULL AND length(text) > 0
),
classified AS (
    SELECT file, line, text, k, k[1] AS rt,
           nullif(CASE WHEN k[1] = 'Patient'
                       THEN regexp_extract('Patient/' || k[2], {_quote(PATIENT_REFERENCE)}, 1)
                       ELSE regexp_extract(coalesce(k[3], k[4], ''), {_quote(PATIENT_REFERENCE)}, 1)
                  END, '') AS patient
    FROM keyed
),
kinds AS (
    SELECT file, line, text, patient, rt,
           CASE WHEN k IS NULL OR rt IS NULL THEN {MALFORMED}
                WHEN rt NOT IN {_list(list(BY_TYPE))} THEN {UNKNOWN_TYPE}
                WHEN patient IS NOT NULL THEN {OK}
                WHEN rt IN {_list(sorted(COMPARTMENT))} THEN {NO_PATIENT}
                ELSE {SHARED} END AS kind
    FROM classified
)
SELECT patient, CAST(file AS INTEGER) AS file, line,
       CASE WHEN kind = {OK} OR (kind = {SHARED} AND rt = 'Organization') THEN text END AS text,
       CAST(kind AS TINYINT) AS kind
FROM kinds
"""


# The lines (as the table ``lines``), a patient's resources together: by a hash of the
# patient, then the patient. (Sorted from a table, not straight from the scan: DuckDB 2.0
# spills this sort to disk, where the sort of the scan itself ran out of memory.)
SORTED_SQL: Final = "SELECT * FROM lines ORDER BY kind, hash(patient), patient"


# -- the workers --------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _start_worker(guideline: str, files: Sequence[str]) -> None:
    package = registry().get(guideline)
    # Built now, once, not on the first patient: the value sets, the reading and the rules.
    package.indicators  # noqa: B018
    _WORKER.update(package=package, files=list(files))


def _judge(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, pa.RecordBatch, Judged]:
    out = Judged()
    judge_batch(_WORKER["package"], batch, _WORKER["files"], out)
    episodes, out.episodes = out.episodes, []
    return episodes_batch(episodes), measured_batch(episodes), out


@dataclass
class Scanned:
    """What the scan and the workers gave."""

    episodes: list[pa.RecordBatch]
    measured: list[pa.RecordBatch]
    tally: Tally


def _batches(
    reader: pa.RecordBatchReader, tally: Tally, files: Sequence[str]
) -> Iterator[pa.RecordBatch]:
    """The patients' lines, whole patients per batch; the other lines counted (and each
    problem kept with its file and line)."""
    carry: pa.RecordBatch | None = None
    for batch in reader:
        if batch.num_rows == 0:
            continue
        tally.resources += batch.num_rows
        kind = batch.column(4)
        if kind[-1].as_py() != OK:
            ok = int(pc.sum(pc.equal(kind, OK)).as_py() or 0)
            _others(batch.slice(ok), tally, files)
            batch = batch.slice(0, ok)
            if batch.num_rows == 0:
                continue
        batch = batch.select([0, 1, 2, 3])
        if carry is not None:
            batch = pa.concat_batches([carry, batch])
        patients = batch.column(0)
        tail = int(pc.sum(pc.equal(patients, patients[-1])).as_py() or 0)
        carry = batch.slice(batch.num_rows - tail)
        if tail < batch.num_rows:
            yield batch.slice(0, batch.num_rows - tail)
    if carry is not None and carry.num_rows:
        yield carry


def _others(batch: pa.RecordBatch, tally: Tally, files: Sequence[str]) -> None:
    for file, line, text, kind in zip(
        batch.column(1).to_pylist(),
        batch.column(2).to_pylist(),
        batch.column(3).to_pylist(),
        batch.column(4).to_pylist(),
        strict=True,
    ):
        if kind == SHARED:
            tally.shared += 1
            if text is not None:
                organization_name(text, tally)
        else:
            what, detail = DETAIL[kind]
            tally.problem(Problem(kind=what, file=files[file], line=line, detail=detail))  # type: ignore[arg-type]


def scan(
    package: GuidelinePackage,
    files: Sequence[Path],
    *,
    workers: int | None = None,
    memory_limit: str = "2GB",
    temp_directory: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> Scanned:
    """Read and judge every patient of ``files``. ``workers``: processes (None: one per core;
    0: judge in this process, for tests). ``progress`` is called with the bytes of lines
    judged so far (in steps)."""
    names = [str(p) for p in files]
    count = (os.cpu_count() or 1) if workers is None else workers
    pool: ProcessPoolExecutor | None = None
    if count > 0:
        # Started before DuckDB starts its threads: a forked worker must not inherit them.
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        pool = ProcessPoolExecutor(
            count,
            mp_context=multiprocessing.get_context(method),
            initializer=_start_worker,
            initargs=(package.id, names),
        )
        # The first task starts every worker (forked now, before DuckDB's threads exist).
        pool.submit(int).result()
    else:
        _start_worker(package.id, names)
    tally = Tally()
    scanned = Scanned([], [], tally)
    done = 0

    def collect(result: tuple[pa.RecordBatch, pa.RecordBatch, Judged]) -> None:
        scanned.episodes.append(result[0])
        scanned.measured.append(result[1])
        tally.add(result[2])

    with tempfile.TemporaryDirectory(prefix="nkr-audit-", dir=temp_directory) as spill:
        con = duckdb.connect(
            config={
                "memory_limit": memory_limit,
                "temp_directory": spill,
                # The sort keeps no order of its input; the line numbers are counted per
                # file by the window before it (row_number() OVER (), in file order).
                "preserve_insertion_order": False,
            }
        )
        con.execute("SET enable_progress_bar = false")
        try:
            con.execute(f"CREATE TEMP TABLE lines AS {lines_sql(files)}")
            reader = con.sql(SORTED_SQL).to_arrow_reader(BATCH_ROWS)
            pending: deque[Future[Any]] = deque()
            for batch in _batches(reader, tally, names):
                size = int(pc.sum(pc.binary_length(batch.column(3))).as_py() or 0)
                if pool is None:
                    collect(_judge(batch))
                else:
                    pending.append(pool.submit(_judge, batch))
                    # A few batches in flight per worker: memory does not grow with the export.
                    while len(pending) > 2 * count:
                        collect(pending.popleft().result())
                done += size
                if progress is not None:
                    progress(done)
            while pending:
                collect(pending.popleft().result())
        except (duckdb.InvalidInputException, duckdb.IOException) as exc:
            # A file DuckDB cannot read as lines (a line too long, a broken gzip stream).
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"reading the export: {first}") from None
        finally:
            con.close()
            if pool is not None:
                pool.shutdown(cancel_futures=True)
    return scanned
