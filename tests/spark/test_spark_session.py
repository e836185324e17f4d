"""The audit's Spark session: small, local, loopback only, its workers on this interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pytest

from nkr._errors import InputError
from nkr.audit._spark import SparkOptions

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")


def test_options_come_from_the_environment() -> None:
    options = SparkOptions.from_env(
        {
            "NKR_SPARK_MASTER": "spark://cluster:7077",
            "NKR_SPARK_PARTITIONS": "64",
            "NKR_SPARK_DRIVER_MEMORY": "8g",
        }
    )
    assert options == SparkOptions("spark://cluster:7077", 64, "8g")
    assert SparkOptions.from_env({}) == SparkOptions(None, 8, "2g")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NKR_SPARK_PARTITIONS", "0"),
        ("NKR_SPARK_PARTITIONS", "four"),
        ("NKR_SPARK_DRIVER_MEMORY", "lots"),
        ("NKR_SPARK_DRIVER_MEMORY", "2"),
    ],
)
def test_a_bad_option_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(InputError) as error:
        SparkOptions.from_env({name: value})
    assert error.value.location == name


def _interpreter(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for _ in batches:
        pass
    yield pa.record_batch({"python": [sys.executable]})


def test_the_session_is_local_and_its_workers_run_this_python(spark: SparkSession) -> None:
    conf = spark.sparkContext.getConf()
    assert spark.sparkContext.master == "local[2]"
    assert conf.get("spark.ui.enabled") == "false"
    assert conf.get("spark.sql.catalogImplementation") == "in-memory"
    assert conf.get("spark.driver.bindAddress") == "127.0.0.1"
    assert conf.get("spark.driver.host") == "127.0.0.1"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"
    rows = spark.range(2, numPartitions=2).mapInArrow(_interpreter, "python string").collect()
    assert {r["python"] for r in rows} == {sys.executable}


def test_without_java_the_audit_says_so_in_one_line(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "Patient.ndjson").write_text('{"resourceType":"Patient","id":"1"}\n')
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "no-java")}
    command = [sys.executable, "-m", "nkr", "audit", str(export), "--engine", "spark"]
    done = subprocess.run(
        [*command, "--out", str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].startswith(
        "nkr: error: --engine spark: Spark did not start ("
    )
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
