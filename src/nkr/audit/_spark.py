"""The audit's Spark session: small and quick to start on one machine (local mode, tests, CI),
the cluster's own when run by ``spark-submit``.

Spark is the scale-out path of the audit only; nothing here knows a guideline. The session
never listens beyond loopback in local mode, keeps no Hive metastore, draws no web UI and
writes its scratch files into a temporary folder removed when the session ends.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import urllib.parse
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from nkr._errors import InputError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

DEFAULT_MASTER: Final = "local[2]"
DEFAULT_PARTITIONS: Final = 4
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

    from pyspark.sql import SparkSession

    log4j = scratch / "log4j2.properties"
    log4j.write_text(_LOG4J2, encoding="utf-8")
    builder = SparkSession.builder.appName("nkr-audit")
    settings: dict[str, str] = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.warehouse.dir": (scratch / "warehouse").as_uri(),
        "spark.sql.shuffle.partitions": str(options.shuffle_partitions),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
    }
    if not under_spark_submit():
        # Only a JVM this process starts takes these; under spark-submit its own flags rule.
        builder = builder.master(options.master or DEFAULT_MASTER)
        settings["spark.driver.memory"] = options.driver_memory
        settings["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile={log4j.as_uri()}"
    given = _submitted() if under_spark_submit() else frozenset()
    if local:
        settings["spark.driver.host"] = "127.0.0.1"
        settings["spark.driver.bindAddress"] = "127.0.0.1"
    for key, value in settings.items():
        if key not in given:
            builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


def _submitted() -> frozenset[str]:
    """The settings ``spark-submit`` was given (``--conf``, ``spark-defaults.conf``): they
    win over the audit's defaults."""
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()  # connects to the JVM spark-submit started
    return frozenset(key for key, _ in SparkConf().getAll())


# -- reading an export ---------------------------------------------------------------------------


def read_lines(session: SparkSession, files: Sequence[str]) -> DataFrame:
    """Every line of ``files`` (NDJSON, gzipped or not, in whatever storage the session
    reads) as ``file`` (as given in ``files``), ``line`` (its number in the file, from 1) and
    ``text``.

    Spark reads a large file in blocks, in parallel, and numbers no lines; a line's number is
    its place in its block (rows of one block get consecutive ids) plus the lines of the
    file's blocks before it, which one small aggregate over (file, block) counts."""
    from pyspark.sql import functions as F

    raw = session.read.text(list(files)).select(
        F.col("value").alias("text"),
        F.col("_metadata.file_path").alias("uri"),
        F.col("_metadata.file_block_start").alias("block"),
        F.monotonically_increasing_id().alias("id"),
    )
    counts = (
        raw.groupBy("uri", "block")
        .agg(F.count("*").alias("n"), F.min("id").alias("first_id"))
        .collect()
    )
    names = _names(files, {row["uri"] for row in counts})
    blocks: list[tuple[str, int, int, int, str]] = []
    before: dict[str, int] = {}
    for row in sorted(counts, key=lambda r: (r["uri"], r["block"])):
        first_line = before.get(row["uri"], 0) + 1
        before[row["uri"]] = first_line - 1 + row["n"]
        blocks.append((row["uri"], row["block"], row["first_id"], first_line, names[row["uri"]]))
    table = session.createDataFrame(
        blocks, "uri string, block long, first_id long, first_line long, file string"
    )
    return raw.join(F.broadcast(table), ["uri", "block"]).select(
        "file",
        (F.col("id") - F.col("first_id") + F.col("first_line")).alias("line"),
        "text",
    )


def _names(files: Sequence[str], uris: set[str]) -> dict[str, str]:
    """Each file URI Spark read (``file:/data/x.ndjson``) by the name it was given as."""
    given = {_uri_key(name): name for name in files}
    return {uri: given.get(_uri_key(uri), uri) for uri in uris}


def _uri_key(name: str) -> str:
    # Spark writes a local file as file:/abs/path; a name may be a path or any URI form.
    parsed = urllib.parse.urlsplit(name)
    if parsed.scheme in ("", "file"):
        return str(Path(urllib.parse.unquote(parsed.path)).resolve())
    return name
