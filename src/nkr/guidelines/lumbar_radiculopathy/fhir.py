"""The guideline's reading of FHIR: a patient's typed record (:mod:`nkr.fhir._read`) to its
case, with notes on how the record was read, and the draft orders it recognises.

Pure: no I/O and no clock; the same record, date and value sets always give the same reading.

How the data is read, and why (each choice that a clinician should know about becomes a note):

- Age: from ``Patient.birthDate``. A partial date (``YYYY`` or ``YYYY-MM``) gives the lowest
  age the patient can have on the assessment date, so a possible minor is never assessed as
  an adult. No birth date (or no Patient) means no assessment.
- Lumbar radiculopathy: a Condition whose code is in ``lumbar-radiculopathy``, with
  ``clinicalStatus`` active, recurrence or relapse (or absent), and ``verificationStatus``
  neither refuted nor entered-in-error (provisional and differential diagnoses count: the
  guideline covers suspected root involvement too).
- Onset: ``onsetDateTime`` or ``onsetPeriod.start`` (a partial date counts from its first day),
  else ``recordedDate`` with a note. With several such Conditions the earliest onset is used:
  re-coding an episode (say M54.1 after an MRI shows M51.1) must not restart the 12 weeks,
  and an earlier start never delays a due spine-surgeon assessment.
- Signs: the case needs a sign of root involvement, and FHIR data rarely records signs one by
  one. The coded diagnosis is taken to mean radicular leg pain: an explicit assumption, shown
  as a note every time.
- Red flags: Conditions in ``red-flags`` (same status rules), each code mapped to the case's
  red flag by the value set (its codes' ``red_flag``).
- Severe, disabling pain: the latest Observation in ``pain-intensity`` (status final, amended or
  corrected; ``valueQuantity.value`` or ``valueInteger`` from 0 to 10; dated by
  ``effective[x]`` or else ``issued``; undated scores are ignored; on a tie the higher score
  wins) at or above ``pain_threshold``. The threshold is the software's assumption; the note
  says so.
- Non-surgical treatment tried: Procedures that are completed or in progress, and
  ServiceRequests that are completed, in the exercise and mobilisation value sets; acupuncture
  and glucocorticoid injection count as "other". Bed rest and MRI are not treatment tried.
- Spine-surgeon assessment: a completed Procedure in ``spine-surgeon-referral`` means done; an
  in-progress Procedure or an active or completed ServiceRequest there means referred.
- Planned interventions: every draft order (ServiceRequest, Procedure, MedicationRequest,
  DeviceRequest) whose code is in an intervention value set, kept with its resource id.

Values that cannot be right (an impossible date, a score out of range, an onset before birth
or after the assessment date) raise :class:`~nkr.InputError` at the field's JSON path; unknown
codes simply do not match. Error messages never quote patient values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Final, NamedTuple, get_args

import msgspec

from nkr._assessment import Term
from nkr.fhir._read import (
    CodeableConcept,
    Condition,
    DeviceRequest,
    MedicationRequest,
    Observation,
    PatientRecord,
    Procedure,
    Resource,
    ServiceRequest,
    coding_label,
    codings,
    first_day,
    read_date,
    read_datetime,
    status_codes,
)
from nkr.fhir._reading import DraftOrder, FhirReading, Note
from nkr.fhir._valuesets import CodeAttribute, ValueSets, load_valuesets
from nkr.guidelines.lumbar_radiculopathy.case import (
    Case,
    Planned,
    RedFlag,
    SurgeonAssessment,
    Treatment,
)

VALUESET_DIR: Final = Path(__file__).with_name("valuesets")

PREFETCH: Final[Mapping[str, str]] = MappingProxyType(
    {
        "patient": "Patient/{{context.patientId}}",
        "conditions": "Condition?patient={{context.patientId}}",
        "observations": "Observation?patient={{context.patientId}}&code=http://loinc.org|72514-3",
        "procedures": "Procedure?patient={{context.patientId}}",
        "serviceRequests": "ServiceRequest?patient={{context.patientId}}",
    }
)

RADICULOPATHY: Final = "lumbar-radiculopathy"
RED_FLAGS: Final = "red-flags"
PAIN_INTENSITY: Final = "pain-intensity"
SPINE_SURGEON: Final = "spine-surgeon-referral"

VALUESET_IDS: Final[tuple[str, ...]] = (
    RADICULOPATHY,
    RED_FLAGS,
    PAIN_INTENSITY,
    "mri-lumbar-spine",
    "glucocorticoid-injection",
    "acupuncture",
    "bed-rest",
    "supervised-exercise",
    "specific-exercise",
    "manual-mobilisation",
    SPINE_SURGEON,
)
# Each code of red-flags names the case's red flag it stands for.
RED_FLAG_ATTRIBUTE: Final = CodeAttribute("red_flag", RED_FLAGS, get_args(RedFlag))

# Value set -> the case's planned intervention, for draft orders.
PLANNED_BY_VALUESET: Final[Mapping[str, Planned]] = {
    "mri-lumbar-spine": "mri",
    "glucocorticoid-injection": "glucocorticoid_injection",
    "acupuncture": "acupuncture",
    "bed-rest": "bed_rest",
    "supervised-exercise": "supervised_exercise",
    "specific-exercise": "specific_exercise",
    "manual-mobilisation": "manual_mobilisation",
    SPINE_SURGEON: "spine_surgeon_referral",
}
# Value set -> the case's non-surgical treatment, for Procedures and ServiceRequests done.
TREATMENT_BY_VALUESET: Final[Mapping[str, Treatment]] = {
    "supervised-exercise": "supervised_exercise",
    "specific-exercise": "specific_exercise",
    "manual-mobilisation": "manual_mobilisation",
    "acupuncture": "other",
    "glucocorticoid-injection": "other",
}

CLINICAL_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_ACTIVE: Final = frozenset({"active", "recurrence", "relapse"})
_NOT_TRUE: Final = frozenset({"refuted", "entered-in-error"})
_OBSERVATION_DONE: Final = frozenset({"final", "amended", "corrected"})
# Per resource type: the statuses that mean a treatment was given, and those that mean the
# patient is referred to a spine surgeon (a completed Procedure there means assessed).
_DONE_AND_REFERRED: Final[Mapping[type[Resource], tuple[frozenset[str], frozenset[str]]]] = {
    Procedure: (frozenset({"completed", "in-progress"}), frozenset({"in-progress"})),
    ServiceRequest: (frozenset({"completed"}), frozenset({"active", "completed"})),
}
# The case's upper bound on age.
_MAX_AGE: Final = 130


def load(extra_dir: Path | None = None) -> ValueSets:
    """The guideline's value sets, with a deployment's extra files (``NKR_VALUESET_DIR``)."""
    return load_valuesets(VALUESET_DIR, VALUESET_IDS, extra_dir, attributes=(RED_FLAG_ATTRIBUTE,))


@cache
def shipped() -> ValueSets:
    """The value sets as shipped, without a deployment's extras (loaded once)."""
    return load()


def _note(key: str, **params: object) -> Note:
    return Note(f"fhir.{key}", tuple(params.items()))


# -- draft orders -------------------------------------------------------------------------------


def _order_code(resource: Resource) -> CodeableConcept | None:
    if type(resource) is ServiceRequest or type(resource) is Procedure:
        return resource.code
    if type(resource) is MedicationRequest:
        return resource.medicationCodeableConcept
    if type(resource) is DeviceRequest:
        return resource.codeCodeableConcept
    return None


def _draft_orders(record: PatientRecord, vs: ValueSets) -> tuple[DraftOrder, ...]:
    found: list[DraftOrder] = []
    for resource in record.draft_orders:
        matched = vs.ids_in(_order_code(resource))
        for vs_id, planned in PLANNED_BY_VALUESET.items():
            if vs_id in matched:
                found.append(
                    DraftOrder(Term("planned", planned), resource.resource_type, resource.id)
                )
    return tuple(found)


# -- conditions ---------------------------------------------------------------------------------


class _Diagnosis(msgspec.Struct, gc=False):
    onset: dt.date
    from_recorded: bool
    coded: str
    condition: Condition
    field: str


def _counts(condition: Condition) -> bool:
    """Whether a Condition's statuses count (see the module's notes)."""
    clinical = status_codes(condition.clinicalStatus, CLINICAL_SYSTEM)
    if clinical and clinical.isdisjoint(_ACTIVE):
        return False
    return status_codes(condition.verificationStatus, VERIFICATION_SYSTEM).isdisjoint(_NOT_TRUE)


def _diagnosis(record: PatientRecord, c: Condition, coded: str) -> _Diagnosis | None:
    recorded = False
    if c.onsetDateTime is not None:
        value, field = c.onsetDateTime, "onsetDateTime"
    elif c.onsetPeriod is not None and c.onsetPeriod.start is not None:
        value, field = c.onsetPeriod.start, "onsetPeriod.start"
    elif c.recordedDate is not None:
        value, field, recorded = c.recordedDate, "recordedDate", True
    else:
        return None
    return _Diagnosis(first_day(value, (record, c, field)), recorded, coded, c, field)


class _Conditions(msgspec.Struct, gc=False):
    diagnoses: list[_Diagnosis]
    undated: bool
    # Each red flag with the first diagnosis code that raised it.
    flags: dict[RedFlag, str]
    # The Conditions read (that count as a diagnosis or a red flag): the others change nothing.
    read: list[Condition]


def _conditions(record: PatientRecord, vs: ValueSets) -> _Conditions:
    out = _Conditions([], False, {}, [])
    index = vs.index
    for condition in record.of(Condition):
        radiculopathy: list[tuple[str, str]] = []
        red: list[tuple[str, str]] = []
        for pair in codings(condition.code):
            ids = index.get(pair)
            if ids:
                if RADICULOPATHY in ids:
                    radiculopathy.append(pair)
                if RED_FLAGS in ids:
                    red.append(pair)
        if not (radiculopathy or red) or not _counts(condition):
            continue
        out.read.append(condition)
        if radiculopathy:
            diagnosis = _diagnosis(record, condition, coding_label(*radiculopathy[0]))
            if diagnosis is None:
                out.undated = True
            else:
                out.diagnoses.append(diagnosis)
        for system, code in red:
            flag = vs.attribute(RED_FLAG_ATTRIBUTE.name, system, code)
            if flag is not None and flag not in out.flags:
                out.flags[flag] = coding_label(system, code)  # type: ignore[index]
    return out


# -- age ----------------------------------------------------------------------------------------


class _Age(NamedTuple):
    birth_date: dt.date | None
    age: int | None


def _years(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _age(record: PatientRecord, on: dt.date, notes: list[Note]) -> _Age | None:
    patient = record.patient
    given = None if patient is None else patient.birthDate
    if patient is None or given is None:
        notes.append(_note("no-birth-date"))
        return None
    birth = read_date(given, (record, patient, "birthDate"))
    if birth.first > on:
        raise record.error(patient, "birthDate", "after the assessment date")
    if _years(birth.first, on) > _MAX_AGE:
        problem = f"more than {_MAX_AGE} years before the assessment date"
        raise record.error(patient, "birthDate", problem)
    if birth.precision == "day":
        return _Age(birth.first, None)
    lowest = _years(min(birth.last, on), on)
    notes.append(_note("birth-date-partial", given=given, age=lowest))
    return _Age(None, lowest)


# -- pain ---------------------------------------------------------------------------------------


class _Pain(NamedTuple):
    # Ordered as the scores are: the latest wins, and on a tie the higher score.
    instant: dt.datetime
    score: float


def _pain_score(record: PatientRecord, o: Observation) -> _Pain | None:
    if o.status not in _OBSERVATION_DONE:
        return None
    if o.valueQuantity is not None:
        score, field = o.valueQuantity.value, "valueQuantity.value"
    else:
        score, field = o.valueInteger, "valueInteger"
    if score is None:
        return None
    if not 0 <= score <= 10:
        raise record.error(o, field, "expected a pain score from 0 to 10")
    when: tuple[str, str] | None = None
    if o.effectiveDateTime is not None:
        when = (o.effectiveDateTime, "effectiveDateTime")
    elif o.effectiveInstant is not None:
        when = (o.effectiveInstant, "effectiveInstant")
    elif o.effectivePeriod is not None and o.effectivePeriod.end is not None:
        when = (o.effectivePeriod.end, "effectivePeriod.end")
    elif o.effectivePeriod is not None and o.effectivePeriod.start is not None:
        when = (o.effectivePeriod.start, "effectivePeriod.start")
    elif o.issued is not None:
        when = (o.issued, "issued")
    if when is None:
        return None
    return _Pain(read_datetime(when[0], (record, o, when[1])), float(score))


def _latest_pain(record: PatientRecord, vs: ValueSets) -> _Pain | None:
    latest: _Pain | None = None
    get = vs.index.get
    for observation in record.of(Observation):
        # A patient's Observations are many and most are no pain score: the code is looked up
        # here, in the loop (this runs on every CDS Hooks call).
        code = observation.code
        if code is None or not code.coding:
            continue
        for coding in code.coding:
            ids = get((coding.system, coding.code))  # type: ignore[arg-type]
            if ids and PAIN_INTENSITY in ids:
                break
        else:
            continue
        pain = _pain_score(record, observation)
        if pain is not None and (latest is None or pain > latest):
            latest = pain
    return latest


def _pain_note(latest: _Pain | None, threshold: int) -> Note:
    if latest is None:
        return _note("pain-no-score")
    return _note(
        "pain-severe" if latest.score >= threshold else "pain-not-severe",
        score=f"{latest.score:g}",
        date=latest.instant.date().isoformat(),
        threshold=threshold,
    )


# -- treatment and the spine surgeon ------------------------------------------------------------


def _treatments(record: PatientRecord, vs: ValueSets) -> tuple[set[Treatment], SurgeonAssessment]:
    tried: set[Treatment] = set()
    surgeon: SurgeonAssessment = "none"
    for kind, (done, referred) in _DONE_AND_REFERRED.items():
        for resource in record.of(kind):
            matched = vs.ids_in(resource.code)  # type: ignore[attr-defined]
            if not matched:
                continue
            status = resource.status  # type: ignore[attr-defined]
            if status in done:
                for v in matched:
                    treatment = TREATMENT_BY_VALUESET.get(v)
                    if treatment is not None:
                        tried.add(treatment)
            if SPINE_SURGEON in matched:
                if kind is Procedure and status == "completed":
                    surgeon = "done"
                elif surgeon == "none" and status in referred:
                    surgeon = "referred"
    return tried, surgeon


# -- the reading --------------------------------------------------------------------------------


def read_record(
    record: PatientRecord, on: dt.date, *, valuesets: ValueSets, pain_threshold: int
) -> FhirReading:
    """The patient case from a typed FHIR record (see the module's notes). ``on`` is the
    assessment date (the clinic's local date). The draft orders are read even when there is
    no case; the rest of the record is read only when there is a diagnosis."""
    return read_with_conditions(
        record,
        on,
        _conditions(record, valuesets),
        valuesets=valuesets,
        pain_threshold=pain_threshold,
    )


def read_with_conditions(
    record: PatientRecord,
    on: dt.date,
    conditions: _Conditions,
    *,
    valuesets: ValueSets,
    pain_threshold: int,
) -> FhirReading:
    """:func:`read_record`, where the record's Conditions are already read
    (``_conditions(record, valuesets)``, as the audit reads them to find the episode's start):
    the same reading, without reading the diagnoses twice."""
    orders = _draft_orders(record, valuesets)
    if not conditions.diagnoses:
        return FhirReading(None, (_note("no-onset-date"),) if conditions.undated else (), orders)

    notes: list[Note] = []
    age = _age(record, on, notes)
    if age is None:
        return FhirReading(None, tuple(notes), orders)

    first = min(conditions.diagnoses, key=lambda d: d.onset)
    if first.onset > on:
        raise record.error(first.condition, first.field, "after the assessment date")
    if age.birth_date is not None and first.onset < age.birth_date:
        raise record.error(first.condition, first.field, "before the patient's birthDate")
    if first.from_recorded:
        notes.append(
            _note("onset-from-recorded-date", diagnosis=first.coded, date=first.onset.isoformat())
        )
    if len(conditions.diagnoses) > 1:
        count = len(conditions.diagnoses)
        notes.append(_note("earliest-onset", count=count, date=first.onset.isoformat()))
    notes.append(_note("sign-from-diagnosis", diagnosis=first.coded))
    notes.extend(
        _note("red-flag-from-diagnosis", diagnosis=coded, flag=Term("red_flags", flag))
        for flag, coded in conditions.flags.items()
    )
    latest = _latest_pain(record, valuesets)
    notes.append(_pain_note(latest, pain_threshold))
    tried, surgeon = _treatments(record, valuesets)

    case = Case(
        birth_date=age.birth_date,
        age=age.age,
        symptom_onset=first.onset,
        signs=frozenset({"radicular_leg_pain"}),
        red_flags=frozenset(conditions.flags),
        severe_disabling_pain=latest is not None and latest.score >= pain_threshold,
        non_surgical_treatment=frozenset(tried),
        spine_surgeon_assessment=surgeon,
        planned=frozenset(o.concerns.code for o in orders),  # type: ignore[misc]
    )
    return FhirReading(case, tuple(notes), orders)
