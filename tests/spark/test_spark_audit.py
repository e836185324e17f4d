"""``nkr audit --engine spark`` (as spark-submit runs it: :mod:`nkr.audit.spark_main`)
against ``nkr audit`` with DuckDB, on the same export: the same episodes, the same figures (to
the bit: figures.csv writes each float's repr), the same counts and the same problems, each at
the file and line where the test wrote it. One synthetic export with problems and a file of
hand-made lines; one run of each engine."""

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

pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")

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


def _summary(out: Path) -> dict[str, Any]:
    summary: dict[str, Any] = orjson.loads((out / "summary.json").read_bytes())
    return summary


_VARYING = ("id", "date", "timestamp")


def _masked(value: Any) -> Any:
    """A FHIR Bundle without what differs between two runs: ids, UUIDs and times."""
    if isinstance(value, dict):
        return {k: "*" if k in _VARYING else _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if isinstance(value, str) and value.startswith("urn:uuid:"):
        return "*"
    return value


# One test, not four sharing a fixture: pytest-xdist could run four on two workers, and each
# worker would then run both audits.
def test_spark_and_duckdb_give_the_same_outputs(spark: SparkSession, export: Path) -> None:
    duck_out, spark_out = export.parent / "duckdb", export.parent / "spark"
    assert nkr(["audit", str(export), "--out", str(duck_out), "--workers", "0"]) == 0
    assert spark_main.main([str(export), "--out", str(spark_out)]) == 0

    # The same episodes.
    duck_episodes = pq.read_table(duck_out / "episodes.parquet")
    assert duck_episodes.num_rows > 50
    assert (
        pq.read_table(spark_out / "episodes.parquet")
        .sort_by("patient")
        .equals(duck_episodes.sort_by("patient"))
    )

    # The same figures, to the bit (suppressed cells as well).
    duck_figures = (duck_out / "figures.csv").read_text(encoding="utf-8")
    assert len(duck_figures.splitlines()) > 50
    assert any(row.endswith(",true") for row in duck_figures.splitlines())
    assert (spark_out / "figures.csv").read_text(encoding="utf-8") == duck_figures

    # The same MeasureReports.
    duck_measures = orjson.loads((duck_out / "measures.json").read_bytes())
    assert len(duck_measures["entry"]) > 6
    assert _masked(orjson.loads((spark_out / "measures.json").read_bytes())) == _masked(
        duck_measures
    )

    # The same counts and problems (each with its file and line).
    duck, spark_summary = _summary(duck_out), _summary(spark_out)
    assert (duck.pop("engine"), spark_summary.pop("engine")) == ("duckdb", "spark")
    del duck["seconds"], spark_summary["seconds"]
    assert spark_summary == duck

    # Each bad line at the file and line where this test wrote it.
    extra = str(export / "Extra.ndjson.gz")
    want = sorted(
        (kind, n)
        for n, (_, kind) in enumerate(EXTRA, start=1)
        if kind in ("malformed", "no-patient", "unknown-type")
    )
    got = sorted((p["kind"], p["line"]) for p in spark_summary["problems"] if p["file"] == extra)
    assert got == want
    # The synthetic export's injected lines (nkr._synth.PROBLEMS: 3, 2, 2) and the extra ones.
    assert spark_summary["problem_counts"] == {
        "malformed": 6,
        "unknown-type": 3,
        "no-patient": 3,
        "invalid": 0,
    }
