"""``nkr audit --engine spark`` against the DuckDB engine, on the same export: the same
episodes, the same figures (to the bit), the same counts and the same problems, each at the
file and line where the test wrote it. One synthetic export with problems, and one file of
hand-made lines; one run of each engine, shared by the tests."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from nkr._package import registry
from nkr._synth import synthesize
from nkr.audit._result import AuditResult
from nkr.audit._run import run_audit

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
def results(spark: SparkSession, export: Path) -> tuple[AuditResult, AuditResult]:
    package = registry().get(GUIDELINE)
    duck = run_audit(export, package, engine="duckdb", workers=0)
    spark_run = run_audit(export, package, engine="spark")
    return duck, spark_run


def _summary(result: AuditResult) -> dict[str, Any]:
    summary = result.summary()
    del summary["engine"], summary["seconds"]
    return summary


def test_spark_finds_the_episodes_duckdb_finds(results: tuple[AuditResult, AuditResult]) -> None:
    duck, spark = results
    assert spark.engine == "spark"
    assert len(duck.episodes) > 50
    assert spark.episodes.sort_by("patient").equals(duck.episodes.sort_by("patient"))


def test_spark_computes_the_same_figures(results: tuple[AuditResult, AuditResult]) -> None:
    duck, spark = results
    assert any(f.suppressed for f in duck.figures)
    assert any(not f.suppressed and f.numerator for f in duck.figures)
    assert spark.figures == duck.figures


def test_spark_counts_and_reports_the_same(results: tuple[AuditResult, AuditResult]) -> None:
    duck, spark = results
    assert _summary(spark) == _summary(duck)


def test_spark_reports_each_bad_line_at_its_file_and_line(
    results: tuple[AuditResult, AuditResult], export: Path
) -> None:
    _, spark = results
    extra = str(export / "Extra.ndjson.gz")
    want = sorted(
        (kind, n)
        for n, (_, kind) in enumerate(EXTRA, start=1)
        if kind in ("malformed", "no-patient", "unknown-type")
    )
    got = sorted((p.kind, p.line) for p in spark.tally.problems if p.file == extra)
    assert got == want
    # The synthetic export's injected lines (nkr._synth.PROBLEMS: 3, 2, 2) and the extra ones.
    assert spark.summary()["problem_counts"] == {
        "malformed": 6,
        "unknown-type": 3,
        "no-patient": 3,
        "invalid": 0,
    }
