"""What the fictional guideline gives the FHIR, CDS Hooks and web adapters (tests only).

Built only from nkr's generic pieces, as a guideline shipped by another team would be: the
typed record (:mod:`nkr.fhir._read`), the value-set loader (:mod:`nkr.fhir._valuesets`), the
reading's result (:mod:`nkr.fhir._reading`), the card kit (:class:`nkr.cdshooks._kit.CardKit`)
and the web app's form, handout and samples (:mod:`nkr.web._spec`). Everything this guideline
knows is here: one value set (``valuesets/fiktiv-score.json``), one patient-view service with
one card rule (a follow-up due or overdue), a form of the case's fields, a one-paragraph
handout (``handout.toml``) and one sample patient (``samples/``).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from nkr import Assessment, Lang, Localized, RecStatus, ServiceSpec
from nkr._synth import Sink
from nkr.audit._indicators import load_indicators
from nkr.audit._model import Episode, Indicator
from nkr.fhir._read import (
    Observation,
    PatientRecord,
    Resource,
    first_day,
    known_on,
    read_date,
    resource_day,
)
from nkr.fhir._reading import FhirReading, Note
from nkr.fhir._valuesets import ValueSets, load_valuesets
from nkr.web._spec import (
    CheckboxesField,
    DateField,
    DateOrder,
    FlagField,
    FormSpec,
    Handout,
    IntegerField,
    Sample,
    Section,
    bounds,
    load_handout,
    load_samples,
)
from nkr_fictional_guideline.case import FictionalCase
from nkr_fictional_guideline.rules import FOLLOW_UP

if TYPE_CHECKING:
    from nkr.cdshooks._kit import CardKit
    from nkr_fictional_guideline import FictionalGuideline

HERE: Final = Path(__file__).parent
VALUESET_DIR: Final = HERE / "valuesets"
HANDOUT_FILE: Final = HERE / "handout.toml"
INDICATORS_FILE: Final = HERE / "indicators.toml"
SAMPLES_DIR: Final = HERE / "samples"
SCORE_VALUESET: Final = "fiktiv-score"
SERVICE_ID: Final = "test-fiktiv-patient-view"
PREFETCH: Final[Mapping[str, str]] = MappingProxyType(
    {
        "patient": "Patient/{{context.patientId}}",
        "observations": "Observation?patient={{context.patientId}}",
    }
)
_DONE: Final = frozenset({"final", "amended", "corrected"})


def _localized(package: FictionalGuideline, key: str) -> Localized:
    return Localized(da=package.texts(key, "da"), en=package.texts(key, "en"))


def limits(name: str) -> tuple[int, int]:
    """The case format's own bounds of an integer field, so that the form and the reading of
    FHIR never disagree with it."""
    return bounds(FictionalCase, name)


# -- FHIR ------------------------------------------------------------------------------------


def valuesets(package: FictionalGuideline) -> ValueSets:
    return load_valuesets(VALUESET_DIR, (SCORE_VALUESET,))


def _at(record: PatientRecord, resource: Resource, field: str) -> Callable[[], str]:
    """Where ``field`` of ``resource`` is: found only when an error needs it."""
    return lambda: f"{record.path(resource)}.{field}"


def _years(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def read_record(package: FictionalGuideline, record: PatientRecord, on: dt.date) -> FhirReading:
    """The case from the record: the age from the birth date (a partial one gives the lowest
    age possible), the latest score in the value set ``fiktiv-score`` (final, amended or
    corrected, dated) and the date of the earliest such score as the first visit."""
    patient = record.patient
    if patient is None or patient.birthDate is None:
        return FhirReading(None, (Note("fhir.no-birth-date"),), ())
    born = read_date(patient.birthDate, _at(record, patient, "birthDate"))
    if born.first > on:
        raise record.error(patient, "birthDate", "after the assessment date")
    low, high = limits("score")
    scores: list[tuple[dt.date, int]] = []
    for o in record.of(Observation):
        if SCORE_VALUESET not in package.valuesets.ids_in(o.code) or o.status not in _DONE:
            continue
        if o.effectiveDateTime is None:
            continue
        when = first_day(o.effectiveDateTime, _at(record, o, "effectiveDateTime"))
        value = o.valueInteger
        if not isinstance(value, int) or not low <= value <= high:
            raise record.error(o, "valueInteger", f"expected a score from {low} to {high}")
        if when > on:
            raise record.error(o, "effectiveDateTime", "after the assessment date")
        scores.append((when, value))
    if not scores:
        return FhirReading(None, (Note("fhir.no-score"),), ())
    scores.sort()
    (first, _), (latest, score) = scores[0], scores[-1]
    case = FictionalCase(age=_years(min(born.last, on), on), score=score, first_visit=first)
    note = Note(
        "fhir.score-read",
        (("score", score), ("date", latest.isoformat()), ("first", first.isoformat())),
    )
    return FhirReading(case, (note,), ())


# -- population audit ------------------------------------------------------------------------


def indicators(package: FictionalGuideline) -> tuple[Indicator, ...]:
    return tuple(i for i, _ in load_indicators(INDICATORS_FILE, package.content))


def judge(package: FictionalGuideline, record: PatientRecord, patient: str) -> tuple[Episode, ...]:
    """One episode from the first dated score, assessed a scope's length later: the one
    indicator's numerator is a follow-up that is called for on that day (due or overdue)."""
    days = [
        day
        for o in record.of(Observation)
        if SCORE_VALUESET in package.valuesets.ids_in(o.code)
        and (day := resource_day(record, o)) is not None
    ]
    if not days:
        return ()
    start = min(days)
    on = start + dt.timedelta(days=package.content.scope.max_symptom_days)
    reading = package.read_record(known_on(record, on), on)
    exclusion: str | None = "no-birth-date"
    statuses: dict[str, str] = {}
    if reading.case is not None:
        assessment = package.evaluate(reading.case, on)
        statuses = {r.recommendation.id: r.status.value for r in assessment.results}
        exclusion = None if assessment.in_scope else "under-18"
    (indicator,) = package.indicators
    called_for = statuses.get(FOLLOW_UP) in (RecStatus.DUE, RecStatus.OVERDUE)
    in_scope = exclusion is None
    managing = None if record.patient is None else record.patient.managingOrganization
    return (
        Episode(
            patient=patient,
            organization=None if managing is None else managing.reference,
            start=start,
            assessed_on=on,
            in_scope=in_scope,
            exclusion=exclusion,
            statuses=statuses,
            denominators=frozenset({indicator.id} if in_scope else ()),
            numerators=frozenset({indicator.id} if in_scope and called_for else ()),
        ),
    )


# -- CDS Hooks -------------------------------------------------------------------------------


def services(package: FictionalGuideline) -> tuple[ServiceSpec, ...]:
    return (
        ServiceSpec(
            SERVICE_ID,
            "patient-view",
            _localized(package, "services.patient-view.title"),
            _localized(package, "services.patient-view.description"),
        ),
    )


def cards(package: FictionalGuideline, hook: str, assessment: Assessment, kit: CardKit) -> None:
    """The one card rule: a follow-up that is due or overdue gives a warning card."""
    if hook != "patient-view":
        return
    result = assessment.result(FOLLOW_UP)
    if result.status not in (RecStatus.DUE, RecStatus.OVERDUE):
        return
    kit.add(
        topic=FOLLOW_UP,
        indicator="warning",
        summary=kit.text("card.follow-up", text=kit.reason(result.reason), tag=kit.tag),
        detail=kit.detail(
            kit.block(FOLLOW_UP), kit.why(result.reason), kit.notes, kit.footer(FOLLOW_UP)
        ),
        link_to=FOLLOW_UP,
    )


def topic_label(package: FictionalGuideline, topic: str, lang: Lang) -> str | None:
    key = f"topics.{topic}"
    return package.texts(key, lang) if package.texts.has(key) else None


# -- web app ---------------------------------------------------------------------------------


def form(package: FictionalGuideline) -> FormSpec:
    """The form: the case's fields by name, with the assessment date first."""
    fields = (
        DateField(
            "assessment_date", "field-assessment-date", "hint-date-today", required=True, today=True
        ),
        IntegerField("age", "form.age", "form.hint-age", *limits("age"), required=True),
        IntegerField("score", "form.score", "form.hint-score", *limits("score"), required=True),
        DateField("first_visit", "form.first_visit", "hint-date", required=True),
        FlagField("followed_up", "form.followed_up", "form.hint-followed_up"),
        CheckboxesField("planned", "form.planned"),
    )
    return FormSpec(
        sections=(Section("patient", "form.section", fields),),
        date="assessment_date",
        checks=(
            DateOrder(
                "first_visit", "assessment_date", "first_visit", "form.error-first-visit-future"
            ),
        ),
    )


def handout(package: FictionalGuideline) -> Handout:
    return load_handout(HANDOUT_FILE)


def samples(package: FictionalGuideline) -> Mapping[str, Sample]:
    return load_samples(SAMPLES_DIR)


# -- population audit ------------------------------------------------------------------------


class FictionalSynthesis:
    """The fictional plan of ``nkr synth`` (:class:`nkr._synth.Synthesis`): each patient a
    Patient and one to three scores in ``fiktiv-score`` in 2024; an episode starts at the
    first score. No indicators and no exclusions."""

    indicators: tuple[str, ...] = ()
    exclusions: tuple[str, ...] = ()
    transaction_time = "2025-01-01T00:00:00Z"

    def shared(self, sink: Sink) -> None:
        pass

    def patients(self, rng: random.Random, first: int, count: int, sink: Sink) -> None:
        start = dt.date(2024, 1, 1).toordinal()
        for index in range(first, first + count):
            pid = f"f{index}"
            sink.lines("Patient").append(
                f'{{"resourceType":"Patient","id":"{pid}","birthDate":"{1940 + index % 60}"}}'
            )
            days = sorted(rng.sample(range(start, start + 360), 1 + int(rng.random() * 3)))
            for k, day in enumerate(days):
                sink.lines("Observation").append(
                    f'{{"resourceType":"Observation","id":"{pid}-{k}","status":"final",'
                    '"code":{"coding":[{"system":"urn:nkr:test:fiktiv","code":"score"}]},'
                    f'"subject":{{"reference":"Patient/{pid}"}},'
                    f'"effectiveDateTime":"{dt.date.fromordinal(day).isoformat()}",'
                    f'"valueInteger":{int(rng.random() * 11)}}}'
                )
            sink.expect(f"Patient/{pid}", None, dt.date.fromordinal(days[0]), None)


def synthesis(package: FictionalGuideline) -> FictionalSynthesis:
    return FictionalSynthesis()
