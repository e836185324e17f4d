"""The audit's Spark engine (``nkr audit --engine spark``): the scale-out path, for exports
that outgrow one machine. It moves the data as the DuckDB engine does and decides nothing
itself: the same classification of each line (:mod:`nkr.audit._duckdb`'s kinds, paths and
reference pattern), the same per-patient step in Spark's Python workers
(:func:`nkr.audit._judge.judge_batch`) and the same figures SQL (:mod:`nkr.audit._sql`), so both
engines give the same results. Nothing here knows a guideline.

The session (:func:`spark_session`) is small and quick to start on one machine (local mode:
tests, CI): it listens on loopback only, keeps no Hive metastore, draws no web UI and writes
its scratch files into a temporary folder removed when it ends. Under ``spark-submit``
(:mod:`nkr.audit.spark_main`) it is the cluster's, with spark-submit's settings.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import sys
import tempfile
import urllib.parse
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyspark  # noqa: F401 - the extra "spark": without it, ``--engine spark`` says so

from nkr._errors import InputError
from nkr._package import GuidelinePackage, discover
from nkr.audit._judge import (
    COMPARTMENT,
    EPISODES_SCHEMA,
    LINES_SCHEMA,
    MEASURED_SCHEMA,
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
from nkr.audit._result import KEPT_PER_KIND, Tally
from nkr.audit._run import EngineRun, figures
from nkr.audit._sql import figures_sql
from nkr.fhir._read import BY_TYPE

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

DEFAULT_MASTER: Final = "local[2]"
DEFAULT_PARTITIONS: Final = 8
DEFAULT_DRIVER_MEMORY: Final = "2g"

# Spark's own start-up chatter (the native Hadoop library, the loopback address) is not the
# user's business: warnings and errors only, from the first line the JVM logs.
_LOG4J2: Final = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
logger.hadoop.name = org.apache.hadoop.util.NativeCodeLoader
logger.hadoop.level = error
logger.utils.name = org.apache.spark.util.Utils
logger.utils.level = error
# A task that fails (a broken file) is reported by the audit itself, in one line.
logger.executor.name = org.apache.spark.executor.Executor
logger.executor.level = off
logger.tasks.name = org.apache.spark.scheduler.TaskSetManager
logger.tasks.level = off
"""


@dataclass(frozen=True, slots=True)
class SparkOptions:
    """How the audit's Spark session is built. ``master`` None: ``local[2]``, or the master
    ``spark-submit`` was given when it runs the audit (its settings then win)."""

    master: str | None = None
    shuffle_partitions: int = DEFAULT_PARTITIONS
    driver_memory: str = DEFAULT_DRIVER_MEMORY

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SparkOptions:
        """The options from ``NKR_SPARK_MASTER``, ``NKR_SPARK_PARTITIONS`` and
        ``NKR_SPARK_DRIVER_MEMORY``; InputError naming the variable when one is not valid."""
        env = os.environ if env is None else env
        partitions = env.get("NKR_SPARK_PARTITIONS", str(DEFAULT_PARTITIONS))
        if not partitions.isascii() or not partitions.isdigit() or int(partitions) < 1:
            raise InputError("NKR_SPARK_PARTITIONS", "expected a whole number of at least 1")
        memory = env.get("NKR_SPARK_DRIVER_MEMORY", DEFAULT_DRIVER_MEMORY)
        if not _is_memory(memory):
            raise InputError("NKR_SPARK_DRIVER_MEMORY", "expected a size such as 2g or 512m")
        return cls(env.get("NKR_SPARK_MASTER") or None, int(partitions), memory)


def _is_memory(value: str) -> bool:
    number, unit = value[:-1], value[-1:].lower()
    return number.isascii() and number.isdigit() and int(number) > 0 and unit in "kmgt"


def under_spark_submit() -> bool:
    """Whether this process is the driver ``spark-submit`` started (its JVM is running and
    holds the master and memory it was given)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


@contextmanager
def spark_session(options: SparkOptions | None = None) -> Iterator[SparkSession]:
    """A Spark session for the audit, stopped and its scratch folder removed on exit."""
    options = options or SparkOptions()
    scratch = Path(tempfile.mkdtemp(prefix="nkr-spark-"))
    try:
        session = _build(options, scratch)
        try:
            yield session
        finally:
            session.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _build(options: SparkOptions, scratch: Path) -> SparkSession:
    local = not under_spark_submit() and (options.master or DEFAULT_MASTER).startswith("local")
    # In local mode the Python workers run this interpreter (the virtual environment with nkr
    # in it) and Spark binds and names itself on loopback only; a cluster's workers run the
    # Python its PYSPARK_PYTHON names, when it is set.
    for name in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON"):
        if local:
            os.environ[name] = sys.executable
        else:
            os.environ.setdefault(name, sys.executable)
    if local:
        os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
        os.environ["SPARK_LOCAL_DIRS"] = str(scratch / "local")
    # pyspark 4.3 warns about pandas 3 on every pandas-based call; the audit passes Arrow.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")

    from pyspark.errors import PySparkException
    from pyspark.sql import SparkSession

    log4j = scratch / "log4j2.properties"
    log4j.write_text(_LOG4J2, encoding="utf-8")
    builder = SparkSession.builder.appName("nkr-audit")
    settings: dict[str, str] = {
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.warehouse.dir": (scratch / "warehouse").as_uri(),
        "spark.sql.shuffle.partitions": str(options.shuffle_partitions),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        # As DuckDB's JSON functions read a line with a key twice: not malformed.
        "spark.sql.variant.allowDuplicateKeys": "true",
    }
    if not under_spark_submit():
        # Only a JVM this process starts takes these; under spark-submit its own flags rule.
        builder = builder.master(options.master or DEFAULT_MASTER)
        settings["spark.driver.memory"] = options.driver_memory
        settings["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile={log4j.as_uri()}"
    given = _submitted() if under_spark_submit() else frozenset()
    if local:
        settings["spark.ui.enabled"] = "false"
        settings["spark.ui.showConsoleProgress"] = "false"
        settings["spark.driver.host"] = "127.0.0.1"
        settings["spark.driver.bindAddress"] = "127.0.0.1"
    for key, value in settings.items():
        if key not in given:
            builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except PySparkException as exc:
        raise InputError(
            f"--engine spark: Spark did not start ({_first_cause(exc)}); it needs a Java "
            "runtime, 17 or newer (scripts/setup --dev installs one)"
        ) from None
    session.sparkContext.setLogLevel("WARN")
    return session


def _submitted() -> frozenset[str]:
    """The settings ``spark-submit`` was given (``--conf``, ``spark-defaults.conf``): they
    win over the audit's defaults."""
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()  # connects to the JVM spark-submit started
    return frozenset(key for key, _ in SparkConf().getAll())


# -- reading an export ---------------------------------------------------------------------------


def read_lines(session: SparkSession, files: Sequence[Path | str]) -> DataFrame:
    """Every line of ``files`` (NDJSON, gzipped or not, in whatever storage the session
    reads) as ``file`` (its index in ``files``), ``line`` (its number in the file, from 1)
    and ``text``.

    Spark reads a large file in blocks, in parallel, and numbers no lines; a line's number is
    its place in its block (the rows of one block get consecutive ids) plus the lines of the
    file's blocks before it, which one small aggregate over (file, block) counts (a scan that
    splits the lines but builds no strings)."""
    from py4j.protocol import Py4JJavaError  # type: ignore[import-untyped]
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as F

    names = [str(f) for f in files]
    raw = session.read.text(names).select(
        F.col("value").alias("text"),
        F.col("_metadata.file_path").alias("uri"),
        F.col("_metadata.file_block_start").alias("block"),
        F.monotonically_increasing_id().alias("id"),
    )
    # This pass reads every byte of every file, and runs no Python: what fails here is the
    # reading (a broken gzip stream, a file gone), told in one line.
    try:
        counts = (
            raw.groupBy("uri", "block")
            .agg(F.count("*").alias("n"), F.min("id").alias("first_id"))
            .collect()
        )
    except (PySparkException, Py4JJavaError) as exc:
        raise InputError(f"reading the export: {_first_cause(exc)}") from None
    index = {_uri_key(name): i for i, name in enumerate(names)}
    blocks: list[tuple[str, int, int, int, int]] = []
    before: dict[str, int] = {}
    for row in sorted(counts, key=lambda r: (r["uri"], r["block"])):
        uri = row["uri"]
        first_line = before.get(uri, 0) + 1
        before[uri] = first_line - 1 + row["n"]
        blocks.append((uri, row["block"], row["first_id"], first_line, index[_uri_key(uri)]))
    table = session.createDataFrame(
        blocks, "uri string, block long, first_id long, first_line long, file int"
    )
    return raw.join(F.broadcast(table), ["uri", "block"]).select(
        "file",
        (F.col("id") - F.col("first_id") + F.col("first_line")).alias("line"),
        "text",
    )


def _first_cause(exc: Exception) -> str:
    """The file and the innermost Java exception (``/data/x.ndjson.gz: java.io.EOFException:
    Unexpected end of input stream``), without Spark's stack of tasks and stages."""
    text = str(exc)
    lines = [line.strip() for line in text.splitlines()]
    causes = [line.removeprefix("Caused by: ") for line in lines if line.startswith("Caused by: ")]
    cause = causes[-1] if causes else next((line for line in lines if line), type(exc).__name__)
    file = _READ_FILE.search(text)
    if file is None:
        return cause
    return f"{urllib.parse.unquote(urllib.parse.urlsplit(file[1]).path)}: {cause}"


# Spark's FAILED_READ_FILE error names the file as a URI, then a full stop.
_READ_FILE: Final = re.compile(r"while reading file (\S+?)\.?\s")


def _uri_key(name: str) -> str:
    # Spark names a local file file:/abs/path; a name given may be a path or a URI.
    parsed = urllib.parse.urlsplit(name)
    if parsed.scheme in ("", "file"):
        return str(Path(urllib.parse.unquote(parsed.path)).resolve())
    return name


def classify(lines: DataFrame) -> DataFrame:
    """Each non-empty line's patient (``Patient/ID``) and kind, as the DuckDB engine decides
    them (:func:`nkr.audit._duckdb.lines_sql`): the same paths, the same reference pattern,
    the same kinds; the text of a patient's resource only."""
    from pyspark.sql import functions as F

    value = F.try_parse_json("text")
    rt, rid, subject, patient = (F.try_variant_get(value, path, "string") for path in PATIENT_PATHS)
    reference = F.when(
        rt == "Patient", F.regexp_extract(F.concat(F.lit("Patient/"), rid), PATIENT_REFERENCE, 1)
    ).otherwise(F.regexp_extract(F.coalesce(subject, patient, F.lit("")), PATIENT_REFERENCE, 1))
    keyed = lines.where(F.length("text") > 0).select(
        "file",
        "line",
        "text",
        rt.alias("rt"),
        F.nullif(reference, F.lit("")).alias("patient"),
    )
    kind = (
        F.when(F.col("rt").isNull(), MALFORMED)
        .when(~F.col("rt").isin(sorted(BY_TYPE)), UNKNOWN_TYPE)
        .when(F.col("patient").isNotNull(), OK)
        .when(F.col("rt").isin(sorted(COMPARTMENT)), NO_PATIENT)
        .otherwise(SHARED)
    )
    return keyed.select(
        "patient",
        F.col("file").cast("int").alias("file"),
        "line",
        # An Organization's text too: its name, for the report (as the DuckDB engine keeps it).
        F.when(
            (kind == OK) | ((kind == SHARED) & (F.col("rt") == "Organization")), F.col("text")
        ).alias("text"),
        kind.cast("tinyint").alias("kind"),
    )


# -- judging each patient, in Spark's Python workers ---------------------------------------------

# What the workers give back, one table with a row kind: an episode (EPISODES_SCHEMA's
# columns), a measured row (MEASURED_SCHEMA's, the organization filled in), a problem, an
# organization's name (``organization`` and ``detail``) or a partition's counts.
OUT_SCHEMA: Final = pa.schema(
    [
        ("row", pa.string()),
        *EPISODES_SCHEMA,
        ("indicator", pa.string()),
        ("numerator", pa.int32()),
        ("problem", pa.string()),
        ("file", pa.string()),
        ("line", pa.int64()),
        ("detail", pa.string()),
        ("resources", pa.int64()),
        ("shared", pa.int64()),
        ("patients", pa.int64()),
        ("without_episode", pa.int64()),
    ]
)
_LINE_COLUMNS: Final = LINES_SCHEMA.names

_PACKAGES: dict[tuple[str, tuple[tuple[str, str], ...]], GuidelinePackage] = {}


def _package(guideline: str, env: tuple[tuple[str, str], ...]) -> GuidelinePackage:
    """The guideline package in a worker process, built from the driver's ``NKR_*``
    settings (a worker on a cluster has its own environment) and kept for the next task."""
    key = (guideline, env)
    if key not in _PACKAGES:
        package = discover(dict(env)).get(guideline)
        package.indicators  # noqa: B018 - built now, once: the value sets, reading, rules
        _PACKAGES[key] = package
    return _PACKAGES[key]


def _rows(row: str, table: pa.Table) -> pa.Table:
    return table.append_column("row", pa.array([row] * len(table), pa.string()))


def _out(*tables: pa.Table) -> Iterator[pa.RecordBatch]:
    for table in tables:
        if len(table):
            n = len(table)
            columns = [
                table.column(f.name).cast(f.type)
                if f.name in table.column_names
                else pa.nulls(n, f.type)
                for f in OUT_SCHEMA
            ]
            yield from pa.Table.from_arrays(columns, schema=OUT_SCHEMA).to_batches()


@dataclass(frozen=True, slots=True)
class _Judge:
    """The function Spark runs on each partition of the sorted lines, a patient's lines
    together (a picklable object: the guideline's id, the ``NKR_*`` settings, the files)."""

    guideline: str
    env: tuple[tuple[str, str], ...]
    files: tuple[str, ...]

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        package = _package(self.guideline, self.env)
        counts = {"resources": 0, "shared": 0, "patients": 0, "without_episode": 0}
        carry: pa.RecordBatch | None = None
        for batch in batches:
            counts["resources"] += batch.num_rows
            ok = pc.equal(batch.column("kind"), OK)
            if not pc.all(ok).as_py():
                yield from self._others(batch.filter(pc.invert(ok)), counts)
                batch = batch.filter(ok)
            batch = batch.select(_LINE_COLUMNS).cast(LINES_SCHEMA)
            if carry is not None:
                batch = pa.concat_batches([carry, batch])
            if batch.num_rows == 0:
                continue
            # The last patient's lines may go on in the next batch: judged with them.
            patients = batch.column("patient")
            tail = int(pc.sum(pc.equal(patients, patients[-1])).as_py() or 0)
            carry = batch.slice(batch.num_rows - tail)
            yield from self._judge(package, batch.slice(0, batch.num_rows - tail), counts)
        if carry is not None:
            yield from self._judge(package, carry, counts)
        yield from _out(_rows("tally", pa.table({k: [v] for k, v in counts.items()})))

    def _others(self, batch: pa.RecordBatch, counts: dict[str, int]) -> Iterator[pa.RecordBatch]:
        problems: list[Problem] = []
        shared = Tally()
        for file, line, text, kind in zip(
            batch.column("file").to_pylist(),
            batch.column("line").to_pylist(),
            batch.column("text").to_pylist(),
            batch.column("kind").to_pylist(),
            strict=True,
        ):
            if kind == SHARED:
                counts["shared"] += 1
                if text is not None:
                    organization_name(text, shared)
            else:
                what, detail = DETAIL[kind]
                problems.append(
                    Problem(kind=what, file=self.files[file], line=line, detail=detail)  # type: ignore[arg-type]
                )
        names = shared.organizations
        yield from _out(
            _problems(problems),
            _rows(
                "organization",
                pa.table(
                    {
                        "organization": pa.array(list(names), pa.string()),
                        "detail": pa.array(list(names.values()), pa.string()),
                    }
                ),
            ),
        )

    def _judge(
        self, package: GuidelinePackage, batch: pa.RecordBatch, counts: dict[str, int]
    ) -> Iterator[pa.RecordBatch]:
        if batch.num_rows == 0:
            return
        judged = Judged()
        judge_batch(package, batch, self.files, judged)
        counts["patients"] += judged.patients
        counts["without_episode"] += judged.without_episode
        yield from _out(
            _rows("episode", pa.Table.from_batches([episodes_batch(judged.episodes)])),
            _rows("measured", pa.Table.from_batches([measured_batch(judged.episodes)])),
            _problems(judged.problems),
        )


def _problems(problems: Sequence[Problem]) -> pa.Table:
    return _rows(
        "problem",
        pa.table(
            {
                "problem": pa.array([p.kind for p in problems], pa.string()),
                "file": pa.array([p.file for p in problems], pa.string()),
                "line": pa.array([p.line for p in problems], pa.int64()),
                "detail": pa.array([p.detail for p in problems], pa.string()),
            }
        ),
    )


# -- the engine ----------------------------------------------------------------------------------


def audit(
    session: SparkSession,
    package: GuidelinePackage,
    files: Sequence[Path | str],
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    min_cell: int,
    env: Mapping[str, str] | None = None,
) -> EngineRun:
    """The audit of ``files`` on ``session``: Spark reads the lines, finds each one's patient,
    puts a patient's lines together (sorted by file and line) and runs the per-patient
    judging of every engine (:func:`nkr.audit._judge.judge_batch`) in its Python workers; the
    figures are the shared SQL (:func:`nkr.audit._sql.figures_sql`) in Spark SQL."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    env = os.environ if env is None else env
    names = tuple(str(f) for f in files)
    judge = _Judge(
        package.id, tuple(sorted((k, v) for k, v in env.items() if k.startswith("NKR_"))), names
    )
    lines = classify(read_lines(session, files))
    partitions = int(session.conf.get("spark.sql.shuffle.partitions") or DEFAULT_PARTITIONS)
    out = (
        lines.repartition(partitions, "patient")
        .sortWithinPartitions("patient", "file", "line")
        .mapInArrow(judge, from_arrow_schema(OUT_SCHEMA))
        # On disk: in local mode the driver's heap is all of Spark's memory.
        .persist(StorageLevel.DISK_ONLY)
    )
    try:
        counts = (
            out.where(F.col("row") == "tally")
            .agg(
                *(F.sum(c).alias(c) for c in ("resources", "shared", "patients", "without_episode"))
            )
            .collect()[0]
        )
        episodes = (
            out.where(F.col("row") == "episode")
            .select(*EPISODES_SCHEMA.names)
            .toArrow()
            .cast(EPISODES_SCHEMA)
            .sort_by("patient")
        )
        view = f"nkr_measured_{uuid.uuid4().hex}"
        out.where(F.col("row") == "measured").select(*MEASURED_SCHEMA.names).createTempView(view)
        try:
            rows = session.sql(figures_sql(view, min_cell, start, end)).collect()
        finally:
            session.catalog.dropTempView(view)
        problems = _collect_problems(out, names)
        organizations = {
            r["organization"]: r["detail"]
            for r in out.where(F.col("row") == "organization")
            .select("organization", "detail")
            .collect()
        }
    finally:
        out.unpersist()
    tally = Tally(
        resources=int(counts["resources"] or 0),
        shared=int(counts["shared"] or 0),
        patients=int(counts["patients"] or 0),
        without_episode=int(counts["without_episode"] or 0),
        problem_counts=problems[0],
        problems=problems[1],
        organizations=organizations,
    )
    return EngineRun(
        episodes, figures([tuple(r) for r in rows], [i.id for i in package.indicators]), tally
    )


def _collect_problems(out: DataFrame, names: Sequence[str]) -> tuple[Counter[str], list[Problem]]:
    """The count of each kind of problem, and of each kind the first :data:`KEPT_PER_KIND`
    (by file and line) with their file and line."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = {name: i for i, name in enumerate(names)}
    problems = out.where(F.col("row") == "problem").select("problem", "file", "line", "detail")
    rank = F.row_number().over(Window.partitionBy("problem").orderBy("file", "line"))
    kept = problems.withColumn("rank", rank).where(F.col("rank") <= KEPT_PER_KIND).collect()
    found = [
        Problem(kind=r["problem"], file=r["file"], line=r["line"], detail=r["detail"]) for r in kept
    ]
    found.sort(key=lambda p: (order.get(p.file, len(order)), p.line, p.kind))
    counts = Counter(
        {r["problem"]: int(r["count"]) for r in problems.groupBy("problem").count().collect()}
    )
    return counts, found


def run(
    package: GuidelinePackage,
    files: Sequence[Path],
    *,
    start: dt.date | None,
    end: dt.date | None,
    min_cell: int,
) -> EngineRun:
    """``nkr audit --engine spark``: :func:`audit` on the active Spark session (the one
    ``spark-submit`` or a test started), else on one of its own (:class:`SparkOptions` from
    the environment) stopped at the end."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return audit(active, package, files, start=start, end=end, min_cell=min_cell)
    with spark_session(SparkOptions.from_env()) as session:
        return audit(session, package, files, start=start, end=end, min_cell=min_cell)
