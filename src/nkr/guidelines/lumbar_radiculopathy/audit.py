"""The guideline measured over a population: one patient's record judged into its episode
(``nkr audit``). The indicators' words are in ``indicators.toml``; what decides them is here,
and it is the cards' own reading (:mod:`.fhir`) and rules (:mod:`.rules`), never a second copy.

- The episode: a patient has at most one (a documented limitation). It exists when a Condition
  counts as lumbar radiculopathy by the reading's rules (value set, clinical and verification
  status) and is dated; it starts (S) at the earliest onset, by the reading's onset rules.
- It is assessed on A = S + the guideline's ``scope.max_symptom_days``, on the record as it
  stood that day (:func:`nkr.fhir._read.known_on`): its statuses are what ``nkr evaluate`` and
  the cards give for those resources on A.
- Out of scope, the first that applies: ``no-birth-date`` (the reading gives no case),
  ``under-18`` (the case's age on A below the scope's minimum), ``red-flag`` (a red flag known
  on A).
- Indicators 1-5 (:func:`done_in_window`): a Procedure completed or in progress, or a
  ServiceRequest active or completed, in one of the indicator's value sets, dated from S to A.
- Indicator 6 (:func:`spine_surgeon_by_day_84`): among those with severe, disabling pain
  despite non-surgical treatment on A (as the reading decides), referred or assessed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from nkr._assessment import Assessment
from nkr._guideline import Guideline
from nkr.audit._indicators import load_indicators
from nkr.audit._model import Episode, Indicator
from nkr.fhir._read import (
    Condition,
    PatientRecord,
    Procedure,
    Resource,
    ServiceRequest,
    known_on,
    resource_day,
)
from nkr.fhir._reading import FhirReading
from nkr.fhir._valuesets import ValueSets
from nkr.guidelines.lumbar_radiculopathy.case import Case
from nkr.guidelines.lumbar_radiculopathy.fhir import _Conditions, _conditions

INDICATORS_FILE: Final = Path(__file__).with_name("indicators.toml")
SURGEON_INDICATOR: Final = "spine-surgeon-by-day-84"
# What counts as done (or ordered) in the window, per resource type.
_DONE: Final[Mapping[type[Resource], frozenset[str]]] = {
    Procedure: frozenset({"completed", "in-progress"}),
    ServiceRequest: frozenset({"active", "completed"}),
}
_REFERRED_OR_ASSESSED: Final = frozenset({"referred", "done"})


@dataclass(frozen=True, slots=True)
class Measures:
    """The indicators, and for those of 1-5 the value sets whose use in the window meets
    the numerator."""

    indicators: tuple[Indicator, ...]
    done_in_window: Mapping[str, frozenset[str]]


def load_measures(content: Guideline) -> Measures:
    rows = load_indicators(INDICATORS_FILE, content, extra=("done_in_window",))
    return Measures(
        tuple(indicator for indicator, _ in rows),
        {ind.id: frozenset(extra["done_in_window"]) for ind, extra in rows if extra},
    )


def used_in_window(
    record: PatientRecord, vs: ValueSets, start: dt.date, end: dt.date
) -> frozenset[str]:
    """The value sets of the Procedures and ServiceRequests done (or ordered) and dated from
    ``start`` to ``end``."""
    used: set[str] = set()
    for kind, done in _DONE.items():
        for resource in record.of(kind):
            if resource.status not in done:  # type: ignore[attr-defined]
                continue
            matched = vs.ids_in(resource.code)  # type: ignore[attr-defined]
            if not matched or matched <= used:
                continue
            day = resource_day(record, resource)
            if day is not None and start <= day <= end:
                used |= matched
    return frozenset(used)


def done_in_window(valuesets: frozenset[str], used: frozenset[str]) -> bool:
    """Indicators 1-5: any of the indicator's value sets used in the window."""
    return not valuesets.isdisjoint(used)


def spine_surgeon_by_day_84(case: Case) -> tuple[bool, bool]:
    """Indicator 6, on A: (in its denominator, in its numerator). The denominator: severe,
    disabling pain and non-surgical treatment tried; the numerator: referred or assessed."""
    denominator = case.severe_disabling_pain and bool(case.non_surgical_treatment)
    return denominator, denominator and case.spine_surgeon_assessment in _REFERRED_OR_ASSESSED


def judge(
    record: PatientRecord,
    patient: str,
    *,
    content: Guideline,
    valuesets: ValueSets,
    read: Callable[[PatientRecord, dt.date, _Conditions], FhirReading],
    evaluate: Callable[[Case, dt.date], Assessment],
    measures: Measures,
) -> tuple[Episode, ...]:
    """The patient's episode (none without a dated, counting diagnosis). Raises InputError,
    located in ``record``, where the reading finds a value that cannot be right. ``read`` is
    the cards' reading (:func:`.fhir.read_with_conditions`) given the Conditions already
    read."""
    conditions = _conditions(record, valuesets)
    if not conditions.diagnoses:
        return ()
    start = min([d.onset for d in conditions.diagnoses])
    on = start + dt.timedelta(days=content.scope.max_symptom_days)
    known = known_on(record, on)
    if known.of(Condition) is not record.of(Condition):
        # A Condition dated after A: when it was one the reading read, the diagnoses and red
        # flags as they stood on A.
        kept = {id(c) for c in known.of(Condition)}
        if any(id(c) not in kept for c in conditions.read):
            conditions = _conditions(known, valuesets)
    reading = read(known, on, conditions)
    p = record.patient
    organization = None
    if p is not None and p.managingOrganization is not None:
        organization = p.managingOrganization.reference
    case = reading.case
    if case is None:
        return (_episode(patient, organization, start, on, "no-birth-date", {}),)
    assessment = evaluate(case, on)
    # A RecStatus is its value (a StrEnum): kept as it is.
    statuses: dict[str, str] = {r.recommendation.id: r.status for r in assessment.results}
    exclusion = None
    if case.age_on(on) < content.scope.min_age_years:
        exclusion = "under-18"
    elif case.red_flags:
        exclusion = "red-flag"
    assert (exclusion is None) is assessment.in_scope, "the scope of the rules on A"
    if exclusion is not None:
        return (_episode(patient, organization, start, on, exclusion, statuses),)
    used = used_in_window(record, valuesets, start, on)
    denominators = set()
    numerators = set()
    for ind_id, sets in measures.done_in_window.items():
        denominators.add(ind_id)
        if done_in_window(sets, used):
            numerators.add(ind_id)
    surgeon_den, surgeon_num = spine_surgeon_by_day_84(case)
    if surgeon_den:
        denominators.add(SURGEON_INDICATOR)
    if surgeon_num:
        numerators.add(SURGEON_INDICATOR)
    return (
        Episode(
            patient=patient,
            organization=organization,
            start=start,
            assessed_on=on,
            in_scope=True,
            exclusion=None,
            statuses=statuses,
            denominators=frozenset(denominators),
            numerators=frozenset(numerators),
        ),
    )


_NONE: Final[frozenset[str]] = frozenset()


def _episode(
    patient: str,
    organization: str | None,
    start: dt.date,
    on: dt.date,
    exclusion: str,
    statuses: dict[str, str],
) -> Episode:
    return Episode(
        patient=patient,
        organization=organization,
        start=start,
        assessed_on=on,
        in_scope=False,
        exclusion=exclusion,
        statuses=statuses,
        denominators=_NONE,
        numerators=_NONE,
    )
