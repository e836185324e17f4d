"""What the fictional guideline gives the FHIR, CDS Hooks and web adapters (tests only).

RECONCILE AT MERGE (issue 10): the generic types these functions build are being written in
parallel with this file -- ``nkr.fhir._read.PatientRecord`` and ``nkr.fhir._valuesets``
(typed record, value sets per guideline), ``nkr.cdshooks._kit.CardKit`` (card rules) and
``nkr.web._spec.FormSpec / Handout / Sample`` (form, handout, samples). The calls below are
written against the names the lead's ``nkr._package`` Protocol gives them and a best guess
of their constructors; adjust them to the merged signatures. Everything this guideline knows
is here: one value set (``valuesets/fiktiv-score.json``), one patient-view service with one
card rule (a follow-up due or overdue), a form of four fields, a one-paragraph handout and
one sample patient. The content, case and rules (``guideline.toml``, ``case.py``,
``rules.py``) need nothing from these modules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from nkr import Assessment, Lang, Localized, RecStatus, ServiceSpec
from nkr_fictional_guideline.case import FictionalCase
from nkr_fictional_guideline.rules import FOLLOW_UP

if TYPE_CHECKING:
    from nkr.web._spec import FormSpec, Handout, Sample

    from nkr.cdshooks._kit import CardKit
    from nkr.fhir._read import PatientRecord
    from nkr.fhir._reading import FhirReading
    from nkr.fhir._valuesets import ValueSets
    from nkr_fictional_guideline import FictionalGuideline

VALUESET_DIR: Final = Path(__file__).parent / "valuesets"
SCORE_VALUESET: Final = "fiktiv-score"
SERVICE_ID: Final = "test-fiktiv-patient-view"
PREFETCH: Final[Mapping[str, str]] = {
    "patient": "Patient/{{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}",
}


def _localized(package: FictionalGuideline, key: str) -> Localized:
    return Localized(da=package.texts(key, "da"), en=package.texts(key, "en"))


# -- FHIR ------------------------------------------------------------------------------------


def valuesets(package: FictionalGuideline) -> ValueSets:
    # RECONCILE: the per-guideline loader of value sets (a folder of ValueSetFile JSON).
    from nkr.fhir._valuesets import load_valuesets

    return load_valuesets(shipped_dir=VALUESET_DIR)


def read_record(package: FictionalGuideline, record: PatientRecord, on: dt.date) -> FhirReading:
    """The case from the record: the age from the birth date, the latest score in the value
    set ``fiktiv-score`` and the date of the first such score."""
    from nkr.fhir._reading import FhirReading, Note

    # RECONCILE: the typed record's member names (patient.birth_date, observations, code,
    # effective date, integer value) and the value-set membership test.
    born = record.patient.birth_date if record.patient is not None else None
    scores = sorted(
        (o.effective_date, o.value_integer)
        for o in record.observations
        if package.valuesets.contains(SCORE_VALUESET, o.code) and o.value_integer is not None
    )
    if born is None:
        return FhirReading(None, (Note("fhir.no-birth-date"),), ())
    if not scores:
        return FhirReading(None, (Note("fhir.no-score"),), ())
    age = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    case = FictionalCase(age=age, score=scores[-1][1], first_visit=scores[0][0])
    return FhirReading(case, (), ())


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
    # RECONCILE: CardKit's method for one card (topic, indicator, summary, recommendations).
    kit.card(
        topic=FOLLOW_UP,
        indicator="warning",
        summary=lambda lang: package.texts(
            "card.follow-up", lang, text=assessment.text(result.reason, lang)
        ),
        recommendations=(FOLLOW_UP,),
    )


def topic_label(package: FictionalGuideline, topic: str, lang: Lang) -> str | None:
    key = f"topics.{topic}"
    return package.texts(key, lang) if package.texts.has(key) else None


# -- web app ---------------------------------------------------------------------------------


def form(package: FictionalGuideline) -> FormSpec:
    # RECONCILE: FormSpec's field kinds; the form's names are the case's fields.
    from nkr.web._spec import Field, FormSpec

    return FormSpec(
        fields=(
            Field("age", "integer", _localized(package, "form.age"), required=True),
            Field("score", "integer", _localized(package, "form.score"), required=True),
            Field("first_visit", "date", _localized(package, "form.first_visit"), required=True),
            Field("followed_up", "boolean", _localized(package, "form.followed_up")),
            Field("planned", "choices", _localized(package, "form.planned"), vocabulary="planned"),
        )
    )


def handout(package: FictionalGuideline) -> Handout:
    # RECONCILE: Handout's paragraph type (text tied to the recommendations it rests on).
    from nkr.web._spec import Handout, Paragraph

    return Handout(
        title=_localized(package, "handout.title"),
        paragraphs=(Paragraph(_localized(package, "handout.talk"), ("fiktiv-samtale",)),),
    )


def samples(package: FictionalGuideline) -> Mapping[str, Sample]:
    # RECONCILE: Sample's shape (a title and FHIR resources).
    from nkr.web._spec import Sample

    patient: dict[str, Any] = {"resourceType": "Patient", "id": "f1", "birthDate": "1980-01-01"}
    score: dict[str, Any] = {
        "resourceType": "Observation",
        "id": "s1",
        "status": "final",
        "code": {"coding": [{"system": "urn:nkr:test:fiktiv", "code": "score"}]},
        "subject": {"reference": "Patient/f1"},
        "effectiveDateTime": "2026-03-01",
        "valueInteger": 8,
    }
    return {
        "1-high-score": Sample(
            title=Localized(da="Fiktiv score 8", en="Fictional score 8"),
            resources=(patient, score),
        )
    }
