"""``nkr audit --engine spark`` (as spark-submit runs it: :mod:`nkr.audit.spark_main`)
against ``nkr audit`` with DuckDB, on the same export: the same episodes, the same figures (to
the bit: figures.csv writes each float's repr), the same counts and the same problems, each at
the file and line where the test wrote it. One synthetic export with problems and a file of
hand-made lines; one run of each engine, shared by the tests."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow.parquet as pq
import pytest

from nkr._cli import main as nkr
from nkr._package import registry
from nkr._synth import synthesize
from nkr.audit import spark_main

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

GUIDELINE = "nkr-lumbal-radikulopati"

# Hand-made lines (gzipped, beside the synthetic files): what each must be counted as.
EXTRA = [
    ('{"resourceType":"Organization","id":"extra-org"}', "shared"),
    ("", "blank"),
    ("this line is not JSON", "malformed"),
    ('{"resourceType":"Observation","id":"g","subject":{"reference":"Group/1"}}', "no-patient"),
    ("[1, 2]", "malformed"),
    ('{"resourceType":"Practitioner","id":"extra-doctor"}', "shared"),
    ('{"resourceType":"Flurb","subject":{"reference":"Patient/extra-1"}}', "unknown-type"),
    (
        '{"resourceType":"Observation","id":"o1","status":"final","subject":'
        '{"reference":"https://ehr.example/fhir/Patient/extra-1/_history/2"}}',
        "patient",
    ),
    (
        '{"resourceType":"Observation","status":5,"subject":{"reference":"Patient/extra-1"}}',
        "malformed",
    ),
    ('{"resourceType":"Patient","id":"extra-2","birthDate":"1970-01-01"}', "patient"),
]


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("spark") / "export"
    package = registry().get(GUIDELINE)
    synthesize(package.synthesis, package.id, 150, out, seed=11, problems=True, workers=1)
    with gzip.open(out / "Extra.ndjson.gz", "wt", encoding="utf-8") as f:
        f.write("".join(f"{text}\n" for text, _ in EXTRA))
    return out


@pytest.fixture(scope="module")
def outputs(spark: SparkSession, export: Path) -> dict[str, Path]:
    """The outputs of each engine (Spark on the session of the tests, as on spark-submit's)."""
    found = {"duckdb": export.parent / "duckdb", "spark": export.parent / "spark"}
    assert nkr(["audit", str(export), "--out", str(found["duckdb"]), "--workers", "0"]) == 0
    assert spark_main.main([str(export), "--out", str(found["spark"])]) == 0
    return found


def _summary(out: Path) -> dict[str, Any]:
    summary: dict[str, Any] = orjson.loads((out / "summary.json").read_bytes())
    return summary


def test_spark_finds_the_episodes_duckdb_finds(outputs: dict[str, Path]) -> None:
    duck = pq.read_table(outputs["duckdb"] / "episodes.parquet")
    spark = pq.read_table(outputs["spark"] / "episodes.parquet")
    assert duck.num_rows > 50
    assert spark.sort_by("patient").equals(duck.sort_by("patient"))


def test_spark_computes_the_same_figures(outputs: dict[str, Path]) -> None:
    duck = (outputs["duckdb"] / "figures.csv").read_text(encoding="utf-8")
    spark = (outputs["spark"] / "figures.csv").read_text(encoding="utf-8")
    rows = duck.splitlines()
    assert any(row.endswith(",true") for row in rows)  # suppressed cells, as in the export
    assert len(rows) > 50
    assert spark == duck


def test_spark_counts_and_reports_the_same(outputs: dict[str, Path]) -> None:
    duck, spark = _summary(outputs["duckdb"]), _summary(outputs["spark"])
    assert (duck.pop("engine"), spark.pop("engine")) == ("duckdb", "spark")
    del duck["seconds"], spark["seconds"]
    assert spark == duck


def test_spark_reports_each_bad_line_at_its_file_and_line(
    outputs: dict[str, Path], export: Path
) -> None:
    summary = _summary(outputs["spark"])
    extra = str(export / "Extra.ndjson.gz")
    want = sorted(
        (kind, n)
        for n, (_, kind) in enumerate(EXTRA, start=1)
        if kind in ("malformed", "no-patient", "unknown-type")
    )
    got = sorted((p["kind"], p["line"]) for p in summary["problems"] if p["file"] == extra)
    assert got == want
    # The synthetic export's injected lines (nkr._synth.PROBLEMS: 3, 2, 2) and the extra ones.
    assert summary["problem_counts"] == {
        "malformed": 6,
        "unknown-type": 3,
        "no-patient": 3,
        "invalid": 0,
    }
