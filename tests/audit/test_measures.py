"""The audit's figures for FHIR: a Measure per indicator generated from its data and a summary
MeasureReport stratified by month and organisation, valid FHIR R4 (checked with
fhir.resources), with no count at all in a hidden cell."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.measure import Measure
from fhir.resources.R4B.measurereport import MeasureReport

from nkr.audit._measures import (
    INTERVAL_EXTENSION_URL,
    MIN_CELL_EXTENSION_URL,
    SUPPRESSED_EXTENSION_URL,
    measures_bundle,
)
from nkr.fhir._valuesets import VALUESET_URL_PREFIX
from nkr.guidelines.lumbar_radiculopathy import package
from tests.audit._fixtures import COUNTS, INDICATORS, MIN_CELL, ON, figures, hidden

G = package().content
POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"


def _bundle(**kwargs: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"period": (None, None), "generated": ON, "min_cell": MIN_CELL}
    return measures_bundle(G, INDICATORS, figures(), **(options | kwargs))


def _resources(bundle: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    found = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]
    return {r["id"]: r for r in found}


def _counts(part: dict[str, Any]) -> dict[str, int | None]:
    return {p["code"]["coding"][0]["code"]: p.get("count") for p in part["population"]}


def test_bundle_and_every_resource_are_valid_fhir() -> None:
    bundle = _bundle()
    parsed = Bundle.model_validate(bundle)
    assert parsed.type == "collection"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds == ["Measure", "MeasureReport"] * len(INDICATORS)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        model = Measure if resource["resourceType"] == "Measure" else MeasureReport
        model.model_validate(resource)
        assert entry["fullUrl"].startswith("urn:uuid:")
    assert len({e["fullUrl"] for e in bundle["entry"]}) == len(bundle["entry"])
    # As a file would hold it: JSON, parsed back the same.
    assert Bundle.model_validate_json(json.dumps(bundle)).entry is not None


def test_measure_generated_from_the_indicator_data() -> None:
    measures = _resources(_bundle(), "Measure")
    assert list(measures) == [i.id for i in INDICATORS]
    for ind in INDICATORS:
        m = measures[ind.id]
        # The value sets' local scheme ("urn:nkr:valueset:<id>"), for measures.
        assert VALUESET_URL_PREFIX == "urn:nkr:valueset:"
        assert m["url"] == f"urn:nkr:measure:nkr-lumbal-radikulopati:{ind.id}"
        assert m["version"] == G.version
        assert m["title"] == ind.title.da
        assert m["scoring"]["coding"][0]["code"] == "proportion"
        notation = m["improvementNotation"]["coding"][0]["code"]
        assert notation == ("increase" if ind.better == "higher" else "decrease")
        (group,) = m["group"]
        populations = {p["code"]["coding"][0]["code"]: p for p in group["population"]}
        assert list(populations) == [
            "initial-population",
            "denominator",
            "denominator-exclusion",
            "numerator",
        ]
        assert populations["initial-population"]["description"] == (
            f"{G.scope.text.da}\n\n{G.scope.text.en}"
        )
        for code, words in (
            ("denominator", ind.denominator),
            ("denominator-exclusion", ind.exclusions),
            ("numerator", ind.numerator),
        ):
            assert populations[code]["description"] == f"{words.da}\n\n{words.en}"
            assert populations[code]["criteria"]["expression"] == words.da
        strata = [s["code"]["coding"][0]["code"] for s in group["stratifier"]]
        assert strata == ["month", "organization"]
    mri = measures["mri"]
    citation = next(a for a in mri["relatedArtifact"] if a["type"] == "citation")
    assert citation["url"] == G.source.url
    justification = next(a for a in mri["relatedArtifact"] if a["type"] == "justification")
    assert justification["citation"] == G.by_id["mri"].wording.da
    # No recommendation of that id: no justification, still a valid Measure.
    assert [a["type"] for a in measures["rare"]["relatedArtifact"]] == ["citation"]


def test_measure_report_counts_strata_and_hidden_cells() -> None:
    bundle = _bundle()
    measures = _resources(bundle, "Measure")
    reports = _resources(bundle, "MeasureReport")
    for ind in INDICATORS:
        r = reports[f"{ind.id}-report"]
        assert r["status"] == "complete"
        assert r["type"] == "summary"
        assert r["measure"] == f"{measures[ind.id]['url']}|{G.version}"
        assert r["extension"] == [{"url": MIN_CELL_EXTENSION_URL, "valueInteger": MIN_CELL}]
        (group,) = r["group"]
        cells = {("overall", ""): group}
        for stratifier in group["stratifier"]:
            stratum_kind = stratifier["code"][0]["coding"][0]["code"]
            for stratum in stratifier["stratum"]:
                cells[(stratum_kind, stratum["value"]["text"])] = stratum
        expected = {
            (kind, key): counts
            for kind, strata in COUNTS[ind.id].items()
            for key, counts in strata.items()
            if counts[1] > 0
        }
        assert set(cells) == set(expected)
        for where, (num, den) in expected.items():
            cell = cells[where]
            if hidden(num, den):
                assert _counts(cell) == {"denominator": None, "numerator": None}, where
                assert "measureScore" not in cell
                assert cell["extension"] == [
                    {"url": SUPPRESSED_EXTENSION_URL, "valueBoolean": True}
                ]
            else:
                assert _counts(cell) == {"denominator": den, "numerator": num}, where
                assert cell["measureScore"]["value"] == num / den
                (interval,) = cell["extension"]
                assert interval["url"] == INTERVAL_EXTENSION_URL
                low, high = interval["valueRange"]["low"], interval["valueRange"]["high"]
                assert low["value"] <= num / den <= high["value"]


def test_hidden_counts_appear_nowhere_in_the_rare_report() -> None:
    report = _resources(_bundle(), "MeasureReport")["rare-report"]
    text = json.dumps(report)
    # Every cell of it is hidden but one (0 of 5): its only counts are 0 and 5.
    assert text.count('"count"') == 2
    assert '"count": 0' in text
    assert '"count": 5' in text


def test_period_given_or_spanning_the_months_of_the_data() -> None:
    reports = _resources(_bundle(), "MeasureReport")
    assert {r["period"]["start"] for r in reports.values()} == {"2025-01-01"}
    assert {r["period"]["end"] for r in reports.values()} == {"2025-12-31"}
    chosen = _bundle(period=(dt.date(2024, 12, 15), None))
    report = _resources(chosen, "MeasureReport")["mri-report"]
    assert report["period"] == {"start": "2024-12-15", "end": "2025-12-31"}
    none = measures_bundle(G, INDICATORS[:1], [], period=(None, None), generated=ON)
    empty = _resources(none, "MeasureReport")["exercise-or-mobilisation-report"]
    assert empty["period"] == {"start": "2026-12-02", "end": "2026-12-02"}
    assert _counts(empty["group"][0]) == {"denominator": 0, "numerator": 0}
    MeasureReport.model_validate(empty)


def test_deterministic_and_dated() -> None:
    first = json.dumps(_bundle(), sort_keys=True)
    again = measures_bundle(
        G, INDICATORS, list(reversed(figures())), period=(None, None), generated=ON
    )
    assert json.dumps(again, sort_keys=True) == first
    bundle = _bundle()
    assert bundle["timestamp"] == "2026-12-02T03:00:00+00:00"
    naive = measures_bundle(
        G, INDICATORS[:1], figures(), period=(None, None), generated=dt.datetime(2026, 1, 2, 3, 4)
    )
    assert naive["timestamp"] == "2026-01-02T03:04:00+00:00"
