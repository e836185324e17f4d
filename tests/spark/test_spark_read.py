"""Reading an export in Spark: every line, with the real file and line number, however Spark
splits the files."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

from nkr._errors import InputError
from nkr.audit._spark import read_lines

pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")


def test_lines_keep_their_file_and_number_across_blocks(
    spark: SparkSession, tmp_path: Path
) -> None:
    big = tmp_path / "Observation.ndjson"
    # About 1.2 MB: read in several blocks of 256 kB below, each numbered on its own.
    big.write_text("".join(f'{{"n":{n},"pad":"{"x" * 60}"}}\n' for n in range(1, 16_001)))
    small = tmp_path / "Patient.ndjson.gz"
    with gzip.open(small, "wt") as f:
        f.write('{"n":1}\n\n{"n":3}\n')
    spark.conf.set("spark.sql.files.maxPartitionBytes", str(256 * 1024))
    try:
        lines = read_lines(spark, [str(big), str(small)])
        assert lines.rdd.getNumPartitions() > 3
        rows = lines.collect()
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")

    got = sorted((r["file"], r["line"], r["text"]) for r in rows)
    want = sorted(
        [(0, n, f'{{"n":{n},"pad":"{"x" * 60}"}}') for n in range(1, 16_001)]
        + [(1, 1, '{"n":1}'), (1, 2, ""), (1, 3, '{"n":3}')]
    )
    assert got == want


def test_a_broken_file_is_one_line_naming_the_problem(spark: SparkSession, tmp_path: Path) -> None:
    whole = gzip.compress(b"".join(b'{"n":%d}\n' % n for n in range(5_000)))
    broken = tmp_path / "Observation.ndjson.gz"
    broken.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError) as error:
        read_lines(spark, [str(broken)])
    message = str(error.value)
    assert message.startswith(f"reading the export: {broken}: ")
    assert "\n" not in message
    assert "EOF" in message or "end of" in message
