"""The plan's expectation for each patient agrees with the point of care: the guideline's own
reading and rules (``package.read_record`` + ``package.evaluate``, what ``nkr evaluate`` and the
CDS Hooks service run) on the record known on date A."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass

import pytest

from nkr._assessment import RecStatus
from nkr._package import registry
from nkr._synth import Sink
from nkr.fhir._read import record_from_resources
from tests.synth._recount import WINDOW, known_on

SURGEON = "spine-surgeon-by-day-84"


@dataclass(frozen=True)
class Expected:
    organization: str | None
    start: dt.date | None
    exclusion: str | None
    denominators: frozenset[str]
    numerators: frozenset[str]


class Recording(Sink):
    """A sink that keeps each patient's expectation (a test's few hundred only)."""

    def __init__(self, exclusions: Iterable[str]) -> None:
        super().__init__(exclusions)
        self.expected: dict[str, Expected] = {}

    def expect(
        self,
        patient: str,
        organization: str | None,
        start: dt.date | None,
        exclusion: str | None,
        denominators: Iterable[str] = (),
        numerators: Iterable[str] = (),
    ) -> None:
        self.expected[patient] = Expected(
            organization, start, exclusion, frozenset(denominators), frozenset(numerators)
        )
        super().expect(patient, organization, start, exclusion, denominators, numerators)


@pytest.mark.parametrize("seed", [11, 12])
def test_each_patients_expectation_is_what_the_point_of_care_says_on_a(seed: int) -> None:
    package = registry().get("nkr-lumbal-radikulopati")
    plan = package.synthesis
    sink = Recording(plan.exclusions)
    plan.patients(random.Random(seed), 0, 400, sink)
    by_patient: dict[str, list[bytes]] = {}
    for kind, written in sink.take().items():
        for line in written:
            r = json.loads(line)
            pid = r["id"] if kind == "Patient" else r["subject"]["reference"][8:]
            by_patient.setdefault(f"Patient/{pid}", []).append(line.encode())
    assert set(by_patient) == set(sink.expected)
    seen = set()
    for patient, expected in sink.expected.items():
        lines = by_patient[patient]
        if expected.start is None:
            reading = package.read_record(record_from_resources(lines), dt.date(2026, 12, 1))
            assert reading.case is None, patient
            seen.add("no episode")
            continue
        a = expected.start + dt.timedelta(days=WINDOW)
        known = [json.dumps(r).encode() for r in known_on(map(json.loads, lines), a)]
        reading = package.read_record(record_from_resources(known), a)
        if expected.exclusion == "no-birth-date":
            assert reading.case is None, patient
            seen.add("no-birth-date")
            continue
        case = reading.case
        assert case is not None, patient
        assert case.symptom_onset == expected.start, patient
        assessment = package.evaluate(case, a)
        assert assessment.in_scope == (expected.exclusion is None), patient
        reasons = {r.key for r in assessment.scope_reasons}
        if expected.exclusion == "under-18":
            assert "scope-under-18" in reasons, patient
        if expected.exclusion == "red-flag":
            assert reasons == {"scope-red-flags"}, patient
        if expected.exclusion is not None:
            seen.add(expected.exclusion)
            continue
        due = case.severe_disabling_pain and bool(case.non_surgical_treatment)
        assert (SURGEON in expected.denominators) == due, patient
        if due:
            referred = case.spine_surgeon_assessment in {"referred", "done"}
            assert (SURGEON in expected.numerators) == referred, patient
            surgeon = next(
                r for r in assessment.results if r.recommendation.id == "spine-surgeon-assessment"
            )
            assert (surgeon.status is RecStatus.DONE) == referred
            seen.add(f"surgeon {referred}")
        seen.add("in scope")
    assert seen == {
        "no episode",
        "no-birth-date",
        "under-18",
        "red-flag",
        "in scope",
        "surgeon True",
        "surgeon False",
    }
